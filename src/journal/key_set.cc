#include "journal/key_set.h"

#include <cstring>

namespace {

uint64_t Prefix(const JournalKey& key) {
  uint64_t p;
  std::memcpy(&p, key.data(), sizeof p);
  return p ? p : 1;
}

// Linear probing from the prefix's own bits (uniform already); `mask` is
// the table size less one.
size_t Place(const std::vector<uint64_t>& slots, uint64_t prefix) {
  size_t mask = slots.size() - 1;
  size_t i = static_cast<size_t>(prefix) & mask;
  while (slots[i] != 0 && slots[i] != prefix) i = (i + 1) & mask;
  return i;
}

}  // namespace

bool KeySet::Insert(const JournalKey& key) {
  // At most three quarters full: probes stay short (about 2.5 for a key
  // found, 8.5 for one not), and the table 11 to 21 bytes a key.
  if ((count_ + 1) * 4 > slots_.size() * 3) Grow();
  uint64_t prefix = Prefix(key);
  size_t i = Place(slots_, prefix);
  if (slots_[i] == prefix) return false;
  slots_[i] = prefix;
  ++count_;
  return true;
}

void KeySet::Grow() {
  std::vector<uint64_t> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
  for (uint64_t prefix : old)
    if (prefix != 0) slots_[Place(slots_, prefix)] = prefix;
}
