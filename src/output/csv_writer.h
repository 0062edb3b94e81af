// CSV as RFC 4180 defines it and PostgreSQL's `COPY ... (FORMAT csv)` reads
// it: columns separated by commas, a line ends with \n, a value is quoted
// when it holds a comma, a quote, CR or LF (quotes doubled inside), and SQL
// NULL is an empty unquoted value, so an empty string is written "".
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "output/output_layout.h"
#include "output/record_writer.h"

/// Appends `value` as one CSV field, quoted where needed: also when it is
/// empty (unquoted empty is NULL to COPY) and when it starts with \. (alone
/// on a line COPY takes that for its end-of-data marker).
void AppendCsvField(std::string_view value, std::string* out);

/// The writer for `layout` (format kCsv).
std::unique_ptr<RecordWriter> NewCsvWriter(const OutputLayout& layout);
