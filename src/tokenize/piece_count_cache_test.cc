#include "tokenize/piece_count_cache.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace {

// Counts each piece as its size plus `bias`, and how often it was asked.
struct FakeCounter {
  size_t operator()(std::string_view piece) {
    ++calls;
    return piece.size() + bias;
  }
  size_t bias = 0;
  int calls = 0;
};

}  // namespace

TEST_CASE("PieceCountCache asks once for a piece it still holds") {
  auto cache = std::make_unique<PieceCountCache>();
  FakeCounter counter;
  auto count = [&](std::string_view piece) { return counter(piece); };
  CHECK(cache->Count(" the", count) == 4);
  CHECK(counter.calls == 1);
  counter.bias = 100;  // A hit must not ask again.
  CHECK(cache->Count(" the", count) == 4);
  CHECK(counter.calls == 1);
}

TEST_CASE("PieceCountCache never takes one piece for another") {
  // Pieces with the same head that differ only in their tail; or only in
  // their size: with trailing zero bytes, or runs of one byte ("=====")
  // whose heads and tails are the same. Each has a count of its own. There
  // are far more pieces than entries, so many share an entry, and a hit on
  // the wrong piece would give another's count.
  std::vector<std::string> pieces;
  for (int i = 0; i < 5000; ++i) {
    std::string id = std::to_string(i);
    pieces.push_back("abcdefgh" + id);
    pieces.push_back("abcdefgh" + std::string(8 - id.size(), 'x') + id);
    for (size_t size = id.size(); size <= 8; ++size)
      pieces.push_back(id + std::string(size - id.size(), '\0'));
  }
  for (int byte = 0; byte < 256; ++byte) {
    for (size_t size = 1; size <= PieceCountCache::kMaxPiece; ++size)
      pieces.push_back(std::string(size, static_cast<char>(byte)));
  }
  // Each piece once ("11" is both an id and a run).
  std::sort(pieces.begin(), pieces.end());
  pieces.erase(std::unique(pieces.begin(), pieces.end()), pieces.end());
  auto cache = std::make_unique<PieceCountCache>();
  size_t wrong = 0;
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (cache->Count(pieces[i], [i](std::string_view) { return i; }) != i)
        ++wrong;
    }
  }
  CHECK(wrong == 0);
}

TEST_CASE("PieceCountCache gives the right count after evictions") {
  auto cache = std::make_unique<PieceCountCache>();
  FakeCounter counter;
  auto count = [&](std::string_view piece) { return counter(piece); };
  // Far more pieces than entries, counted twice: whatever was evicted is
  // asked again (so there are more calls than pieces), and every answer is
  // right.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 20000; ++i) {
      std::string piece = " w" + std::to_string(i);
      CHECK(cache->Count(piece, count) == piece.size());
    }
  }
  CHECK(counter.calls > 20000);
}
