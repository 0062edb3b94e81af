#include "output/copy_text_writer.h"

#include <doctest/doctest.h>

namespace {

std::string Escaped(std::string_view value) {
  std::string out;
  AppendCopyTextField(value, &out);
  return out;
}

std::unique_ptr<RecordWriter> Writer(const std::string& vector,
                                     const std::string& columns,
                                     std::vector<std::string> carry = {}) {
  OutputConfig c;
  c.format = "tsv";
  c.vector = vector;
  c.columns = columns;
  c.carry_fields = std::move(carry);
  c.model = "text-embedding-3-small";
  std::string err;
  std::unique_ptr<RecordWriter> w = NewRecordWriter(c, &err);
  REQUIRE_MESSAGE(w, err);
  return w;
}

}  // namespace

TEST_CASE("Text COPY escapes backslash, tab, newline and CR only") {
  CHECK(Escaped("") == "");
  CHECK(Escaped("plain, \"quoted\" caf\xc3\xa9") == "plain, \"quoted\" caf\xc3\xa9");
  CHECK(Escaped("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re");
  CHECK(Escaped("\\N") == "\\\\N");  // the text \N, not NULL
  CHECK(Escaped("\\.") == "\\\\.");  // never the end-of-data marker
  CHECK(Escaped("\\\\\t\t") == "\\\\\\\\\\t\\t");
  // Other control characters are data to COPY as they are.
  CHECK(Escaped("\b\f\v\x01") == "\b\f\v\x01");
}

TEST_CASE("TSV writer: columns in order, NULL for absent fields") {
  Record r;
  r.id_json = R"("id\twith\ttabs\nand \\ \"q\"")";
  r.tokens = 7;
  r.carry_json = R"("u":"x\ty","n":[1,2])";
  float v[] = {0.5f, -2.0f, 1e-5f};
  std::string out;
  Writer("", "id,embedding,carried,tokens,model", {"u", "n", "gone"})
      ->Write(r, v, 3, &out);
  CHECK(out ==
        "id\\twith\\ttabs\\nand \\\\ \"q\"\t[0.5,-2,1e-05]\tx\\ty\t[1,2]\t\\N"
        "\t7\ttext-embedding-3-small\n");
  out.clear();
  r.id_json = "12345678901234567890";
  r.carry_json.clear();
  Writer("pgarray", "embedding,id,u", {"u"})->Write(r, v, 3, &out);
  CHECK(out == "{0.5,-2,1e-05}\t12345678901234567890\t\\N\n");
  out.clear();
  Writer("json", "id,embedding")->Write(r, v, 1, &out);
  CHECK(out == "12345678901234567890\t[0.5]\n");
}
