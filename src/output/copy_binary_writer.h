// PostgreSQL's COPY BINARY format: what `\copy t FROM 'f' WITH (FORMAT
// binary)` reads. A file header, then per record a tuple of length-prefixed
// values in the columns' binary forms, then a trailer. Vectors go as float32
// bits, with no decimal text to print or parse, which is what makes loading
// fast. Each column has a fixed SQL type here, since binary COPY does not
// convert: id, model and carried fields text (a carried non-string as its
// compact JSON text), tokens integer (int4), the embedding pgvector's vector
// or halfvec, or real[] (float4[]).
#pragma once

#include <memory>
#include <string>

#include "output/output_layout.h"
#include "output/record_writer.h"

/// The writer for `layout` (format kBinary; any vector style but kJson).
std::unique_ptr<RecordWriter> NewCopyBinaryWriter(const OutputLayout& layout);
