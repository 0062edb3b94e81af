#include "tokenize/vocab.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "providers/base64.h"

namespace {

// A rank file: the 256 single bytes in order, then `extra` tokens.
std::string RankFile(const std::vector<std::string>& extra) {
  std::string data;
  int rank = 0;
  auto add = [&](std::string_view token) {
    data += Base64Encode(token) + " " + std::to_string(rank++) + "\n";
  };
  for (int b = 0; b < 256; ++b) add(std::string(1, static_cast<char>(b)));
  for (const std::string& token : extra) add(token);
  return data;
}

}  // namespace

TEST_CASE("Vocab maps token bytes to ranks and back") {
  Vocab vocab;
  std::string err;
  REQUIRE(vocab.Parse(RankFile({"ab", "abc", std::string("\0\xFF", 2),
                                "a long token of more than sixteen bytes"}),
                      &err));
  CHECK(vocab.size() == 260);
  CHECK(vocab.Rank("ab") == 256);
  CHECK(vocab.Rank("abc") == 257);
  CHECK(vocab.Rank(std::string("\0\xFF", 2)) == 258);
  CHECK(vocab.Rank("a long token of more than sixteen bytes") == 259);
  CHECK(vocab.Rank("a long token of more than sixteen byte") == kNoRank);
  CHECK(vocab.Rank("abcd") == kNoRank);
  CHECK(vocab.Rank("x") == 'x');
  CHECK(vocab.ByteRank(0xFF) == 255);
  CHECK(vocab.PairRank('a', 'b') == 256);
  CHECK(vocab.PairRank('b', 'a') == kNoRank);
  CHECK(vocab.PairRank(0, 0xFF) == 258);
  CHECK(vocab.Bytes(257) == "abc");
}

TEST_CASE("Vocab rejects malformed rank files") {
  std::string good = RankFile({"ab"});
  std::string err;
  auto rejects = [&](std::string data, std::string_view why) {
    Vocab vocab;
    err.clear();
    CHECK_FALSE(vocab.Parse(data, &err));
    CHECK(err.find(why) != std::string::npos);
  };
  rejects(good.substr(0, good.size() - 1), "no newline");
  rejects(good + "YWI= 257\n", "listed twice");
  rejects(good + "YWJj 300\n", "in order");
  rejects(good + "YWJj\n", "base64 rank");
  rejects(good + "YW*j 257\n", "base64 rank");
  rejects(good + " 257\n", "base64 rank");
  rejects(good.substr(good.find('\n') + 1), "in order");
  // Bytes 0-255 in order, but byte 0x41 given as "AB" instead.
  std::string missing = good;
  missing.replace(missing.find("QQ== 65"), 7, "QUI= 65");
  rejects(missing, "byte 65 is not a token");
}
