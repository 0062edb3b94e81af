#include "tokenize/bpe.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "providers/base64.h"

namespace {

// A vocabulary of the 256 bytes (ranks 0-255) then `extra` (ranks 256...).
Vocab MakeVocab(const std::vector<std::string>& extra) {
  std::string data;
  int rank = 0;
  for (int b = 0; b < 256; ++b)
    data += Base64Encode(std::string(1, static_cast<char>(b))) + " " +
            std::to_string(rank++) + "\n";
  for (const std::string& token : extra)
    data += Base64Encode(token) + " " + std::to_string(rank++) + "\n";
  Vocab vocab;
  std::string err;
  REQUIRE(vocab.Parse(data, &err));
  return vocab;
}

// The ids BytePairEncode appends, checking that it returns their number
// both when appending and when only counting.
std::vector<uint32_t> Encode(const Vocab& vocab, std::string_view piece) {
  std::vector<uint32_t> ids;
  size_t count = BytePairEncode(vocab, piece, &ids);
  CHECK(count == ids.size());
  CHECK(BytePairEncode(vocab, piece, nullptr) == count);
  return ids;
}

}  // namespace

TEST_CASE("BytePairEncode merges the lowest rank first") {
  Vocab vocab = MakeVocab({"bc", "ab", "bcd"});  // 256 257 258
  // "bc" outranks "ab", so "ab" is never formed.
  CHECK(Encode(vocab, "abcd") == std::vector<uint32_t>{'a', 258});
  CHECK(Encode(vocab, "abce") == std::vector<uint32_t>{'a', 256, 'e'});
  CHECK(Encode(vocab, "b") == std::vector<uint32_t>{'b'});
  CHECK(Encode(vocab, "ba") == std::vector<uint32_t>{'b', 'a'});
}

TEST_CASE("BytePairEncode emits a whole-piece token even if merges miss it") {
  Vocab vocab = MakeVocab({"xy", "abc"});
  CHECK(Encode(vocab, "abc") == std::vector<uint32_t>{257});
  CHECK(Encode(vocab, "abcx") == std::vector<uint32_t>{'a', 'b', 'c', 'x'});
}

TEST_CASE("BytePairEncode takes the leftmost of equal pairs, short or long") {
  Vocab vocab = MakeVocab({"aa", "aaaa"});
  CHECK(Encode(vocab, "aaa") == std::vector<uint32_t>{256, 'a'});
  // Short pieces rescan an array, long ones use a heap; both give the same.
  for (size_t n : {5, 6, 7, 60, 63, 64, 65, 66, 67, 1000, 1001, 1002, 1003}) {
    CAPTURE(n);
    std::vector<uint32_t> expected(n / 4, 257);
    if (n % 4 >= 2) expected.push_back(256);
    if (n % 2 == 1) expected.push_back('a');
    CHECK(Encode(vocab, std::string(n, 'a')) == expected);
  }
}

TEST_CASE("BytePairEncode rescores both neighbours after a merge") {
  Vocab vocab = MakeVocab({"bc", "abc", "bcd", "abcd"});
  // bc first; then abc (257) on its left beats bcd (258) on its right; then
  // abc's new right pair gives abcd.
  CHECK(Encode(vocab, "xabcdx") == std::vector<uint32_t>{'x', 259, 'x'});
  std::string long_piece =
      std::string(100, 'x') + "abcd" + std::string(100, 'x');
  std::vector<uint32_t> expected(100, 'x');
  expected.push_back(259);
  expected.insert(expected.end(), 100, 'x');
  CHECK(Encode(vocab, long_piece) == expected);
}
