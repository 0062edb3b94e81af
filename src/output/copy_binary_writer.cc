#include "output/copy_binary_writer.h"

#include <cstdint>
#include <cstring>

#include "output/half_float.h"

namespace {

// PostgreSQL's pg_type OID of float4, which an array's header must name.
constexpr uint32_t kFloat4Oid = 700;

// The 11-byte signature, then 32-bit flags (no OIDs) and a header extension
// of length 0.
constexpr char kHeader[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
constexpr size_t kHeaderSize = 19;

void Put16(uint16_t v, std::string* out) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

void Put32(uint32_t v, std::string* out) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
               static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}

void PutFloat(float f, std::string* out) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  Put32(bits, out);
}

class CopyBinaryWriter : public CopyWriter {
 public:
  using CopyWriter::CopyWriter;

  void AppendHeader(std::string* out) const override {
    out->append(kHeader, kHeaderSize);
  }

  void AppendTrailer(std::string* out) const override {
    Put16(0xFFFF, out);  // a field count of -1
  }

  void Write(const Record& record, const float* vector, size_t dims,
             std::string* out) const override {
    columns_.Reset(record);
    Put16(static_cast<uint16_t>(layout_.columns.size()), out);
    for (const OutputColumn& column : layout_.columns) {
      std::string_view text;
      if (column.kind == OutputColumn::kEmbedding) {
        AppendVector(vector, dims, out);
      } else if (column.kind == OutputColumn::kTokens) {
        Put32(4, out);
        Put32(record.tokens, out);
      } else if (columns_.Get(column, &text)) {
        // text's binary form is its bytes (in the client encoding).
        Put32(static_cast<uint32_t>(text.size()), out);
        out->append(text);
      } else {
        Put32(0xFFFFFFFF, out);  // a length of -1: NULL
      }
    }
  }

 private:
  void AppendVector(const float* vector, size_t dims, std::string* out) const {
    switch (layout_.vector) {
      case VectorStyle::kPgvector:
        // pgvector's vector_send: int16 dimensions, int16 unused, the
        // floats. (pgvector allows at most 16000 dimensions; it checks,
        // not us.)
        Put32(static_cast<uint32_t>(4 + 4 * dims), out);
        Put16(static_cast<uint16_t>(dims), out);
        Put16(0, out);
        for (size_t i = 0; i < dims; ++i) PutFloat(vector[i], out);
        return;
      case VectorStyle::kHalfvec:
        // halfvec_send: the same header, then each value as its binary16
        // bits. AcceptsVector refused the vectors with a value too large.
        Put32(static_cast<uint32_t>(4 + 2 * dims), out);
        Put16(static_cast<uint16_t>(dims), out);
        Put16(0, out);
        for (size_t i = 0; i < dims; ++i) {
          uint16_t half;
          FloatToHalf(vector[i], &half);
          Put16(half, out);
        }
        return;
      case VectorStyle::kPgarray:
      case VectorStyle::kJson:  // refused by ParseOutputLayout
        // array_send for a one-dimensional float4[] without NULLs: ndim,
        // has-nulls flag, element type, then (length, lower bound) per
        // dimension, then each element with its own length.
        Put32(static_cast<uint32_t>(20 + 8 * dims), out);
        Put32(1, out);
        Put32(0, out);
        Put32(kFloat4Oid, out);
        Put32(static_cast<uint32_t>(dims), out);
        Put32(1, out);
        for (size_t i = 0; i < dims; ++i) {
          Put32(4, out);
          PutFloat(vector[i], out);
        }
        return;
    }
  }
};

}  // namespace

std::unique_ptr<RecordWriter> NewCopyBinaryWriter(const OutputLayout& layout) {
  return std::make_unique<CopyBinaryWriter>(layout);
}
