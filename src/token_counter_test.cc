#include "token_counter.h"

#include <doctest/doctest.h>

TEST_CASE("NewTokenCounter picks the model's exact counter") {
  std::string err;
  auto counter = NewTokenCounter("text-embedding-3-small", "", &err);
  REQUIRE(counter);
  CHECK(counter->exact());
  CHECK(counter->name() == "cl100k_base");
  CHECK(counter->Count("hello world") == 2);
  CHECK(counter->Count("<|endoftext|>") == 7);

  counter = NewTokenCounter("gpt-4o-mini", "", &err);
  REQUIRE(counter);
  CHECK(counter->name() == "o200k_base");
  CHECK(counter->Count("don't") == 1);
}

TEST_CASE("NewTokenCounter falls back to the estimate for unknown models") {
  std::string err;
  auto counter = NewTokenCounter("some-private-model", "", &err);
  REQUIRE(counter);
  CHECK_FALSE(counter->exact());
  CHECK(counter->name() == "estimate");
  CHECK(counter->Count("hello world") == 11);
}

TEST_CASE("NewTokenCounter honours an explicit tokenizer name") {
  std::string err;
  auto counter = NewTokenCounter("text-embedding-3-small", "o200k_base", &err);
  REQUIRE(counter);
  CHECK(counter->name() == "o200k_base");
  counter = NewTokenCounter("text-embedding-3-small", "estimate", &err);
  REQUIRE(counter);
  CHECK(counter->name() == "estimate");
  counter = NewTokenCounter("", "cl100k_base", &err);
  REQUIRE(counter);
  CHECK(counter->exact());

  CHECK_FALSE(NewTokenCounter("", "p50k_base", &err));
  CHECK(err ==
        "unknown tokenizer 'p50k_base' (known: cl100k_base, o200k_base, "
        "estimate)");
}
