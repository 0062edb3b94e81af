// Output formats: each formats one embedded record as one output line.
// JSONL is the first; formats are interchangeable behind RecordWriter.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "record.h"

class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  /// Appends the line for `record` and its vector of `dims` floats to *out.
  virtual void Write(const Record& record, const float* vector, size_t dims,
                     std::string* out) const = 0;
};

/// {"id":<id>,"embedding":[f,...],<carried fields>}\n with every float
/// printed in the shortest form that reads back as the same float32.
std::unique_ptr<RecordWriter> NewJsonlWriter();

/// Appends the shortest decimal that round-trips to `value` as a float32.
void AppendFloat(float value, std::string* out);

/// The errors output line for `error`: {"line":N,"source":"...","id":...,
/// "field":"...","error":"..."}\n (id and field only when known).
void AppendErrorJson(const RecordError& error, std::string* out);

/// The same error as a one-line human message (no newline):
/// `<source>:<line>: id <id>: <reason>`, the id part only when known. Reasons
/// name their field themselves.
std::string FormatErrorMessage(const RecordError& error);
