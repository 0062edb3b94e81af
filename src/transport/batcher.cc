#include "transport/batcher.h"

#include <utility>

bool Batcher::Add(Record record, Batch* closed) {
  uint64_t estimate = EstimatedTokens(record.text.size());
  bool full = !open_.records.empty() &&
              (open_.records.size() >= limits_.max_inputs ||
               open_.tokens + record.tokens > limits_.max_tokens ||
               open_estimate_ + estimate > limits_.max_tokens);
  bool did_close = full && Close(closed);
  open_.tokens += record.tokens;
  open_.bytes += record.text.size();
  open_estimate_ += estimate;
  open_.records.push_back(std::move(record));
  // A batch at the input cap takes nothing more: it goes now, not when a
  // next record comes (a streaming input may send none for a while). Not
  // both closes at once: a batch was closed before this record only if it
  // held another, and then this one alone is at the cap only when the cap
  // is 1, where the open batch is always empty before a record.
  if (!did_close && open_.records.size() >= limits_.max_inputs)
    did_close = Close(closed);
  return did_close;
}

bool Batcher::Flush(Batch* closed) {
  return !open_.records.empty() && Close(closed);
}

bool Batcher::Close(Batch* closed) {
  open_.number = next_number_++;
  *closed = std::move(open_);
  open_ = Batch();
  open_estimate_ = 0;
  return true;
}
