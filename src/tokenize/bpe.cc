#include "tokenize/bpe.h"

#include <algorithm>
#include <bit>

namespace {

// Up to this many bytes a piece is merged by rescanning a small array for
// the lowest pair after every merge, as tiktoken does: quadratic, but the
// fastest way for short pieces. Longer ones (words of most non-Latin
// scripts, runs of CJK or of spaces) take a tree; measured on mixed text,
// the tree wins from about this size on.
constexpr size_t kShortPiece = 16;

size_t MergeShort(const Vocab& vocab, const unsigned char* p, size_t n,
                  std::vector<uint32_t>* ids) {
  // Part i covers bytes [part[i].start, part[i + 1].start) and is token
  // part[i].token; pair[i] is the rank of parts i and i + 1 joined.
  struct Part {
    uint32_t start;
    uint32_t token;
  };
  Part part[kShortPiece + 1];
  uint32_t pair[kShortPiece];
  for (size_t i = 0; i < n; ++i) {
    part[i] = {static_cast<uint32_t>(i), vocab.ByteRank(p[i])};
    pair[i] = i + 1 < n ? vocab.PairRank(p[i], p[i + 1]) : kNoRank;
  }
  part[n].start = static_cast<uint32_t>(n);
  size_t parts = n;
  auto joined_rank = [&](size_t i) {
    if (i + 1 >= parts) return kNoRank;
    return vocab.Rank(
        std::string_view(reinterpret_cast<const char*>(p) + part[i].start,
                         part[i + 2].start - part[i].start));
  };
  for (;;) {
    // (rank, index) pairs make the leftmost lowest rank the minimum, found
    // without branches.
    uint64_t lowest = UINT64_MAX;
    for (size_t i = 0; i + 1 < parts; ++i)
      lowest = std::min(lowest, uint64_t{pair[i]} << 32 | i);
    uint32_t rank = static_cast<uint32_t>(lowest >> 32);
    if (rank == kNoRank) break;
    size_t best = static_cast<uint32_t>(lowest);
    part[best].token = rank;
    // Drop part best + 1, now inside part best.
    std::copy(part + best + 2, part + parts + 1, part + best + 1);
    std::copy(pair + best + 2, pair + parts, pair + best + 1);
    --parts;
    pair[best] = joined_rank(best);
    if (best > 0) pair[best - 1] = joined_rank(best - 1);
  }
  if (ids) {
    for (size_t i = 0; i < parts; ++i) ids->push_back(part[i].token);
  }
  return parts;
}

// The same merges in the same order, with the parts in a linked list and
// the pair ranks in the leaves of a tournament tree, each inner node holding
// the lower of its children as (rank, start): the root is the next merge,
// the leftmost of equal ranks, and a merge updates three leaf-to-root paths.
size_t MergeLong(const Vocab& vocab, const unsigned char* p, size_t n,
                 std::vector<uint32_t>* ids) {
  // Reused by every call on the thread, to allocate only for a longer piece
  // than any before.
  thread_local struct {
    std::vector<uint32_t> next, prev, token;
    std::vector<uint64_t> tree;
  } scratch;
  // Parts are named by their first byte's offset; tree[leaves + i] is the
  // pair rank of part i (kNoRank where there is no part or no pair).
  size_t leaves = std::bit_ceil(n);
  scratch.next.resize(n);
  scratch.prev.resize(n);
  scratch.token.resize(n);
  scratch.tree.resize(2 * leaves);
  uint32_t* next = scratch.next.data();
  uint32_t* prev = scratch.prev.data();
  uint32_t* token = scratch.token.data();
  uint64_t* tree = scratch.tree.data();

  auto set_pair_rank = [&](uint32_t i, uint32_t rank) {
    size_t node = leaves + i;
    uint64_t low = uint64_t{rank} << 32 | i;
    tree[node] = low;
    // Up to the first ancestor whose value stays the same.
    for (; node > 1; node /= 2) {
      low = std::min(low, tree[node ^ 1]);
      if (tree[node / 2] == low) break;
      tree[node / 2] = low;
    }
  };
  auto joined_rank = [&](uint32_t i) {
    uint32_t j = next[i];
    if (j >= n) return kNoRank;
    return vocab.Rank(
        std::string_view(reinterpret_cast<const char*>(p) + i, next[j] - i));
  };
  for (uint32_t i = 0; i < n; ++i) {
    next[i] = i + 1;
    prev[i] = i - 1;
    token[i] = vocab.ByteRank(p[i]);
    uint32_t rank = i + 1 < n ? vocab.PairRank(p[i], p[i + 1]) : kNoRank;
    tree[leaves + i] = uint64_t{rank} << 32 | i;
  }
  std::fill(tree + leaves + n, tree + 2 * leaves, UINT64_MAX);
  for (size_t node = leaves - 1; node > 0; --node)
    tree[node] = std::min(tree[2 * node], tree[2 * node + 1]);

  size_t parts = n;
  for (;; --parts) {
    uint32_t rank = static_cast<uint32_t>(tree[1] >> 32);
    if (rank == kNoRank) break;
    uint32_t i = static_cast<uint32_t>(tree[1]);
    uint32_t gone = next[i];
    token[i] = rank;
    next[i] = next[gone];
    if (next[i] < n) prev[next[i]] = i;
    set_pair_rank(gone, kNoRank);
    set_pair_rank(i, joined_rank(i));
    if (i > 0) set_pair_rank(prev[i], joined_rank(prev[i]));
  }
  if (ids) {
    for (uint32_t i = 0; i < n; i = next[i]) ids->push_back(token[i]);
  }
  return parts;
}

}  // namespace

size_t BytePairEncode(const Vocab& vocab, std::string_view piece,
                      std::vector<uint32_t>* ids) {
  const auto* p = reinterpret_cast<const unsigned char*>(piece.data());
  size_t n = piece.size();
  uint32_t whole = n == 1   ? vocab.ByteRank(p[0])
                   : n == 2 ? vocab.PairRank(p[0], p[1])
                            : vocab.Rank(piece);
  if (whole != kNoRank) {
    if (ids) ids->push_back(whole);
    return 1;
  }
  return n <= kShortPiece ? MergeShort(vocab, p, n, ids)
                          : MergeLong(vocab, p, n, ids);
}
