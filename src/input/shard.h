// --shard K/N: which records this process takes when N processes (GNU
// parallel, a Slurm array, a Kubernetes Indexed Job) share one input. The
// partition is by a hash of the record's id as written, so it is the same
// on every machine and every run, and needs no coordination.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

class Shard {
 public:
  /// Every record: no sharding.
  Shard() = default;

  /// Reads "K/N" with 1 <= K <= N. False and *err otherwise.
  static bool Parse(std::string_view spec, Shard* out, std::string* err);

  /// Whether this shard takes the record whose id is `id_json` (its JSON
  /// text exactly as read, so ids 1 and 1.0 are different ids).
  bool OwnsId(std::string_view id_json) const;

  /// Whether this shard reports a line that has no id (a bad line):
  /// line_index counts the lines of all inputs from 0.
  bool OwnsLine(uint64_t line_index) const;

  bool all() const { return count_ == 1; }
  uint32_t index() const { return index_; }  ///< K - 1.
  uint32_t count() const { return count_; }

 private:
  uint32_t index_ = 0;
  uint32_t count_ = 1;
};
