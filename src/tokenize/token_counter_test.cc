#include "tokenize/token_counter.h"

#include <doctest/doctest.h>

TEST_CASE("NewTokenCounter picks the model's exact counter") {
  std::string err;
  auto counter = NewTokenCounter("text-embedding-3-small", "", 0, &err);
  REQUIRE(counter);
  CHECK(counter->exact());
  CHECK(counter->name() == "cl100k_base");
  CHECK(counter->Count("hello world") == 2);
  CHECK(counter->Count("<|endoftext|>") == 7);

  counter = NewTokenCounter("gpt-4o-mini", "", 0, &err);
  REQUIRE(counter);
  CHECK(counter->name() == "o200k_base");
  CHECK(counter->Count("don't") == 1);
}

TEST_CASE("NewTokenCounter falls back to the estimate for unknown models") {
  std::string err;
  auto counter = NewTokenCounter("some-private-model", "", 0, &err);
  REQUIRE(counter);
  CHECK_FALSE(counter->exact());
  CHECK(counter->name() == "estimate");
  CHECK(counter->Count("hello world") == 11);
}

TEST_CASE("The estimate counts the tokens a model adds to every text") {
  std::string err;
  auto counter = NewTokenCounter("BAAI/bge-small-en-v1.5", "", 3, &err);
  REQUIRE(counter);
  CHECK(counter->Count("hello world") == 14);  // 11 bytes, [CLS], [SEP], one spare
  std::vector<size_t> ends;
  counter->TokenEndOffsets("hello", &ends);
  CHECK(ends == std::vector<size_t>{1, 2, 3, 4, 5});  // where the text can be cut
  counter = NewTokenCounter("BAAI/bge-small-en-v1.5", "estimate", 3, &err);
  CHECK(counter->Count("") == 3);
  // tiktoken's models add none, whatever the margin.
  counter = NewTokenCounter("text-embedding-3-small", "", 3, &err);
  CHECK(counter->Count("hello world") == 2);
}

TEST_CASE("NewTokenCounter honours an explicit tokenizer name") {
  std::string err;
  auto counter = NewTokenCounter("text-embedding-3-small", "o200k_base", 0, &err);
  REQUIRE(counter);
  CHECK(counter->name() == "o200k_base");
  counter = NewTokenCounter("text-embedding-3-small", "estimate", 0, &err);
  REQUIRE(counter);
  CHECK(counter->name() == "estimate");
  counter = NewTokenCounter("", "cl100k_base", 0, &err);
  REQUIRE(counter);
  CHECK(counter->exact());

  CHECK_FALSE(NewTokenCounter("", "p50k_base", 0, &err));
  CHECK(err ==
        "unknown tokenizer 'p50k_base' (known: cl100k_base, o200k_base, "
        "estimate)");
}
