// PostgreSQL's text COPY format (TSV): what `\copy t FROM 'f'` reads with no
// options. Columns are separated by tabs, a line ends with \n, SQL NULL is
// \N, and backslash, tab, newline and carriage return in a value are written
// as \\, \t, \n and \r, so every value reads back byte for byte.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "output/output_layout.h"
#include "output/record_writer.h"

/// Appends `value` escaped for one text-COPY field.
void AppendCopyTextField(std::string_view value, std::string* out);

/// The writer for `layout` (format kTsv).
std::unique_ptr<RecordWriter> NewCopyTextWriter(const OutputLayout& layout);
