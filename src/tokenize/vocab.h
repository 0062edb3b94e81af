// The mergeable ranks of one byte-level BPE encoding: token bytes to rank
// and back, read from a tiktoken rank file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

/// Stands for "no such token" wherever a rank is returned.
inline constexpr uint32_t kNoRank = UINT32_MAX;

class Vocab {
 public:
  /// Reads `data` in tiktoken's rank file format: one line
  /// "base64(token bytes) SP rank\n" per token, ranks 0, 1, 2, ... in order,
  /// no token twice, and every single byte a token. Returns false and fills
  /// *err if `data` is not so. Call once, on a new Vocab.
  bool Parse(std::string_view data, std::string* err);

  /// The rank of the token whose bytes are `bytes`, or kNoRank.
  uint32_t Rank(std::string_view bytes) const;
  /// The rank of the one-byte token `b`.
  uint32_t ByteRank(unsigned char b) const { return byte_ranks_[b]; }
  /// The rank of the two-byte token `a b`, or kNoRank.
  uint32_t PairRank(unsigned char a, unsigned char b) const {
    return pair_ranks_[a << 8 | b];
  }
  /// The bytes of the token of rank `rank`, which is below size().
  std::string_view Bytes(uint32_t rank) const {
    return std::string_view(bytes_.data() + offsets_[rank],
                            offsets_[rank + 1] - offsets_[rank]);
  }
  /// The number of tokens; their ranks are 0 to size() - 1.
  uint32_t size() const { return static_cast<uint32_t>(offsets_.size()) - 1; }

 private:
  // An open-addressing table slot: a token's rank, its size (0 when the
  // slot is empty) and its first 8 bytes, so most lookups read nothing else.
  struct Slot {
    uint64_t head;
    uint32_t rank;
    uint32_t size;
  };
  struct UnmapSlots {
    size_t bytes;
    void operator()(Slot* slots) const;
  };

  // `count` empty slots, or null if out of memory.
  static std::unique_ptr<Slot[], UnmapSlots> MapSlots(size_t count);
  // False if the token is in the table already.
  bool Insert(uint32_t rank, uint64_t hash);
  // The slot holding the n bytes at p, whose Head() and Hash() are `head`
  // and `hash`, or else the empty slot where they would go.
  size_t FindSlot(const unsigned char* p, size_t n, uint64_t head,
                  uint64_t hash) const;

  std::string bytes_;  // Every token's bytes, in rank order.
  // Token r is bytes_[offsets_[r], offsets_[r + 1]).
  std::vector<uint32_t> offsets_{0};
  std::unique_ptr<Slot[], UnmapSlots> slots_;
  size_t slot_mask_ = 0;           // The number of slots, a power of two, - 1.
  int shift_ = 64;                 // 64 - log2(slot count): hash to slot.
  // A Bloom filter of the tokens' hashes: most lookups of a non-token end
  // here, without touching the slots. Size a power of two.
  std::vector<uint64_t> filter_;
  std::vector<uint32_t> byte_ranks_;
  std::vector<uint32_t> pair_ranks_;
};
