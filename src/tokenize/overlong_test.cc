#include "tokenize/overlong.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

namespace {

std::unique_ptr<TokenCounter> Counter(const char* name, uint32_t added_tokens = 0) {
  std::string err;
  std::unique_ptr<TokenCounter> c = NewTokenCounter("", name, added_tokens, &err);
  REQUIRE_MESSAGE(c, err);
  return c;
}

bool StartsAtCharacter(std::string_view piece) {
  return piece.empty() || (static_cast<unsigned char>(piece[0]) & 0xC0) != 0x80;
}

size_t CharacterCount(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Cuts `text` and checks every property CutByTokens promises.
void CheckCut(const TokenCounter& counter, const std::string& text,
              uint32_t max_tokens) {
  std::vector<std::string_view> pieces;
  std::vector<uint32_t> tokens;
  CutByTokens(counter, text, max_tokens, false, &pieces, &tokens);
  REQUIRE(pieces.size() == tokens.size());
  std::string joined;
  uint32_t total = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    CAPTURE(i);
    CHECK(!pieces[i].empty());
    CHECK(StartsAtCharacter(pieces[i]));
    // Only a single character may be over the cap (cap 1, a CJK character).
    if (tokens[i] > max_tokens) CHECK(CharacterCount(pieces[i]) == 1);
    CHECK(tokens[i] == counter.Count(pieces[i]));
    joined += pieces[i];
    total += tokens[i];
  }
  CHECK(joined == text);
  // Cutting costs at most a few tokens per cut, never saves any.
  CHECK(total >= counter.Count(text));
  // Pieces are not needlessly small (with tiny caps, character boundaries
  // can cost a token per piece), but for the tokens a model adds to each.
  uint32_t added = counter.Count("");
  if (max_tokens >= 100)
    CHECK(pieces.size() <= counter.Count(text) / (max_tokens - added) + 2);

  std::vector<std::string_view> first;
  CutByTokens(counter, text, max_tokens, true, &first, &tokens);
  REQUIRE(first.size() == 1);
  CHECK(first[0] == pieces[0]);
}

}  // namespace

TEST_CASE("LoweredCap is an eighth below what the server refused") {
  CHECK(LoweredCap(3712, 3000) == 2625);   // the server's stated limit
  CHECK(LoweredCap(8000, 8192) == 7000);   // embedpipe's count, lower
  CHECK(LoweredCap(8000, -1) == 7000);     // no limit stated
  CHECK(LoweredCap(1, 1) == 1);
}

TEST_CASE("ParseOverlongPolicy knows the four policies") {
  OverlongPolicy p;
  CHECK(ParseOverlongPolicy("split", &p));
  CHECK(p == OverlongPolicy::kSplit);
  CHECK(ParseOverlongPolicy("truncate", &p));
  CHECK(p == OverlongPolicy::kTruncate);
  CHECK(ParseOverlongPolicy("skip", &p));
  CHECK(ParseOverlongPolicy("fail", &p));
  CHECK(p == OverlongPolicy::kFail);
  CHECK_FALSE(ParseOverlongPolicy("chop", &p));
}

TEST_CASE("CutByTokens keeps pieces within the cap at character boundaries") {
  std::string english, cjk, mixed;
  for (int i = 0; i < 400; ++i) english += "The quick brown fox jumps. ";
  for (int i = 0; i < 900; ++i) cjk += "\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97";  // 中文字
  for (int i = 0; i < 300; ++i)
    mixed += "caf\xc3\xa9 \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb 12345 \n\n   ";
  for (const char* name : {"cl100k_base", "o200k_base", "estimate"}) {
    CAPTURE(name);
    std::unique_ptr<TokenCounter> counter = Counter(name);
    for (const std::string* text : {&english, &cjk, &mixed})
      for (uint32_t cap : {1u, 7u, 100u, 1000u}) {
        CAPTURE(cap);
        CheckCut(*counter, *text, cap);
      }
  }
}

TEST_CASE("CutByTokens leaves room for the tokens a model adds to each piece") {
  // TEI's BERT counts [CLS] and [SEP] too: with the estimate's margin of 3,
  // 1000 ASCII bytes under a cap of 512 are pieces of 509 and 491 bytes.
  std::unique_ptr<TokenCounter> counter = Counter("estimate", 3);
  std::string text(1000, 'a');
  std::vector<std::string_view> pieces;
  std::vector<uint32_t> tokens;
  CutByTokens(*counter, text, 512, false, &pieces, &tokens);
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[0].size() == 509);
  CHECK(pieces[1].size() == 491);
  CHECK(tokens == std::vector<uint32_t>{512, 494});
  std::string mixed;
  for (int i = 0; i < 300; ++i)
    mixed += "caf\xc3\xa9 \xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb 12345 \n\n   ";
  for (uint32_t cap : {1u, 7u, 100u, 1000u}) {
    CAPTURE(cap);
    CheckCut(*counter, mixed, cap);
  }
}

TEST_CASE("CutByTokens leaves a text within the cap whole") {
  std::unique_ptr<TokenCounter> counter = Counter("cl100k_base");
  std::vector<std::string_view> pieces;
  std::vector<uint32_t> tokens;
  CutByTokens(*counter, "hello world", 8191, false, &pieces, &tokens);
  REQUIRE(pieces.size() == 1);
  CHECK(pieces[0] == "hello world");
  CHECK(tokens[0] == 2);
}

TEST_CASE("CombineWeighted is the unit-length token-weighted mean") {
  float a[] = {1, 0};
  float b[] = {0, 1};
  float out[2];
  CombineWeighted({a, b}, {3, 1}, 2, out);
  CHECK(out[0] == doctest::Approx(3 / std::sqrt(10.0)));
  CHECK(out[1] == doctest::Approx(1 / std::sqrt(10.0)));
  CombineWeighted({a}, {5}, 2, out);
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == 0.0f);
}
