#include "output/output_layout.h"

#include <doctest/doctest.h>

namespace {

OutputConfig Config(std::string format, std::string vector,
                    std::string columns,
                    std::vector<std::string> carry = {}) {
  OutputConfig c;
  c.format = std::move(format);
  c.vector = std::move(vector);
  c.columns = std::move(columns);
  c.carry_fields = std::move(carry);
  c.model = "m-1";
  return c;
}

std::string ErrorOf(const OutputConfig& config) {
  OutputLayout layout;
  std::string err;
  CHECK(!ParseOutputLayout(config, &layout, &err));
  return err;
}

}  // namespace

TEST_CASE("Output layout: formats, default vector styles, columns") {
  OutputLayout l;
  std::string err;
  REQUIRE(ParseOutputLayout(OutputConfig(), &l, &err));
  CHECK(l.format == OutputFormat::kJsonl);
  CHECK(l.vector == VectorStyle::kJson);
  REQUIRE(l.columns.size() == 2);
  CHECK(l.columns[0].kind == OutputColumn::kId);
  CHECK(l.columns[1].kind == OutputColumn::kEmbedding);
  CHECK(l.all_carried_at == 2);

  REQUIRE(ParseOutputLayout(Config("tsv", "", "model,embedding,carried,id",
                                   {"a", "b", "c"}),
                            &l, &err));
  CHECK(l.format == OutputFormat::kTsv);
  CHECK(l.vector == VectorStyle::kPgvector);
  REQUIRE(l.columns.size() == 6);
  CHECK(l.columns[0].kind == OutputColumn::kModel);
  CHECK(l.columns[1].kind == OutputColumn::kEmbedding);
  CHECK(l.all_carried_at == 2);
  for (size_t k = 0; k < 3; ++k) {
    CHECK(l.columns[2 + k].kind == OutputColumn::kCarried);
    CHECK(l.columns[2 + k].carry_index == k);
  }
  CHECK(l.columns[5].kind == OutputColumn::kId);

  REQUIRE(ParseOutputLayout(Config("csv", "pgarray", "embedding,tokens,c,a",
                                   {"a", "b", "c"}),
                            &l, &err));
  CHECK(l.format == OutputFormat::kCsv);
  CHECK(l.vector == VectorStyle::kPgarray);
  REQUIRE(l.columns.size() == 4);
  CHECK(l.columns[1].kind == OutputColumn::kTokens);
  CHECK(l.columns[2].carry_index == 2);
  CHECK(l.columns[3].carry_index == 0);
  CHECK(l.all_carried_at == std::string::npos);

  REQUIRE(ParseOutputLayout(Config("binary", "", "id,embedding"), &l, &err));
  CHECK(l.vector == VectorStyle::kPgvector);
  for (const char* format : {"jsonl", "tsv", "csv", "binary"}) {
    REQUIRE(ParseOutputLayout(Config(format, "halfvec", "id,embedding"), &l,
                              &err));
    CHECK(l.vector == VectorStyle::kHalfvec);
  }
}

TEST_CASE("Output layout: bad flags are refused with the flag named") {
  CHECK(ErrorOf(Config("xml", "", "id,embedding")) ==
        "unknown --format \"xml\" (want jsonl, tsv, csv or binary)");
  CHECK(ErrorOf(Config("tsv", "bytes", "id,embedding")) ==
        "unknown --vector \"bytes\" (want json, pgvector, pgarray or halfvec)");
  CHECK(ErrorOf(Config("binary", "json", "id,embedding")) ==
        "--format binary needs --vector pgvector, pgarray or halfvec");
  CHECK(ErrorOf(Config("tsv", "", "id")) == "--columns must include embedding");
  CHECK(ErrorOf(Config("tsv", "", "id,embedding,id")) ==
        "--columns names \"id\" twice");
  CHECK(ErrorOf(Config("tsv", "", "id,,embedding")) ==
        "--columns: unknown column \"\" (want id, embedding, tokens, model, "
        "key, carried, or a field given with --carry)");
  CHECK(ErrorOf(Config("tsv", "", "key,embedding,key")) ==
        "--columns names \"key\" twice");
  CHECK(ErrorOf(Config("tsv", "", "embedding,x", {"y"})).find("\"x\"") !=
        std::string::npos);
  CHECK(ErrorOf(Config("tsv", "", "embedding,carried,y", {"y"})) ==
        "--columns names carried field \"y\" twice");
  CHECK(ErrorOf(Config("tsv", "", "embedding,carried,carried")) ==
        "--columns names \"carried\" twice");
}

TEST_CASE("Column text: the key column is the record's key in lower-case hex") {
  OutputLayout l;
  std::string err;
  REQUIRE(ParseOutputLayout(Config("csv", "", "key,embedding"), &l, &err));
  REQUIRE(l.columns[0].kind == OutputColumn::kKey);
  Record r;
  for (size_t i = 0; i < r.key.size(); ++i) r.key[i] = static_cast<uint8_t>(i * 17 + 10);
  ColumnText text(&l);
  text.Reset(r);
  std::string_view v;
  REQUIRE(text.Get(l.columns[0], &v));
  CHECK(v == "0a1b2c3d4e5f708192a3b4c5d6e7f8091a2b3c4d5e6f8091a2b3c4d5e6f70819");
}

TEST_CASE("Column text: strings unescaped, other JSON compact, null NULL") {
  OutputLayout l;
  std::string err;
  REQUIRE(ParseOutputLayout(
      Config("tsv", "", "id,embedding,carried,tokens,model",
             {"s", "n", "o", "z", "missing", "e"}),
      &l, &err));
  Record r;
  r.id_json = R"("a\tb\\c \"q\" \u00e9")";
  r.tokens = 42;
  r.carry_json = R"("s":"x\ny","n":1.50,"o":{"k":[1,"v"]},"z":null,"e":"")";
  ColumnText text(&l);
  text.Reset(r);
  std::string_view v;
  auto get = [&](size_t column) {
    bool present = text.Get(l.columns[column], &v);
    return present ? std::string(v) : std::string("<NULL>");
  };
  CHECK(get(0) == "a\tb\\c \"q\" \xc3\xa9");
  CHECK(get(2) == "x\ny");
  CHECK(get(3) == "1.50");
  CHECK(get(4) == R"({"k":[1,"v"]})");
  CHECK(get(5) == "<NULL>");
  CHECK(get(6) == "<NULL>");
  CHECK(get(7) == "");
  CHECK(get(8) == "42");
  CHECK(get(9) == "m-1");
  r.id_json = "-0";
  r.carry_json.clear();
  text.Reset(r);
  CHECK(get(0) == "-0");
  CHECK(get(2) == "<NULL>");
  CHECK(text.Carried(0) == nullptr);
}
