#include "providers/base64.h"

#include <doctest/doctest.h>

TEST_CASE("Base64 round-trips RFC 4648 vectors") {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                         "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    CHECK(Base64Encode(plain[i]) == coded[i]);
    std::string out;
    CHECK(Base64Decode(coded[i], &out));
    CHECK(out == plain[i]);
  }
}

TEST_CASE("Base64 decodes binary float32 bytes") {
  // 1.0f little-endian is 00 00 80 3f.
  std::string out;
  REQUIRE(Base64Decode("AACAPw==", &out));
  CHECK(out == std::string("\x00\x00\x80\x3f", 4));
}

TEST_CASE("Base64 rejects malformed input") {
  std::string out;
  CHECK_FALSE(Base64Decode("Zg=", &out));        // length
  CHECK_FALSE(Base64Decode("Z===", &out));       // too much padding
  CHECK_FALSE(Base64Decode("Zg==Zg==", &out));   // padding in the middle
  CHECK_FALSE(Base64Decode("Zm9*", &out));       // alphabet
  CHECK_FALSE(Base64Decode("=Zm9", &out));
}
