#include "output/csv_writer.h"

#include <doctest/doctest.h>

namespace {

std::string Field(std::string_view value) {
  std::string out;
  AppendCsvField(value, &out);
  return out;
}

}  // namespace

TEST_CASE("CSV quotes what RFC 4180 and COPY need quoted") {
  CHECK(Field("plain") == "plain");
  CHECK(Field("caf\xc3\xa9 \\ back\tslash") == "caf\xc3\xa9 \\ back\tslash");
  CHECK(Field("") == "\"\"");  // unquoted empty is NULL
  CHECK(Field("a,b") == "\"a,b\"");
  CHECK(Field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(Field("\"") == "\"\"\"\"");
  CHECK(Field("line\nbreak") == "\"line\nbreak\"");
  CHECK(Field("cr\r") == "\"cr\r\"");
  CHECK(Field("\\.") == "\"\\.\"");  // else the end-of-data marker
  CHECK(Field("\\.x") == "\"\\.x\"");
  CHECK(Field("x\\.") == "x\\.");
  CHECK(Field(" spaced ") == " spaced ");
}

TEST_CASE("CSV writer: quoted vector, empty NULL, quoted empty string") {
  OutputConfig c;
  c.format = "csv";
  c.vector = "pgarray";
  c.columns = "tokens,id,embedding,carried";
  c.carry_fields = {"e", "absent", "null", "obj"};
  std::string err;
  std::unique_ptr<RecordWriter> w = NewRecordWriter(c, &err);
  REQUIRE_MESSAGE(w, err);
  Record r;
  r.id_json = R"("a,\"b\"")";
  r.tokens = 3;
  r.carry_json = R"("e":"","null":null,"obj":{"k":"v,w"})";
  float v[] = {0.25f, -1.0f};
  std::string out;
  w->Write(r, v, 2, &out);
  CHECK(out == "3,\"a,\"\"b\"\"\",\"{0.25,-1}\",\"\",,,\"{\"\"k\"\":\"\"v,w\"\"}\"\n");
}
