#include "output/record_writer.h"

#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/compile.h>
#include <fmt/format.h>

namespace {

std::string FloatText(float v) {
  std::string s;
  AppendFloat(v, &s);
  return s;
}

}  // namespace

TEST_CASE("AppendFloat prints the shortest float32 round trip") {
  // Every float printed reads back to the same bits.
  for (uint32_t bits = 0x3c000000; bits < 0x3f800000; bits += 0x00012345) {
    float v = std::bit_cast<float>(bits);
    std::string s = FloatText(v);
    CHECK(std::strtof(s.c_str(), nullptr) == v);
  }
}

TEST_CASE("AppendFloat lays the digits out as fmt does") {
  // Whole numbers: no ".0", zeros appended up to 16 digits.
  CHECK(FloatText(0.0f) == "0");
  CHECK(FloatText(-0.0f) == "-0");
  CHECK(FloatText(1.0f) == "1");
  CHECK(FloatText(-2.0f) == "-2");
  CHECK(FloatText(100.0f) == "100");
  CHECK(FloatText(1e7f) == "10000000");
  CHECK(FloatText(123456789.0f) == "123456790");  // the float is 123456792
  CHECK(FloatText(100000024.0f) == "100000024");
  // Fixed notation up to a first digit at 10^15, exponent notation after.
  CHECK(FloatText(1e15f) == "1000000000000000");
  CHECK(FloatText(-1e15f) == "-1000000000000000");  // the longest text
  CHECK(FloatText(9.999999e15f) == "9999999000000000");
  CHECK(FloatText(1e16f) == "1e+16");
  CHECK(FloatText(1.5e16f) == "1.5e+16");
  // Digits on both sides of the point.
  CHECK(FloatText(1.5f) == "1.5");
  CHECK(FloatText(-123.25f) == "-123.25");
  CHECK(FloatText(1234.5678f) == "1234.5677");
  CHECK(FloatText(1000.00006f) == "1000.00006");
  // Fractions: up to three zeros after the point, down to 10^-4.
  CHECK(FloatText(0.1f) == "0.1");
  CHECK(FloatText(0.100000024f) == "0.100000024");
  CHECK(FloatText(-0.0123f) == "-0.0123");
  CHECK(FloatText(0.00012345f) == "0.00012345");
  CHECK(FloatText(0.000100000005f) == "0.000100000005");
  CHECK(FloatText(1e-4f) == "0.0001");
  CHECK(FloatText(-1e-4f) == "-0.0001");
  CHECK(FloatText(9.9999e-5f) == "9.9999e-05");
  CHECK(FloatText(1e-5f) == "1e-05");
  CHECK(FloatText(1.2345e-5f) == "1.2345e-05");
  CHECK(FloatText(-1.00000025e-5f) == "-1.00000025e-05");
  // The extremes: normal, subnormal, largest.
  CHECK(FloatText(1.17549435e-38f) == "1.1754944e-38");
  CHECK(FloatText(-1.17549435e-38f) == "-1.1754944e-38");
  CHECK(FloatText(1.1754942e-38f) == "1.1754942e-38");
  CHECK(FloatText(1e-40f) == "1e-40");
  CHECK(FloatText(3e-45f) == "3e-45");
  CHECK(FloatText(std::numeric_limits<float>::denorm_min()) == "1e-45");
  CHECK(FloatText(-1.4e-45f) == "-1e-45");
  CHECK(FloatText(3.4028235e+38f) == "3.4028235e+38");
  CHECK(FloatText(-std::numeric_limits<float>::max()) == "-3.4028235e+38");
  // Not finite: fmt prints these itself.
  CHECK(FloatText(std::numeric_limits<float>::quiet_NaN()) == "nan");
  CHECK(FloatText(std::numeric_limits<float>::infinity()) == "inf");
  CHECK(FloatText(-std::numeric_limits<float>::infinity()) == "-inf");
}

TEST_CASE("AppendVectorText joins the floats in [..] or {..}") {
  float v[] = {0.5f, -0.0f, 1e-5f, -1e15f, 1e16f, 0.000100000005f};
  std::string out = "x";
  AppendVectorText(VectorStyle::kJson, v, 6, &out);
  CHECK(out == "x[0.5,-0,1e-05,-1000000000000000,1e+16,0.000100000005]");
  out.clear();
  AppendVectorText(VectorStyle::kPgarray, v, 2, &out);
  CHECK(out == "{0.5,-0}");
  out.clear();
  AppendVectorText(VectorStyle::kPgvector, v, 0, &out);
  CHECK(out == "[]");
}

// tests/tools/float_exhaustive compares every float32; this is a sample of
// about a million patterns spread over the whole range, both signs,
// subnormals, NaNs and infinities included, alone and as vectors.
TEST_CASE("AppendFloat and AppendVectorText print a sample of float32 as fmt") {
  constexpr uint32_t kStride = 4099;  // prime: every mantissa's low bits
  constexpr size_t kDims = 1536;
  size_t mismatches = 0;
  std::string first_mismatch;
  auto compare = [&](std::string_view what, const std::string& expected,
                     const std::string& got) {
    if (got == expected) return;
    if (mismatches++ == 0)
      first_mismatch = fmt::format("{}: fmt \"{}\", ours \"{}\"", what,
                                   expected.substr(0, 200), got.substr(0, 200));
  };
  std::vector<float> vector;
  std::string expected_vector = "[";
  std::string got_vector;
  for (uint64_t bits = 0; bits <= 0xffffffff; bits += kStride) {
    float v = std::bit_cast<float>(static_cast<uint32_t>(bits));
    std::string expected = fmt::format(FMT_COMPILE("{}"), v);
    compare(fmt::format("{:#010x}", bits), expected, FloatText(v));
    if (!vector.empty()) expected_vector += ',';
    expected_vector += expected;
    vector.push_back(v);
    if (vector.size() == kDims) {
      expected_vector += ']';
      got_vector.clear();
      AppendVectorText(VectorStyle::kJson, vector.data(), kDims, &got_vector);
      compare(fmt::format("vector ending {:#010x}", bits), expected_vector,
              got_vector);
      vector.clear();
      expected_vector = "[";
    }
  }
  INFO(first_mismatch);
  CHECK(mismatches == 0);
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

TEST_CASE("An error line stays valid JSON whatever bytes its source holds") {
  // A file name need not be UTF-8; the errors output must still parse.
  RecordError e;
  e.line = 3;
  e.source = "caf\xe9\x1b.jsonl";
  e.reason = "not JSON";
  std::string out;
  AppendErrorJson(e, &out);
  CHECK(out ==
        "{\"line\":3,\"source\":\"caf\xef\xbf\xbd\\u001b.jsonl\","
        "\"error\":\"not JSON\"}\n");
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

  // The content key, as a JSON string of hex.
  c.columns = "id,key,embedding";
  r.key.fill(0xa5);
  out.clear();
  NewRecordWriter(c, &err)->Write(r, v, 2, &out);
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "a5";
  CHECK(out == "{\"id\":\"i\",\"key\":\"" + hex + "\",\"embedding\":\"[0.5,-2]\"}\n");
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

TEST_CASE("halfvec: the [..] literal, and a value no half holds is refused") {
  // pgvector rounds the float32 decimals of the text literal itself; a
  // value whose nearest half is infinite (from 65520 on) makes it refuse
  // the whole COPY, so every format refuses that vector instead.
  float fits[] = {0.25f, -65519.996f, 1e-30f};
  float big[] = {0.5f, 1.0f, -65520.0f, 1e30f};
  std::string out, field, reason;
  for (const char* format : {"jsonl", "tsv", "csv", "binary"}) {
    CAPTURE(format);
    OutputConfig c;
    c.format = format;
    c.vector = "halfvec";
    c.columns = "embedding";
    std::string err;
    std::unique_ptr<RecordWriter> w = NewRecordWriter(c, &err);
    REQUIRE_MESSAGE(w, err);
    field = reason = "";
    CHECK(w->AcceptsVector(fits, 3, &field, &reason));
    CHECK(!w->AcceptsVector(big, 4, &field, &reason));
    CHECK(field == "embedding");
    CHECK(reason ==
          "embedding value -65520 (number 3 of 4) is out of range for "
          "halfvec, whose largest value is 65504");
    // Other styles store every finite float.
    c.vector = format == std::string("jsonl") ? "json" : "pgvector";
    CHECK(NewRecordWriter(c, &err)->AcceptsVector(big, 4, &field, &reason));
    c.vector = "pgarray";
    CHECK(NewRecordWriter(c, &err)->AcceptsVector(big, 4, &field, &reason));
  }
  OutputConfig c;
  c.vector = "halfvec";
  c.columns = "embedding";
  std::string err;
  NewRecordWriter(c, &err)->Write(Record(), fits, 3, &out);
  CHECK(out == "{\"embedding\":\"[0.25,-65519.996,1e-30]\"}\n");
  for (const char* format : {"tsv", "csv"}) {
    c.format = format;
    out.clear();
    NewRecordWriter(c, &err)->Write(Record(), fits, 2, &out);
    CHECK(out == (c.format == "tsv" ? "[0.25,-65519.996]\n"
                                    : "\"[0.25,-65519.996]\"\n"));
  }
}
