#include "output/copy_binary_writer.h"

#include <doctest/doctest.h>

namespace {

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

std::unique_ptr<RecordWriter> Writer(const std::string& vector,
                                     const std::string& columns,
                                     std::vector<std::string> carry = {}) {
  OutputConfig c;
  c.format = "binary";
  c.vector = vector;
  c.columns = columns;
  c.carry_fields = std::move(carry);
  c.model = "m";
  std::string err;
  std::unique_ptr<RecordWriter> w = NewRecordWriter(c, &err);
  REQUIRE_MESSAGE(w, err);
  return w;
}

}  // namespace

TEST_CASE("COPY BINARY header and trailer") {
  std::unique_ptr<RecordWriter> w = Writer("pgvector", "id,embedding");
  std::string out;
  w->AppendHeader(&out);
  CHECK(out == Bytes({'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n', 0,
                      0, 0, 0, 0, 0, 0, 0, 0}));
  out.clear();
  w->AppendTrailer(&out);
  CHECK(out == Bytes({0xFF, 0xFF}));
}

TEST_CASE("COPY BINARY tuple: text, int4, NULL, pgvector and float4[]") {
  Record r;
  r.id_json = R"("a\tb")";
  r.tokens = 258;
  r.carry_json = R"("n":1.5)";
  float v[] = {1.0f, -2.0f};
  std::string out;
  Writer("pgvector", "id,embedding,tokens,n,gone,model", {"n", "gone"})
      ->Write(r, v, 2, &out);
  CHECK(out == Bytes({0, 6,                              // 6 fields
                      0, 0, 0, 3, 'a', '\t', 'b',        // id
                      0, 0, 0, 12, 0, 2, 0, 0,           // vector: dims, unused
                      0x3F, 0x80, 0, 0, 0xC0, 0, 0, 0,   // 1, -2
                      0, 0, 0, 4, 0, 0, 1, 2,            // tokens
                      0, 0, 0, 3, '1', '.', '5',         // carried as JSON text
                      0xFF, 0xFF, 0xFF, 0xFF,            // absent: NULL
                      0, 0, 0, 1, 'm'}));
  out.clear();
  r.id_json = "7";
  Writer("pgarray", "embedding,id")->Write(r, v, 2, &out);
  CHECK(out == Bytes({0, 2,
                      0, 0, 0, 36,                       // 20 + 8 * 2
                      0, 0, 0, 1,                        // one dimension
                      0, 0, 0, 0,                        // no NULLs
                      0, 0, 0x02, 0xBC,                  // float4's OID, 700
                      0, 0, 0, 2, 0, 0, 0, 1,            // length 2, from 1
                      0, 0, 0, 4, 0x3F, 0x80, 0, 0,
                      0, 0, 0, 4, 0xC0, 0, 0, 0,
                      0, 0, 0, 1, '7'}));
}

TEST_CASE("COPY BINARY tuple: halfvec, each value rounded to binary16") {
  // halfvec_recv reads int16 dimensions, int16 unused (0), then each value
  // as its 16 bits, big-endian.
  Record r;
  r.id_json = R"("h")";
  // 1 + 2^-11 is halfway between two halves: it goes to the even one, 1.
  float v[] = {1.0f, -2.0f, 65504.0f, 1.00048828125f, 5.9604645e-08f};
  std::string out;
  Writer("halfvec", "id,embedding")->Write(r, v, 5, &out);
  CHECK(out == Bytes({0, 2,
                      0, 0, 0, 1, 'h',
                      0, 0, 0, 14, 0, 5, 0, 0,           // 4 + 2 * 5
                      0x3C, 0x00, 0xC0, 0x00, 0x7B, 0xFF,
                      0x3C, 0x00, 0x00, 0x01}));
}
