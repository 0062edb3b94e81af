#include "output/csv_writer.h"

namespace {

class CsvWriter : public CopyWriter {
 public:
  using CopyWriter::CopyWriter;

  void Write(const Record& record, const float* vector, size_t dims,
             std::string* out) const override {
    columns_.Reset(record);
    for (size_t i = 0; i < layout_.columns.size(); ++i) {
      if (i) out->push_back(',');
      const OutputColumn& column = layout_.columns[i];
      std::string_view text;
      if (column.kind == OutputColumn::kEmbedding) {
        // It holds commas and never a quote: quoted as it is.
        out->push_back('"');
        AppendVectorText(layout_.vector, vector, dims, out);
        out->push_back('"');
      } else if (columns_.Get(column, &text)) {
        AppendCsvField(text, out);
      }  // else NULL: nothing between the commas
    }
    out->push_back('\n');
  }

};

}  // namespace

void AppendCsvField(std::string_view value, std::string* out) {
  bool quote = value.empty() || value.starts_with("\\.") ||
               value.find_first_of(",\"\r\n") != std::string_view::npos;
  if (!quote) {
    out->append(value);
    return;
  }
  out->push_back('"');
  size_t run = 0;
  for (size_t q = value.find('"'); q != std::string_view::npos;
       q = value.find('"', q + 1)) {
    out->append(value, run, q + 1 - run);
    out->push_back('"');
    run = q + 1;
  }
  out->append(value, run, std::string_view::npos);
  out->push_back('"');
}

std::unique_ptr<RecordWriter> NewCsvWriter(const OutputLayout& layout) {
  return std::make_unique<CsvWriter>(layout);
}
