#include "output/record_writer.h"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "input/json_text.h"
#include "journal/digest.h"
#include "output/copy_binary_writer.h"
#include "output/copy_text_writer.h"
#include "output/csv_writer.h"
#include "output/half_float.h"

namespace {

class JsonlWriter : public RecordWriter {
 public:
  explicit JsonlWriter(OutputLayout layout)
      : layout_(std::move(layout)), columns_(&layout_) {}

  bool AcceptsVector(const float* vector, size_t dims, std::string* field,
                     std::string* reason) const override {
    return VectorStorable(layout_, vector, dims, field, reason);
  }

  void Write(const Record& record, const float* vector, size_t dims,
             std::string* out) const override {
    columns_.Reset(record);
    out->push_back('{');
    bool first = true;
    auto name = [&](std::string_view key) {
      if (!first) out->push_back(',');
      first = false;
      out->append(key);
    };
    const std::vector<OutputColumn>& columns = layout_.columns;
    for (size_t i = 0; i <= columns.size(); ++i) {
      if (i == layout_.all_carried_at) {
        // Every carried field, in order: the parser's pairs as they are.
        if (!record.carry_json.empty()) name(record.carry_json);
        i += layout_.carry_fields.size();
      }
      if (i >= columns.size()) break;
      const OutputColumn& column = columns[i];
      switch (column.kind) {
        case OutputColumn::kId:
          if (record.id_json.empty()) break;
          name("\"id\":");
          out->append(record.id_json);
          break;
        case OutputColumn::kEmbedding: {
          name("\"embedding\":");
          // pgvector, pgarray and halfvec literals travel as JSON strings,
          // for a staging json column and a cast on the way in.
          bool quoted = layout_.vector != VectorStyle::kJson;
          if (quoted) out->push_back('"');
          AppendVectorText(layout_.vector, vector, dims, out);
          if (quoted) out->push_back('"');
          break;
        }
        case OutputColumn::kCarried:
          // The pair exactly as the parser wrote it.
          if (const CarriedField* field = columns_.Carried(column.carry_index)) {
            name(field->path_json);
            out->push_back(':');
            out->append(field->value_json);
          }
          break;
        case OutputColumn::kTokens:
          name("\"tokens\":");
          fmt::format_to(std::back_inserter(*out), FMT_COMPILE("{}"),
                         record.tokens);
          break;
        case OutputColumn::kModel:
          name("\"model\":");
          out->append(model_json_);
          break;
        case OutputColumn::kKey:
          name("\"key\":\"");
          AppendHexDigest(record.key, out);
          out->push_back('"');
          break;
      }
    }
    out->append("}\n");
  }

 private:
  const OutputLayout layout_;
  mutable ColumnText columns_;
  const std::string model_json_ = JsonString(layout_.model);

  static std::string JsonString(std::string_view s);
};

// The longest text WriteFloat keeps: a sign and 16 digits (-1e15f prints
// as -1000000000000000).
constexpr size_t kMaxFloatChars = 17;
// The bytes WriteFloat may overwrite at `out`, more than it keeps: it
// stores digits and zeros in whole words.
constexpr size_t kFloatRoom = 32;

// The number of decimal digits of v < 10^9, 1 for 0. Comparisons rather
// than a loop, whose trip count would vary from float to float and be
// mispredicted.
inline int DigitCount(uint32_t v) {
  return 1 + (v >= 10) + (v >= 100) + (v >= 1000) + (v >= 10000) +
         (v >= 100000) + (v >= 1000000) + (v >= 10000000) + (v >= 100000000);
}

// The eight decimal digits of v < 10^8, leading zeros included, in ASCII:
// the first digit in the lowest byte, so that stored on a little-endian
// host they read in order. It splits all lanes of one register at once, by
// multiplying, instead of looping over digits (again for the branch
// predictor): into two halves of four digits, 32 bits each, then those
// into 16-bit pairs, then the pairs into bytes.
inline uint64_t EightDigits(uint32_t v) {
  static_assert(std::endian::native == std::endian::little);
  uint64_t fours = v / 10000 | uint64_t{v % 10000} << 32;
  // x * 10486 >> 20 is x / 100 for x < 10000.
  uint64_t high_pairs = (fours * 10486 >> 20) & 0x0000007f0000007f;
  uint64_t pairs = (fours - 100 * high_pairs) << 16 | high_pairs;
  // x * 103 >> 10 is x / 10 for x < 100.
  uint64_t tens = (pairs * 103 >> 10) & 0x000f000f000f000f;
  uint64_t digits = (pairs - 10 * tens) << 8 | tens;
  return digits + 0x3030303030303030;
}

// Writes the `size` decimal digits of v < 10^9 at `out`; up to 9 bytes
// there may be overwritten.
inline void WriteDigits(uint32_t v, int size, char* out) {
  uint32_t ninth = v / 100000000;  // the first of nine digits, else 0
  int nine = size > 8;
  out[0] = static_cast<char>('0' + ninth);
  // The eight low digits without the leading zeros that size leaves out.
  uint64_t digits =
      EightDigits(v - ninth * 100000000) >> 8 * (8 - size + nine);
  std::memcpy(out + nine, &digits, 8);
}

// Writes `value` at `out` exactly as fmt::format("{}", value) prints it and
// returns the end of the text, at most kMaxFloatChars bytes on; up to
// kFloatRoom bytes at `out` may be overwritten.
//
// fmt finds the shortest round-trip digits with dragonbox::to_decimal, then
// spends longer still laying them out: build/float_bench measured 34 ns a
// float through fmt::format_to, of which to_decimal is about 15, and 22 ns
// with this layout. to_decimal lives in fmt::detail, fmt's internals
// rather than its API; libfmt.so.9 exports it, and we build against Debian
// 12's libfmt 9.1 package, pinned. An fmt that changed the function or its
// own layout would fail build/float_exhaustive, which compares this with
// fmt for every float32, and record_writer_test's sample of them. Always
// inlined, into AppendVectorText's loop: a call cost 1 ns of those 22.
[[gnu::always_inline]] inline char* WriteFloat(float value, char* out) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  // NaN and infinity: the codecs refuse them, so fmt's speed does not
  // matter here.
  if ((bits & 0x7f800000) == 0x7f800000)
    return fmt::format_to(out, FMT_COMPILE("{}"), value);
  // The sign without a branch: it is as good as random, and a mispredicted
  // branch cost 4 ns a float.
  *out = '-';
  out += bits >> 31;
  fmt::detail::dragonbox::decimal_fp<float> decimal =
      fmt::detail::dragonbox::to_decimal(
          std::bit_cast<float>(bits & 0x7fffffff));
  // The float overload: the digits float32 needs to round-trip (a double's
  // would be noisy), at most nine.
  uint32_t significand = decimal.significand;
  int size = DigitCount(significand);
  // The decimal exponent of the first digit. fmt uses fixed notation when it
  // is in [-4, 16) (0.0001 but 1e-05, 1000000000000000 but 1e+16). For a
  // float32 it is in [-45, 38]: two exponent digits always.
  int exponent = decimal.exponent + size - 1;
  if (exponent < -4 || exponent >= 16) {
    // d[.ddd]e-XX: the digits one place on, the first moved before the
    // point; no point after a single digit.
    WriteDigits(significand, size, out + 1);
    out[0] = out[1];
    out[1] = '.';
    out += size > 1 ? size + 1 : 1;
    int magnitude = std::abs(exponent);
    out[0] = 'e';
    out[1] = exponent < 0 ? '-' : '+';
    out[2] = static_cast<char>('0' + magnitude / 10);
    out[3] = static_cast<char>('0' + magnitude % 10);
    return out + 4;
  }
  if (decimal.exponent >= 0) {
    // ddd000: a whole number, no point.
    WriteDigits(significand, size, out);
    std::memcpy(out + size, "0000000000000000", 16);
    return out + size + decimal.exponent;
  }
  if (exponent >= 0) {
    // dd.ddd: the digits one place on, the integral ones moved back before
    // the point.
    int integral = exponent + 1;
    WriteDigits(significand, size, out + 1);
    for (int i = 0; i < integral; ++i) out[i] = out[i + 1];
    out[integral] = '.';
    return out + size + 1;
  }
  // 0.000ddd: at most three zeros after the point.
  std::memcpy(out, "0.000", 5);
  out += 1 - exponent;
  WriteDigits(significand, size, out);
  return out + size;
}

}  // namespace

std::string JsonlWriter::JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

std::unique_ptr<RecordWriter> NewJsonlWriter(const OutputLayout& layout) {
  return std::make_unique<JsonlWriter>(layout);
}

std::unique_ptr<RecordWriter> NewJsonlWriter() {
  OutputLayout layout;
  std::string err;
  ParseOutputLayout(OutputConfig(), &layout, &err);  // the defaults parse
  return NewJsonlWriter(layout);
}

std::unique_ptr<RecordWriter> NewRecordWriter(const OutputConfig& config,
                                              std::string* err) {
  OutputLayout layout;
  if (!ParseOutputLayout(config, &layout, err)) return nullptr;
  switch (layout.format) {
    case OutputFormat::kJsonl:
      return NewJsonlWriter(layout);
    case OutputFormat::kTsv:
      return NewCopyTextWriter(layout);
    case OutputFormat::kCsv:
      return NewCsvWriter(layout);
    case OutputFormat::kBinary:
      return NewCopyBinaryWriter(layout);
  }
  return nullptr;
}

void AppendVectorText(VectorStyle style, const float* vector, size_t dims,
                      std::string* out) {
  // Straight into the string's buffer, sized once for the longest text
  // (and WriteFloat's spare room) and cut back after, rather than a
  // capacity check and a copy per float.
  size_t start = out->size();
  out->resize(start + 2 + dims * (kMaxFloatChars + 1) + kFloatRoom);
  char* p = out->data() + start;
  *p++ = style == VectorStyle::kPgarray ? '{' : '[';
  for (size_t i = 0; i < dims; ++i) {
    if (i) *p++ = ',';
    p = WriteFloat(vector[i], p);
  }
  *p++ = style == VectorStyle::kPgarray ? '}' : ']';
  out->resize(static_cast<size_t>(p - out->data()));
}

void AppendFloat(float value, std::string* out) {
  char buf[kFloatRoom];
  char* end = WriteFloat(value, buf);
  out->append(buf, static_cast<size_t>(end - buf));
}

bool VectorStorable(const OutputLayout& layout, const float* vector,
                    size_t dims, std::string* field, std::string* reason) {
  if (layout.vector != VectorStyle::kHalfvec) return true;
  for (size_t i = 0; i < dims; ++i) {
    uint16_t half;
    if (FloatToHalf(vector[i], &half)) continue;
    std::string value;
    AppendFloat(vector[i], &value);
    *field = "embedding";
    *reason = fmt::format(
        "embedding value {} (number {} of {}) is out of range for halfvec, "
        "whose largest value is {}",
        value, i + 1, dims, kHalfMax);
    return false;
  }
  return true;
}

void AppendErrorJson(const RecordError& error, std::string* out) {
  fmt::format_to(std::back_inserter(*out), "{{\"line\":{},\"source\":",
                 error.line);
  AppendJsonString(out, error.source);
  if (!error.id_json.empty()) {
    out->append(",\"id\":");
    out->append(error.id_json);
  }
  if (!error.field.empty()) {
    out->append(",\"field\":");
    AppendJsonString(out, error.field);
  }
  out->append(",\"error\":");
  AppendJsonString(out, error.reason);
  out->append("}\n");
}

std::string FormatErrorMessage(const RecordError& error) {
  std::string id = error.id_json.empty() ? "" : "id " + error.id_json + ": ";
  return fmt::format("{}:{}: {}{}", error.source, error.line, id, error.reason);
}
