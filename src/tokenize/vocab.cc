#include "tokenize/vocab.h"

#include <sys/mman.h>

#include <charconv>
#include <cstring>

#include "providers/base64.h"
#include "tokenize/byte_hash.h"

namespace {

using byte_hash::Hash;
using byte_hash::Head;

inline uint64_t HashOf(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  return Hash(p, bytes.size(), Head(p, bytes.size()));
}

// Two bits of a filter word, from hash bits that neither the word index
// (the low bits) nor the slot index (the high bits) uses.
inline uint64_t FilterBits(uint64_t hash) {
  return uint64_t{1} << (hash >> 24 & 63) | uint64_t{1} << (hash >> 30 & 63);
}

// 256 KiB, to stay in a core's L2 cache, where the slots do not.
constexpr size_t kFilterWords = size_t{1} << 15;

}  // namespace

bool Vocab::Parse(std::string_view data, std::string* err) {
  auto fail = [err](uint32_t rank, const char* problem) {
    *err = "rank file line " + std::to_string(rank + 1) + ": " + problem;
    return false;
  };
  bytes_.reserve(data.size() / 4 * 3);
  std::string token;
  size_t pos = 0;
  for (uint32_t rank = 0; pos < data.size(); ++rank) {
    size_t eol = data.find('\n', pos);
    if (eol == std::string_view::npos)
      return fail(rank, "no newline at the end");
    std::string_view line = data.substr(pos, eol - pos);
    pos = eol + 1;
    size_t space = line.find(' ');
    if (space == std::string_view::npos ||
        !Base64Decode(line.substr(0, space), &token) || token.empty())
      return fail(rank, "not \"base64 rank\"");
    uint32_t value = 0;
    auto [end, ec] = std::from_chars(line.data() + space + 1,
                                     line.data() + line.size(), value);
    if (ec != std::errc() || end != line.data() + line.size() || value != rank)
      return fail(rank, "ranks are not 0, 1, 2, ... in order");
    bytes_ += token;
    offsets_.push_back(static_cast<uint32_t>(bytes_.size()));
  }

  // At most 3/8 full, so that linear probes stay short.
  size_t capacity = 256;
  int bits = 8;
  while (capacity * 3 < size() * size_t{8}) {
    capacity *= 2;
    ++bits;
  }
  slots_ = MapSlots(capacity);
  if (!slots_) {
    *err = "out of memory";
    return false;
  }
  slot_mask_ = capacity - 1;
  shift_ = 64 - bits;
  filter_.assign(kFilterWords, 0);
  // Slots are far apart in memory: fetch each some inserts ahead.
  constexpr uint32_t kAhead = 16;
  std::vector<uint64_t> hashes(size());
  for (uint32_t rank = 0; rank < size(); ++rank)
    hashes[rank] = HashOf(Bytes(rank));
  for (uint32_t rank = 0; rank < size(); ++rank) {
    if (rank + kAhead < size())
      __builtin_prefetch(&slots_[hashes[rank + kAhead] >> shift_]);
    if (!Insert(rank, hashes[rank])) return fail(rank, "token listed twice");
  }

  byte_ranks_.resize(256);
  for (int b = 0; b < 256; ++b) {
    char byte = static_cast<char>(b);
    byte_ranks_[b] = Rank(std::string_view(&byte, 1));
    if (byte_ranks_[b] == kNoRank) {
      *err = "rank file: byte " + std::to_string(b) + " is not a token";
      return false;
    }
  }
  pair_ranks_.assign(65536, kNoRank);
  for (uint32_t rank = 0; rank < size(); ++rank) {
    std::string_view token = Bytes(rank);
    if (token.size() == 2)
      pair_ranks_[static_cast<unsigned char>(token[0]) << 8 |
                  static_cast<unsigned char>(token[1])] = rank;
  }
  return true;
}

void Vocab::UnmapSlots::operator()(Slot* slots) const {
  munmap(slots, bytes);
}

std::unique_ptr<Vocab::Slot[], Vocab::UnmapSlots> Vocab::MapSlots(
    size_t count) {
  // Anonymous pages are zeroed, which makes every slot empty. In 2 MiB
  // pages, the table costs a few page faults instead of thousands as it is
  // filled at random, and lookups miss the TLB less; over-map by a page's
  // size to align it so.
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  size_t bytes = count * sizeof(Slot);
  void* mapped = mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(mapped);
  uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > start) munmap(mapped, aligned - start);
  munmap(reinterpret_cast<void*>(aligned + bytes), start + kHugePage - aligned);
  // Only advice: without huge pages the table still works.
  madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
  return std::unique_ptr<Slot[], UnmapSlots>(reinterpret_cast<Slot*>(aligned),
                                             UnmapSlots{bytes});
}

bool Vocab::Insert(uint32_t rank, uint64_t hash) {
  std::string_view token = Bytes(rank);
  const auto* p = reinterpret_cast<const unsigned char*>(token.data());
  uint64_t head = Head(p, token.size());
  Slot& slot = slots_[FindSlot(p, token.size(), head, hash)];
  if (slot.size != 0) return false;
  slot = Slot{head, rank, static_cast<uint32_t>(token.size())};
  filter_[hash & (filter_.size() - 1)] |= FilterBits(hash);
  return true;
}

uint32_t Vocab::Rank(std::string_view bytes) const {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  uint64_t head = Head(p, bytes.size());
  uint64_t hash = Hash(p, bytes.size(), head);
  uint64_t bits = FilterBits(hash);
  if ((filter_[hash & (filter_.size() - 1)] & bits) != bits) return kNoRank;
  const Slot& slot = slots_[FindSlot(p, bytes.size(), head, hash)];
  return slot.size != 0 ? slot.rank : kNoRank;
}

size_t Vocab::FindSlot(const unsigned char* p, size_t n, uint64_t head,
                       uint64_t hash) const {
  for (size_t i = hash >> shift_;; i = (i + 1) & slot_mask_) {
    const Slot& slot = slots_[i];
    if (slot.size == 0) return i;
    // Only the bytes past the head are left to compare, and only for
    // tokens longer than 8 bytes.
    if (slot.head == head && slot.size == n &&
        (n <= 8 ||
         memcmp(bytes_.data() + offsets_[slot.rank] + 8, p + 8, n - 8) == 0))
      return i;
  }
}
