#include "journal/key_set.h"

#include <doctest/doctest.h>

namespace {

JournalKey KeyOf(uint32_t n) {
  JournalKey key{};
  // As a SHA-256 would: the prefix differs, spread over all its bits.
  uint64_t x = (n + 1) * 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 8; ++i) key[i] = static_cast<uint8_t>(x >> (8 * i));
  return key;
}

}  // namespace

TEST_CASE("KeySet holds each key once, in 8 bytes, at most 3/4 full") {
  KeySet set;
  for (uint32_t n = 0; n < 100000; ++n) CHECK(set.Insert(KeyOf(n)));
  for (uint32_t n = 0; n < 100000; n += 7) CHECK_FALSE(set.Insert(KeyOf(n)));
  CHECK(set.size() == 100000);
  CHECK(set.bytes() == 262144 * 8);  // the power of two at load <= 0.75
}

TEST_CASE("KeySet: a key whose prefix is zero is a key like any other") {
  KeySet set;
  JournalKey zero{};
  CHECK(set.Insert(zero));
  CHECK_FALSE(set.Insert(zero));
  CHECK(set.size() == 1);
}
