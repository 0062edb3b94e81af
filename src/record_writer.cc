#include "record_writer.h"

#include <iterator>

#include <fmt/compile.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "copy_binary_writer.h"
#include "copy_text_writer.h"
#include "csv_writer.h"

namespace {

class JsonlWriter : public RecordWriter {
 public:
  explicit JsonlWriter(OutputLayout layout)
      : layout_(std::move(layout)), columns_(&layout_) {}

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
          // pgvector and pgarray literals travel as JSON strings, for a
          // staging json column and a cast on the way in.
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

void AppendJsonString(std::string_view s, std::string* out) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out->append(buffer.GetString(), buffer.GetSize());
}

}  // namespace

std::string JsonlWriter::JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
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
  out->push_back(style == VectorStyle::kPgarray ? '{' : '[');
  for (size_t i = 0; i < dims; ++i) {
    if (i) out->push_back(',');
    AppendFloat(vector[i], out);
  }
  out->push_back(style == VectorStyle::kPgarray ? '}' : ']');
}

void AppendFloat(float value, std::string* out) {
  // fmt's default presentation of a float is the shortest round-trip form
  // for float32 (not for double, which would print 9 noisy digits). Into a
  // buffer first: through a back_inserter fmt grows the string, zero-filled,
  // by the longest possible form for every float (a fifth of the time).
  char buf[32];  // "-1.1754944e-38" is the longest form
  char* end = fmt::format_to(buf, FMT_COMPILE("{}"), value);
  out->append(buf, static_cast<size_t>(end - buf));
}

void AppendErrorJson(const RecordError& error, std::string* out) {
  fmt::format_to(std::back_inserter(*out), "{{\"line\":{},\"source\":",
                 error.line);
  AppendJsonString(error.source, out);
  if (!error.id_json.empty()) {
    out->append(",\"id\":");
    out->append(error.id_json);
  }
  if (!error.field.empty()) {
    out->append(",\"field\":");
    AppendJsonString(error.field, out);
  }
  out->append(",\"error\":");
  AppendJsonString(error.reason, out);
  out->append("}\n");
}

std::string FormatErrorMessage(const RecordError& error) {
  std::string id = error.id_json.empty() ? "" : "id " + error.id_json + ": ";
  return fmt::format("{}:{}: {}{}", error.source, error.line, id, error.reason);
}
