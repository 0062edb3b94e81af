// The compact JSON that record_parser writes for ids and carried fields:
// how a string becomes a JSON literal, and how the output formats that put
// each value in a column of its own (TSV, CSV, COPY BINARY) read it back:
// there a JSON string becomes its plain text, and any other value stays
// compact JSON.
#pragma once

#include <string>
#include <string_view>
#include <vector>

/// One `"path":value` pair of Record::carry_json, as views into it.
struct CarriedField {
  std::string_view path_json;   ///< The field path as a JSON string literal.
  std::string_view value_json;  ///< Its value as compact JSON.
};

/// Splits `carry_json` (`"path":value` pairs joined by commas, no braces, as
/// RecordParser writes them; may be empty) into *fields, replacing what was
/// there. Returns false, with *fields in an unspecified state, when it is not
/// of that form. Values are delimited, not validated.
bool SplitCarryJson(std::string_view carry_json,
                    std::vector<CarriedField>* fields);

/// Appends the text of the JSON string literal `json` (quotes included) to
/// *out with every escape decoded (\uXXXX and surrogate pairs to UTF-8).
/// Returns false when `json` is not one well-formed string literal or an
/// escape names a lone surrogate; *out may then hold part of the text.
bool AppendJsonStringText(std::string_view json, std::string* out);

/// Appends `s` as a JSON string literal. Only what JSON requires is escaped;
/// each ill-formed UTF-8 subpart becomes U+FFFD, so the output line is
/// always valid JSON. Returns false when that replacement happened.
bool AppendJsonString(std::string* out, std::string_view s);

/// Whether `s` is one JSON number, as RFC 8259 spells it.
bool IsJsonNumber(std::string_view s);
