#include "input/json_text.h"

#include <doctest/doctest.h>

namespace {

std::string Text(std::string_view json) {
  std::string out;
  REQUIRE_MESSAGE(AppendJsonStringText(json, &out), json);
  return out;
}

bool Fails(std::string_view json) {
  std::string out;
  return !AppendJsonStringText(json, &out);
}

}  // namespace

TEST_CASE("JSON string literals decode to their text") {
  CHECK(Text(R"("")") == "");
  CHECK(Text(R"("plain")") == "plain");
  CHECK(Text(R"("a\"b\\c\/d")") == "a\"b\\c/d");
  CHECK(Text(R"("\b\f\n\r\t")") == "\b\f\n\r\t");
  CHECK(Text(R"("\u0001\u001f\u00e9")") == "\x01\x1f\xc3\xa9");
  CHECK(Text(R"("\u6771\uD83D\uDE00")") == "\xe6\x9d\xb1\xf0\x9f\x98\x80");
  CHECK(Text("\"caf\xc3\xa9 raw\"") == "caf\xc3\xa9 raw");
  CHECK(Text(R"("\u0000")") == std::string(1, '\0'));
  CHECK(Fails("plain"));
  CHECK(Fails(R"("a"b")"));
  CHECK(Fails(R"("\x")"));
  CHECK(Fails(R"("\u12")"));
  CHECK(Fails(R"("\uDE00")"));        // lone low surrogate
  CHECK(Fails(R"("\uD83D")"));        // lone high surrogate
  CHECK(Fails(R"("\uD83Dx\uDE00")"));
  CHECK(Fails(R"("\")"));
}

TEST_CASE("carry_json splits into its pairs") {
  std::vector<CarriedField> f;
  REQUIRE(SplitCarryJson("", &f));
  CHECK(f.empty());
  REQUIRE(SplitCarryJson(
      R"("a":"x,\"y\"","b.c":[1,{"k":"]"}],"d":null,"e":-1.50e3,"f":{"g":"}"},"h":true)",
      &f));
  REQUIRE(f.size() == 6);
  CHECK(f[0].path_json == R"("a")");
  CHECK(f[0].value_json == R"("x,\"y\"")");
  CHECK(f[1].path_json == R"("b.c")");
  CHECK(f[1].value_json == R"([1,{"k":"]"}])");
  CHECK(f[2].value_json == "null");
  CHECK(f[3].value_json == "-1.50e3");
  CHECK(f[4].value_json == R"({"g":"}"})");
  CHECK(f[5].path_json == R"("h")");
  CHECK(f[5].value_json == "true");
  CHECK(!SplitCarryJson(R"("a")", &f));
  CHECK(!SplitCarryJson(R"("a":)", &f));
  CHECK(!SplitCarryJson(R"("a":1,)", &f));
  CHECK(!SplitCarryJson(R"(a:1)", &f));
  CHECK(!SplitCarryJson(R"("a":[1)", &f));
  CHECK(!SplitCarryJson(R"("a":"x)", &f));
}

TEST_CASE("AppendJsonString escapes what JSON requires and reads back") {
  std::string out;
  CHECK(AppendJsonString(&out, std::string("a\"b\\c\n\t\x01 \xc3\xa9", 11)));
  CHECK(out == "\"a\\\"b\\\\c\\n\\t\\u0001 \xc3\xa9\"");
  std::string back;
  REQUIRE(AppendJsonStringText(out, &back));
  CHECK(back == std::string("a\"b\\c\n\t\x01 \xc3\xa9", 11));
  out.clear();
  CHECK_FALSE(AppendJsonString(&out, "bad \xff"));
  CHECK(out == "\"bad \xef\xbf\xbd\"");
}

TEST_CASE("IsJsonNumber follows RFC 8259's grammar") {
  for (const char* yes : {"0", "-0", "42", "-17", "1.5", "0.25", "1e9", "1E+9", "2.5e-3"})
    CHECK_MESSAGE(IsJsonNumber(yes), yes);
  for (const char* no : {"", "-", "01", "+1", "1.", ".5", "1e", "1e+", "0x10", "1 ", "NaN", "abc"})
    CHECK_MESSAGE(!IsJsonNumber(no), no);
}
