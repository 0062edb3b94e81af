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

TEST_CASE("Base64 refuses white space anywhere, as RFC 4648 does") {
  std::string out;
  for (const char* coded : {" Zm9v", "Zm9v ", "\nZm9v", "Zm9v\n", "Zm9v\r\n",
                            "    Zm9v", "Zm9v    ", "Zm 9v", "Zg=\n", "\tZg="})
    CHECK_FALSE(Base64Decode(coded, &out));
  CHECK(out.empty());
}

namespace {

// The rules written out plainly, one character at a time, to hold the
// decoder to: every quartet from the alphabet, '=' only as the last one or
// two characters of the whole input.
bool ReferenceDecode(std::string_view in, std::string* out) {
  static const std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->clear();
  if (in.size() % 4 != 0) return false;
  size_t padding = 0;
  while (padding < 2 && padding < in.size() && in[in.size() - 1 - padding] == '=')
    ++padding;
  uint32_t bits = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    size_t v = i >= in.size() - padding ? 0 : kAlphabet.find(in[i]);
    if (v == std::string_view::npos) return false;
    bits = bits << 6 | static_cast<uint32_t>(v);
    if (i % 4 == 3) {
      out->push_back(static_cast<char>(bits >> 16));
      out->push_back(static_cast<char>(bits >> 8));
      out->push_back(static_cast<char>(bits));
    }
  }
  out->resize(out->size() - padding);
  return true;
}

}  // namespace

TEST_CASE("Base64 decodes every short input over a mixed alphabet as the rules say") {
  // Alphabet ends, padding, white space, a NUL, a byte above ASCII, and a
  // URL-safe character: every string of up to 8 of these with a few fixed.
  const std::string kChars = std::string("AQ/+=z \n-\x80", 10) + '\0';
  std::string in, got, want;
  size_t checked = 0;
  for (size_t len : {4u, 8u}) {
    size_t combos = 1;
    for (size_t i = 0; i < 4; ++i) combos *= kChars.size();
    for (size_t c = 0; c < combos; ++c) {
      // The last four characters vary over every combination; the rest of
      // an 8-character input is a valid quartet.
      in = len == 8 ? "Zm9v" : "";
      for (size_t i = 0, k = c; i < 4; ++i, k /= kChars.size())
        in += kChars[k % kChars.size()];
      bool ok = Base64Decode(in, &got);
      CAPTURE(in);
      REQUIRE(ok == ReferenceDecode(in, &want));
      if (ok) CHECK(got == want);
      // The same quartet first: padding or junk before the end must fail.
      std::string front = in.substr(in.size() - 4) + "Zm9v";
      REQUIRE(Base64Decode(front, &got) == ReferenceDecode(front, &want));
      ++checked;
    }
  }
  CHECK(checked == 2 * 11 * 11 * 11 * 11);
}

TEST_CASE("Base64Encode agrees with the decoder on every length up to 64") {
  std::string raw, back;
  for (size_t n = 0; n <= 64; ++n) {
    raw.push_back(static_cast<char>(n * 37 + 11));
    std::string coded = Base64Encode(raw.substr(0, n));
    CHECK(coded.size() == (n + 2) / 3 * 4);
    REQUIRE(Base64Decode(coded, &back));
    CHECK(back == raw.substr(0, n));
  }
}
