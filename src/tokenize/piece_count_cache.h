// The token counts of recently counted short pieces, kept in front of the
// vocabulary and BPE. Most pieces of a text recur (" the", "\n\n", an
// identifier): a hit costs one read of a table small enough to stay in the
// core's L2 cache, where a vocabulary lookup mostly misses it, and it skips
// the merges of pieces that are not one token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenize/byte_hash.h"

class PieceCountCache {
 public:
  /// The longest piece the cache holds, in bytes. Longer pieces (runs of CJK
  /// or of punctuation) are rare and seldom recur.
  static constexpr size_t kMaxPiece = 16;

  /// The number of tokens in `piece`, of 1 to kMaxPiece bytes: the number
  /// cached for these bytes if there is one, else count_piece(piece), which
  /// is cached in place of whichever piece shared its entry.
  template <typename CountPiece>
  uint32_t Count(std::string_view piece, CountPiece count_piece) {
    const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
    size_t n = piece.size();
    uint64_t head = byte_hash::Head(p, n);
    uint64_t tail = n > 8 ? byte_hash::Load64(p + n - 8) : 0;
    Entry& entry = entries_[byte_hash::Hash(p, n, head) >> (64 - kBits)];
    if (entry.head == head && entry.tail == tail && entry.size == n)
      return entry.count;
    uint32_t count = static_cast<uint32_t>(count_piece(piece));
    entry = Entry{head, tail, static_cast<uint32_t>(n), count};
    return count;
  }

 private:
  // The head (first 8 bytes, zero-padded) and tail (last 8 bytes of a piece
  // longer than 8, else 0) together with the size give back every byte of a
  // piece up to 16 bytes, so a hit is always the same piece. Size 0 marks an
  // empty entry.
  struct Entry {
    uint64_t head;
    uint64_t tail;
    uint32_t size;
    uint32_t count;
  };
  // 4096 entries, 96 KiB: 85% to 94% of the pieces of 3 to 16 bytes hit on
  // English text and code. Twice as many gain a few percent more in
  // token_bench, but would take more of the L2 cache from the rest of the
  // pipeline.
  static constexpr int kBits = 12;

  Entry entries_[size_t{1} << kBits] = {};
};
