#include "record_writer.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

TEST_CASE("AppendFloat prints the shortest float32 round trip") {
  auto f = [](float v) {
    std::string s;
    AppendFloat(v, &s);
    return s;
  };
  CHECK(f(0.1f) == "0.1");
  CHECK(f(-0.0123f) == "-0.0123");
  CHECK(f(1.0f) == "1");
  CHECK(f(0.0f) == "0");
  CHECK(f(1e-5f) == "1e-05");
  // Every float printed reads back to the same bits.
  for (uint32_t bits = 0x3c000000; bits < 0x3f800000; bits += 0x00012345) {
    float v;
    std::memcpy(&v, &bits, 4);
    std::string s = f(v);
    CHECK(std::strtof(s.c_str(), nullptr) == v);
  }
}

TEST_CASE("JSONL writer keeps id type and carried fields") {
  Record r;
  r.id_json = "42";
  r.carry_json = "\"title\":\"T\",\"meta.n\":[1,2]";
  float v[] = {0.5f, -2.0f};
  std::string out;
  NewJsonlWriter()->Write(r, v, 2, &out);
  CHECK(out ==
        "{\"id\":42,\"embedding\":[0.5,-2],\"title\":\"T\",\"meta.n\":[1,2]}\n");
}

TEST_CASE("Error records name line, source, id, field and reason") {
  RecordError e;
  e.line = 7;
  e.source = "in\"put.jsonl";
  e.id_json = "\"a\"";
  e.field = "text";
  e.reason = "text is empty after normalization";
  std::string out;
  AppendErrorJson(e, &out);
  CHECK(out ==
        "{\"line\":7,\"source\":\"in\\\"put.jsonl\",\"id\":\"a\",\"field\":"
        "\"text\",\"error\":\"text is empty after normalization\"}\n");
  CHECK(FormatErrorMessage(e) ==
        "in\"put.jsonl:7: id \"a\": text is empty after normalization");
  e.id_json.clear();
  e.field.clear();
  CHECK(FormatErrorMessage(e) ==
        "in\"put.jsonl:7: text is empty after normalization");
  out.clear();
  AppendErrorJson(e, &out);
  CHECK(out ==
        "{\"line\":7,\"source\":\"in\\\"put.jsonl\",\"error\":\"text is empty "
        "after normalization\"}\n");
}
