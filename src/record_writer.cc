#include "record_writer.h"

#include <iterator>

#include <fmt/compile.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace {

class JsonlWriter : public RecordWriter {
 public:
  void Write(const Record& record, const float* vector, size_t dims,
             std::string* out) const override {
    out->append("{\"id\":");
    out->append(record.id_json);
    out->append(",\"embedding\":[");
    for (size_t i = 0; i < dims; ++i) {
      if (i) out->push_back(',');
      AppendFloat(vector[i], out);
    }
    out->push_back(']');
    if (!record.carry_json.empty()) {
      out->push_back(',');
      out->append(record.carry_json);
    }
    out->append("}\n");
  }
};

void AppendJsonString(std::string_view s, std::string* out) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out->append(buffer.GetString(), buffer.GetSize());
}

}  // namespace

std::unique_ptr<RecordWriter> NewJsonlWriter() {
  return std::make_unique<JsonlWriter>();
}

void AppendFloat(float value, std::string* out) {
  // fmt's default presentation of a float is the shortest round-trip form
  // for float32 (not for double, which would print 9 noisy digits).
  fmt::format_to(std::back_inserter(*out), FMT_COMPILE("{}"), value);
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
