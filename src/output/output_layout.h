// What an output line holds: the format, how a vector is spelled, and which
// columns appear in which order. Parsed once from --format, --vector,
// --columns and --carry; every RecordWriter follows it. Also renders a
// record's non-vector columns as plain text for the formats that write one
// value per column.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "input/json_text.h"
#include "input/record.h"

enum class OutputFormat {
  kJsonl,   ///< One JSON object per line.
  kTsv,     ///< PostgreSQL text COPY: tab-separated, backslash escapes, \N.
  kCsv,     ///< RFC 4180, as PostgreSQL's COPY ... (FORMAT csv) reads it.
  kBinary,  ///< PostgreSQL COPY ... (FORMAT binary).
};

enum class VectorStyle {
  kJson,      ///< [f,...] as a JSON array (a JSON string in no format).
  kPgvector,  ///< [f,...] as pgvector's vector type reads it.
  kPgarray,   ///< {f,...} as PostgreSQL reads real[] / float4[].
  /// [f,...] as pgvector's halfvec reads it, which rounds each float to
  /// half precision (half_float.h); in binary, halfvec's own form, rounded
  /// here.
  kHalfvec,
};

struct OutputColumn {
  enum Kind { kId, kEmbedding, kCarried, kTokens, kModel, kKey };
  Kind kind = kId;
  size_t carry_index = 0;  ///< kCarried: index into OutputLayout::carry_fields.
};

/// The flags as given; see ParseOutputLayout.
struct OutputConfig {
  std::string format = "jsonl";  ///< jsonl | tsv | csv | binary
  /// json | pgvector | pgarray | halfvec; empty: json for jsonl, pgvector
  /// otherwise.
  std::string vector;
  std::string columns = "id,embedding,carried";
  std::vector<std::string> carry_fields;  ///< The --carry paths, in order.
  std::string model;                      ///< Written in the model column.
  std::string id_field = "id";            ///< --id-field, named in refusals.
};

struct OutputLayout {
  OutputFormat format = OutputFormat::kJsonl;
  VectorStyle vector = VectorStyle::kJson;
  std::vector<OutputColumn> columns;
  std::vector<std::string> carry_fields;
  std::string model;
  std::string id_field = "id";
  /// Where "carried" begins in `columns` (its carry_fields.size() columns
  /// follow in --carry order), or npos. JSONL writes Record::carry_json
  /// there as it is, whatever carry_fields says.
  size_t all_carried_at = std::string::npos;
};

/// Fills *layout from `config`. `columns` is a comma-separated list of id,
/// embedding, tokens, model, key (the content key, journal.h's KeyMaker, in
/// lower-case hex), carried (every --carry field, in --carry order)
/// and --carry paths (that one field); each column at most once, the
/// embedding exactly once. Returns false and fills *err (one lower-case
/// sentence naming the flag) for an unknown format, vector style or column,
/// a repeated column, or a combination that cannot be written (a binary
/// vector has no JSON form).
bool ParseOutputLayout(const OutputConfig& config, OutputLayout* layout,
                       std::string* err);

/// A record's non-vector columns as plain text: an id or carried string as
/// its unescaped text, a numeric id as written, any other carried value as
/// compact JSON, the token count in decimal, the model name, the key in hex. One instance per
/// writer; not thread-safe.
class ColumnText {
 public:
  explicit ColumnText(const OutputLayout* layout) : layout_(layout) {}

  /// Makes `record` (which must outlive its use here) the one Get() reads.
  void Reset(const Record& record);

  /// Sets *text to the value of `column` (not kEmbedding) and returns true,
  /// or returns false when the value is SQL NULL: a carried field absent or
  /// JSON null. *text stays valid until the next call.
  bool Get(const OutputColumn& column, std::string_view* text);

  /// The carried field `carry_index` of the record as its JSON pair, or
  /// null when absent. For JSONL, which writes pairs as they came.
  const CarriedField* Carried(size_t carry_index);

  /// Whether every id and carried column of the record, as Get() gives it,
  /// can be a PostgreSQL text value. False, with *field (the --id-field or
  /// --carry path) and *reason set, when one holds U+0000: no PostgreSQL
  /// text type can store it. The server refuses the whole COPY for it, and
  /// psql's \copy of text COPY even cuts the line there and joins the rest
  /// to the next line, loading a wrong row. (RecordParser already ensures
  /// valid UTF-8; NUL is the one byte that is valid there and not here.)
  bool Storable(std::string* field, std::string* reason);

 private:
  // Splits the record's carried fields, on first need: JSONL's default
  // columns never need it.
  void Split();

  const OutputLayout* layout_;
  const Record* record_ = nullptr;
  bool split_done_ = false;
  std::vector<CarriedField> split_;
  // carry index -> index in split_, or -1 when the record lacks the field.
  std::vector<int> found_;
  std::string scratch_;
};
