// A set of journal keys held in 8 bytes each (11 to 21 with the table's
// room), for a pass over an input of any size that must remember which
// texts it has seen (--batch-api's first pass, which sends each distinct
// text once and keeps nothing else per record). An open-addressing table of key prefixes: the keys are SHA-256,
// so two distinct texts share a 64-bit prefix with probability about
// n^2 / 2^65 (3e-6 for 10^7 texts); such a text would be taken for seen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "journal/journal.h"

class KeySet {
 public:
  /// Adds `key`. False when it (or a key of the same prefix) was there.
  bool Insert(const JournalKey& key);

  size_t size() const { return count_; }
  /// Bytes of memory the table takes (for tests and benchmarks).
  size_t bytes() const { return slots_.capacity() * sizeof(uint64_t); }

 private:
  void Grow();

  // 0 marks an empty slot; a key whose prefix is 0 is stored as 1.
  std::vector<uint64_t> slots_;
  size_t count_ = 0;
};
