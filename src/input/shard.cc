#include "input/shard.h"

#include <charconv>

#include "journal/digest.h"

namespace {

// At most this many shards: more processes than that over one input
// would each read the whole input for a sliver of it.
constexpr uint32_t kMaxShards = 65536;

bool ParseCount(std::string_view text, uint32_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

bool Shard::Parse(std::string_view spec, Shard* out, std::string* err) {
  size_t slash = spec.find('/');
  uint32_t k = 0, n = 0;
  if (slash == std::string_view::npos || !ParseCount(spec.substr(0, slash), &k) ||
      !ParseCount(spec.substr(slash + 1), &n) || n < 1 || n > kMaxShards ||
      k < 1 || k > n) {
    *err = "--shard must be K/N with 1 <= K <= N <= " +
           std::to_string(kMaxShards) + ", e.g. 2/4; got '" +
           std::string(spec) + "'";
    return false;
  }
  out->index_ = k - 1;
  out->count_ = n;
  return true;
}

bool Shard::OwnsId(std::string_view id_json) const {
  if (count_ == 1) return true;
  // SHA-256 rather than std::hash: fixed by its standard, so a shard's
  // records stay the same across builds, machines and versions.
  Sha256::Digest d = Sha256Of(id_json);
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = h << 8 | d[i];
  return h % count_ == index_;
}

bool Shard::OwnsLine(uint64_t line_index) const {
  return line_index % count_ == index_;
}
