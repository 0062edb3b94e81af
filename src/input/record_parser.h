// Parses one input line, a JSON object, into the parts the pipeline needs:
// the id, the text and the carried fields. One SAX pass, no DOM, buffers
// reused from line to line.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

/// Which fields of a record matter. A field path names a member by its key,
/// or a member of nested objects by keys joined with '.' ("meta.id"). Keys
/// match byte for byte; a key that itself contains '.' cannot be named.
struct RecordParserConfig {
  std::string id_field = "id";
  std::string text_field = "text";
  /// Fields written through to the output unchanged, in this order.
  std::vector<std::string> carry_fields;
  /// When false a record without the id field is accepted (id_json empty).
  /// An id field that is present must still be a string or a number.
  bool require_id = true;
};

/// What Parse() extracts from one line.
struct ParsedRecord {
  /// The id as compact JSON, type preserved: a string re-escaped, a number
  /// exactly as written (`1.50`, `1e3` and `12345678901234567890` stay so).
  /// A string id with invalid UTF-8 is an error: changed, it could collide.
  std::string id_json;
  /// The text field's value, unescaped; bytes as they came, so it may hold
  /// invalid UTF-8 or NUL bytes. Not validated here (the normalizer does it).
  std::string text;
  /// For each carried field present in the record, in configured order,
  /// `"<path as given>":<value as compact JSON>`, joined by commas, no
  /// braces; empty when none is present. Numbers stay as written. Strings are
  /// re-escaped, each ill-formed UTF-8 subpart replaced by U+FFFD.
  std::string carry_json;
};

enum class ParseStatus {
  kRecord,  ///< *out holds the record.
  kBlank,   ///< Empty or only JSON whitespace: not a record and not an error.
  kError,   ///< *field and *reason say what is wrong.
};

/// Splits a dotted field path into its keys ("a.b" -> {"a", "b"}). Returns
/// false and fills *err when the path or one of its keys is empty.
bool SplitFieldPath(std::string_view path, std::vector<std::string>* keys,
                    std::string* err);

class RecordParser {
 public:
  /// A parser for the default configuration.
  RecordParser();
  ~RecordParser();
  RecordParser(RecordParser&&) noexcept;
  RecordParser& operator=(RecordParser&&) noexcept;

  /// Replaces the configuration. Returns false and fills *err (leaving the
  /// parser as it was) when a field path is malformed or a field is carried
  /// twice.
  bool Init(const RecordParserConfig& config, std::string* err);

  /// Parses one line (without its line terminator). On kError fills *field
  /// with the field path at fault, or leaves it empty when the line as a
  /// whole is at fault, and *reason with a short lower-case message without a
  /// final period:
  ///   invalid JSON at byte 17: Missing a comma or '}' after an object member
  ///   expected a JSON object, got an array
  ///   field "id" is missing
  ///   field "id" must be a string or number, got object
  ///   field "id" is not valid UTF-8
  ///   field "text" is missing
  ///   field "text" must be a string, got number
  /// Byte offsets count from 0. The id is checked before the text, and
  /// out->id_json is set whenever the id was read, even when the text then
  /// fails. With duplicate keys the first occurrence wins: later members of
  /// the same name are ignored, also when a path goes through them. JSON
  /// nested to any depth is handled without recursion. A number too large
  /// for a double (1e400) is invalid JSON here, as RapidJSON rejects it.
  ParseStatus Parse(std::string_view line, ParsedRecord* out,
                    std::string* field, std::string* reason);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
