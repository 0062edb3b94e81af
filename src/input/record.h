// Value types that carry one input record, and one rejected record, through
// the stages from reader to writer. Plain data; no library headers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

/// One accepted input record, after reading and normalization.
struct Record {
  uint64_t seq = 0;        ///< 0-based position among all input lines: output order.
  uint64_t line = 0;       ///< 1-based line number within its source.
  uint32_t source = 0;     ///< Index of its input in Options::inputs.
  std::string id_json;     ///< The id exactly as a JSON value, type preserved.
  std::string text;        ///< Normalized text, valid UTF-8, never empty.
  std::string carry_json;  ///< Carried fields as `"name":value` pairs joined by
                           ///< commas (no braces), or empty.
  uint32_t tokens = 0;     ///< Token count as the provider counts it (or an
                           ///< upper-bound estimate where it is not public).
  uint32_t part = 0;       ///< With --overlong split: which piece of the
  uint32_t parts = 1;      ///< record's text this is, of how many.
  /// Truncated again after the server refused it as too long: a second
  /// refusal rejects it.
  bool recut = false;
  bool truncated = false;  ///< Cut to a token cap, once or twice: counted once.
  /// SHA-256 of the normalized text under the run's settings (journal.h):
  /// the journal's key, and how identical texts in one run are found.
  std::array<uint8_t, 32> key{};
};

/// The bytes an embedded record keeps in memory until its line is written:
/// its text and its vector of `dims` floats. The read window counts them,
/// first among the pipeline's held bytes, then, from the moment it hands
/// the record over, among the output thread's pending ones; both must use
/// this one figure, or the window drifts.
inline size_t OutputBytes(const Record& record, size_t dims) {
  return record.text.size() + dims * sizeof(float);
}

/// A record that cannot be embedded, reported on the errors output.
struct RecordError {
  uint64_t seq = 0;        ///< As Record::seq.
  uint64_t line = 0;       ///< 1-based line number within its source.
  std::string source;      ///< File name, or "-" for stdin.
  std::string id_json;     ///< The id as JSON when it could be read, else empty.
  std::string field;       ///< The field at fault ("text", "id", ...) or empty
                           ///< when the line as a whole is at fault.
  std::string reason;      ///< Human-readable, starts lower-case, no final period.
};

/// One request's worth of records, in input order.
struct Batch {
  uint64_t number = 0;     ///< 0-based, in the order batches were formed.
  std::vector<Record> records;
  uint64_t tokens = 0;     ///< Sum of records[i].tokens.
  uint64_t bytes = 0;      ///< Sum of records[i].text.size().
};
