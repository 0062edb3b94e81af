// Output formats: each writes one embedded record as one output line (or,
// for COPY BINARY, one tuple). JSONL, PostgreSQL text COPY (TSV), CSV and
// COPY BINARY are interchangeable behind RecordWriter, chosen by
// NewRecordWriter from an OutputConfig.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "input/record.h"
#include "output/output_layout.h"

class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  /// Appends what precedes the first record (COPY BINARY's file header;
  /// nothing for the line formats) to *out. Called once, before any Write.
  virtual void AppendHeader(std::string* out) const { (void)out; }
  /// Whether `record` can be written so that its target loads it as it is.
  /// False, with *field (the input field at fault) and *reason set, for a
  /// value the format cannot carry: in tsv, csv and binary an id or carried
  /// string holding U+0000, which PostgreSQL text cannot store (COPY would
  /// refuse the whole load, or with psql's \copy of tsv load a wrong row).
  /// JSONL accepts every record: JSON spells U+0000 as an escape. The
  /// pipeline asks before a record is embedded, so a refusal costs no
  /// request and becomes an error record; Write is called only for accepted
  /// records.
  virtual bool Accepts(const Record& record, std::string* field,
                       std::string* reason) const {
    (void)record, (void)field, (void)reason;
    return true;
  }
  /// Whether the `dims` floats at `vector` can be written so that the
  /// output's vector type stores them: VectorStorable for the writer's
  /// layout. Only known once the vector has arrived, so the pipeline asks
  /// as it releases each record, and a refused one becomes an error record
  /// in its place; Write is called only for accepted vectors.
  virtual bool AcceptsVector(const float* vector, size_t dims,
                             std::string* field, std::string* reason) const {
    (void)vector, (void)dims, (void)field, (void)reason;
    return true;
  }
  /// Appends the line for `record` and its vector of `dims` floats to *out.
  virtual void Write(const Record& record, const float* vector, size_t dims,
                     std::string* out) const = 0;
  /// Appends what follows the last record (COPY BINARY's trailer) to *out.
  /// Called once at the end of a run; output without it still loads.
  virtual void AppendTrailer(std::string* out) const { (void)out; }
};

/// Whether `layout`'s vector type can store the `dims` floats at `vector`.
/// Only a halfvec can fail: false, with *field "embedding" and *reason
/// naming the first float whose nearest half is infinite (|f| >= 65520),
/// which pgvector refuses, failing the whole COPY (or, from JSONL, the
/// cast).
bool VectorStorable(const OutputLayout& layout, const float* vector,
                    size_t dims, std::string* field, std::string* reason);

/// What every PostgreSQL COPY writer (text, CSV, binary) shares: its column
/// layout, the record's column values, and refusing a record whose values no
/// PostgreSQL text column can store, or whose vector its column cannot.
class CopyWriter : public RecordWriter {
 public:
  explicit CopyWriter(OutputLayout layout)
      : layout_(std::move(layout)), columns_(&layout_) {}
  bool Accepts(const Record& record, std::string* field,
               std::string* reason) const override {
    columns_.Reset(record);
    return columns_.Storable(field, reason);
  }
  bool AcceptsVector(const float* vector, size_t dims, std::string* field,
                     std::string* reason) const override {
    return VectorStorable(layout_, vector, dims, field, reason);
  }

 protected:
  const OutputLayout layout_;
  mutable ColumnText columns_;  // Per-record scratch, hence mutable.
};

/// The writer for config's format, columns and vector style, or null with
/// *err set (see ParseOutputLayout) when the configuration is invalid.
std::unique_ptr<RecordWriter> NewRecordWriter(const OutputConfig& config,
                                              std::string* err);

/// The default JSONL writer: {"id":<id>,"embedding":[f,...],<carried
/// fields>}\n with every float printed in the shortest form that reads back
/// as the same float32.
std::unique_ptr<RecordWriter> NewJsonlWriter();

/// JSONL with any layout: the columns in order as "id":<id as given>,
/// "embedding":<vector>, "<path>":<value as given> (omitted when the record
/// lacks it), "tokens":N, "model":"<name>". A vector in pgvector, pgarray
/// or halfvec style is a JSON string holding the literal.
std::unique_ptr<RecordWriter> NewJsonlWriter(const OutputLayout& layout);

/// Appends `dims` floats, each as AppendFloat prints it, joined by commas,
/// in [..] (json, pgvector, halfvec) or {..} (pgarray). The text needs no
/// escaping in JSON or text COPY; in CSV it needs quotes (it holds commas).
void AppendVectorText(VectorStyle style, const float* vector, size_t dims,
                      std::string* out);

/// Appends the shortest decimal that round-trips to `value` as a float32,
/// byte for byte as fmt's "{}" prints it: fixed notation when the first
/// digit's decimal exponent is in [-4, 16) (0.0001, -12.5, 1000000000000000),
/// else one digit, the rest after a point, and a two-digit exponent (1e-05,
/// 1.2345e-05, 1e+16); no ".0" on whole numbers ("1"); "0" and "-0" for the
/// zeros; non-finite values as fmt spells them (nan, -inf).
void AppendFloat(float value, std::string* out);

/// The errors output line for `error`: {"line":N,"source":"...","id":...,
/// "field":"...","error":"..."}\n (id and field only when known).
void AppendErrorJson(const RecordError& error, std::string* out);

/// The same error as a one-line human message (no newline):
/// `<source>:<line>: id <id>: <reason>`, the id part only when known. Reasons
/// name their field themselves.
std::string FormatErrorMessage(const RecordError& error);
