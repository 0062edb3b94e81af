// Holds finished records until every earlier input line is finished too, so
// output comes out in input order however requests complete. Each input line
// (seq) is resolved exactly once: embedded, rejected, or skipped.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "input/record.h"
#include "transport/scheduler.h"

/// One input line ready to be written.
struct Released {
  const Record* record = nullptr;    ///< Set when embedded.
  const float* vector = nullptr;     ///< record's vector, `dims` floats.
  size_t dims = 0;
  const RecordError* error = nullptr;///< Set when rejected.
  /// When embedded: keeps record and vector alive past the release.
  std::shared_ptr<const BatchResult> owner;
  // Neither set: a line with nothing to write (blank).
};

class ReorderBuffer {
 public:
  /// Line `seq` has nothing to write.
  void Skip(uint64_t seq);
  /// Line `error.seq` goes to the errors output.
  void Reject(RecordError error);
  /// Every whole record of an embedded batch result. Pieces of a split
  /// record (parts > 1) are skipped: their combined vector comes as a
  /// result of its own.
  void Embed(std::shared_ptr<const BatchResult> result);

  /// Calls `sink` for each line from the oldest unreleased one on, in order,
  /// while lines are resolved and `sink` returns true. Returns the number
  /// released.
  size_t Release(const std::function<bool(const Released&)>& sink);

  /// Lines resolved but held back by an earlier unresolved one.
  size_t held() const { return held_; }
  /// The next line to be released.
  uint64_t next_seq() const { return head_seq_; }

 private:
  struct Slot {
    enum State { kOpen, kSkip, kError, kEmbedded } state = kOpen;
    std::shared_ptr<const BatchResult> result;
    size_t index = 0;
    std::unique_ptr<RecordError> error;
  };
  Slot& At(uint64_t seq);

  std::deque<Slot> slots_;
  uint64_t head_seq_ = 0;
  size_t held_ = 0;
};
