// Packs records, in input order, into request-sized batches: a batch closes
// at the input cap, or before the provider's per-request token cap would be
// passed by either the exact token sum or the UTF-8 bytes/4 estimate that the
// server itself applies.
#pragma once

#include <cstdint>

#include "input/record.h"

struct BatchLimits {
  uint32_t max_inputs = 2048;
  uint64_t max_tokens = 300000;  ///< Per request, by both counts.
};

/// bytes/4 rounded up: the server-side estimate a record adds to a request.
inline uint64_t EstimatedTokens(uint64_t bytes) { return (bytes + 3) / 4; }

class Batcher {
 public:
  explicit Batcher(BatchLimits limits) : limits_(limits) {}

  /// Adds `record` to the open batch. If it does not fit, the open batch is
  /// first moved to *closed and true is returned; the record then opens the
  /// next batch. Otherwise, if the record brings the batch to the input
  /// cap, that batch is moved to *closed and true is returned. A record that
  /// alone exceeds the caps still gets a batch of its own (per-input caps
  /// are the caller's business).
  bool Add(Record record, Batch* closed);

  /// Moves the open batch, if it has any record, to *closed.
  bool Flush(Batch* closed);

  /// Records in the open batch.
  size_t open_size() const { return open_.records.size(); }

 private:
  bool Close(Batch* closed);

  BatchLimits limits_;
  Batch open_;
  uint64_t open_estimate_ = 0;
  uint64_t next_number_ = 0;
};
