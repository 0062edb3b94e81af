#include "output/copy_text_writer.h"

namespace {

class CopyTextWriter : public CopyWriter {
 public:
  using CopyWriter::CopyWriter;

  void Write(const Record& record, const float* vector, size_t dims,
             std::string* out) const override {
    columns_.Reset(record);
    for (size_t i = 0; i < layout_.columns.size(); ++i) {
      if (i) out->push_back('\t');
      const OutputColumn& column = layout_.columns[i];
      std::string_view text;
      if (column.kind == OutputColumn::kEmbedding) {
        // Digits, signs, '.', 'e', ',' and brackets: nothing to escape.
        AppendVectorText(layout_.vector, vector, dims, out);
      } else if (columns_.Get(column, &text)) {
        AppendCopyTextField(text, out);
      } else {
        out->append("\\N");
      }
    }
    out->push_back('\n');
  }

};

}  // namespace

void AppendCopyTextField(std::string_view value, std::string* out) {
  size_t run = 0;  // Start of the bytes not yet appended.
  for (size_t i = 0; i < value.size(); ++i) {
    char escaped;
    switch (value[i]) {
      case '\\': escaped = '\\'; break;
      case '\t': escaped = 't'; break;
      case '\n': escaped = 'n'; break;
      case '\r': escaped = 'r'; break;
      default: continue;
    }
    out->append(value, run, i - run);
    out->push_back('\\');
    out->push_back(escaped);
    run = i + 1;
  }
  out->append(value, run, std::string_view::npos);
}

std::unique_ptr<RecordWriter> NewCopyTextWriter(const OutputLayout& layout) {
  return std::make_unique<CopyTextWriter>(layout);
}
