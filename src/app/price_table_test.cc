#include "app/price_table.h"

#include <doctest/doctest.h>

TEST_CASE("LookupPrice knows the OpenAI embedding models") {
  double usd = 0;
  REQUIRE(LookupPrice("text-embedding-3-small", &usd));
  CHECK(usd == doctest::Approx(0.02));
  REQUIRE(LookupPrice("text-embedding-3-large", &usd));
  CHECK(usd == doctest::Approx(0.13));
  REQUIRE(LookupPrice("text-embedding-ada-002", &usd));
  CHECK(usd == doctest::Approx(0.10));
}

TEST_CASE("LookupPrice refuses a model it does not know") {
  double usd = -1;
  CHECK_FALSE(LookupPrice("my-local-model", &usd));
  CHECK_FALSE(LookupPrice("text-embedding-3-small-x", &usd));
  CHECK(usd == -1);
}
