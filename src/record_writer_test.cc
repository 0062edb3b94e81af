#include "record_writer.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

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
  // The longest forms fit, and across the whole range (both signs,
  // subnormals, the extremes) the text is fmt's own.
  CHECK(f(-1.17549435e-38f) == "-1.1754944e-38");
  CHECK(f(-3.40282347e+38f) == "-3.4028235e+38");
  CHECK(f(-1.4e-45f) == "-1e-45");
  for (uint64_t bits = 1; bits < 0x100000000ULL; bits += 0x000F1235) {
    float v;
    uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&v, &b, 4);
    if (!std::isfinite(v)) continue;
    CHECK(f(v) == fmt::format("{}", v));
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

TEST_CASE("JSONL writer follows --columns and --vector") {
  OutputConfig c;
  c.columns = "model,tokens,b,embedding,id";
  c.carry_fields = {"a", "b"};
  c.vector = "pgarray";
  c.model = "m \"x\"";
  std::string err;
  std::unique_ptr<RecordWriter> w = NewRecordWriter(c, &err);
  REQUIRE_MESSAGE(w, err);
  Record r;
  r.id_json = "\"i\"";
  r.tokens = 9;
  r.carry_json = "\"a\":1,\"b\":{\"c\":null}";
  float v[] = {0.5f, -2.0f};
  std::string out;
  w->Write(r, v, 2, &out);
  CHECK(out ==
        "{\"model\":\"m \\\"x\\\"\",\"tokens\":9,\"b\":{\"c\":null},"
        "\"embedding\":\"{0.5,-2}\",\"id\":\"i\"}\n");
  // "carried" writes the parser's pairs as they are, wherever it stands.
  c.columns = "carried,embedding";
  c.vector = "pgvector";
  out.clear();
  NewRecordWriter(c, &err)->Write(r, v, 2, &out);
  CHECK(out == "{\"a\":1,\"b\":{\"c\":null},\"embedding\":\"[0.5,-2]\"}\n");
  r.carry_json.clear();
  out.clear();
  NewRecordWriter(c, &err)->Write(r, v, 2, &out);
  CHECK(out == "{\"embedding\":\"[0.5,-2]\"}\n");
  CHECK(NewRecordWriter(OutputConfig(), &err) != nullptr);
}

TEST_CASE("Column formats refuse U+0000 in an id or carried column") {
  // PostgreSQL text cannot hold U+0000: COPY refuses the whole load for one
  // such value (or, from psql's \copy of tsv, loads a wrong row), so tsv,
  // csv and binary refuse the record instead. JSONL spells it \u0000, so it
  // takes every record.
  OutputConfig c;
  c.columns = "id,embedding,u,o";
  c.carry_fields = {"u", "o", "hidden"};
  c.id_field = "meta.id";
  c.model = "m";
  Record r;
  std::string field, reason;
  auto accepts = [&](const std::string& format) {
    c.format = format;
    c.vector = format == "jsonl" ? "" : "pgarray";
    std::string err;
    std::unique_ptr<RecordWriter> w = NewRecordWriter(c, &err);
    REQUIRE_MESSAGE(w, err);
    field = reason = "";
    return w->Accepts(r, &field, &reason);
  };
  for (const char* format : {"tsv", "csv", "binary", "jsonl"}) {
    CAPTURE(format);
    bool column_format = std::string(format) != "jsonl";
    r.id_json = R"("a\u0000b")";
    r.carry_json = R"("u":"x")";
    CHECK(accepts(format) == !column_format);
    if (column_format) {
      CHECK(field == "meta.id");
      CHECK(reason ==
            "field \"meta.id\" holds U+0000, which PostgreSQL text cannot "
            "store");
    }
    r.id_json = R"("a\\u0000b")";  // a backslash, then the text u0000
    CHECK(accepts(format));
    r.id_json = "7";
    r.carry_json = R"("u":"x\u0000")";
    CHECK(accepts(format) == !column_format);
    if (column_format) CHECK(field == "u");
    // An object is written as compact JSON, where U+0000 stays an escape;
    // a field in no column is not written at all.
    r.carry_json = R"("u":null,"o":{"k":"\u0000"},"hidden":"\u0000")";
    CHECK(accepts(format));
    CHECK(field == "");
  }
}

TEST_CASE("A refused record leaves the writer ready for the next one") {
  OutputConfig c;
  c.format = "tsv";
  c.vector = "pgarray";
  c.columns = "id,u,embedding";
  c.carry_fields = {"u"};
  std::string err, field, reason;
  std::unique_ptr<RecordWriter> w = NewRecordWriter(c, &err);
  REQUIRE_MESSAGE(w, err);
  Record bad, good;
  bad.id_json = R"("x")";
  bad.carry_json = R"("u":"\u0000")";
  good.id_json = R"("y")";
  good.carry_json = R"("u":"ok")";
  CHECK(!w->Accepts(bad, &field, &reason));
  CHECK(w->Accepts(good, &field, &reason));
  float v[] = {1.5f};
  std::string out;
  w->Write(good, v, 1, &out);
  CHECK(out == "y\tok\t{1.5}\n");
}
