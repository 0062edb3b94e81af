#include "input/record_parser.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace {

struct Parsed {
  ParseStatus status;
  ParsedRecord record;
  std::string field;
  std::string reason;
};

Parsed ParseWith(RecordParser* parser, std::string_view line) {
  Parsed p;
  p.status = parser->Parse(line, &p.record, &p.field, &p.reason);
  return p;
}

Parsed ParseLine(std::string_view line) {
  RecordParser parser;
  return ParseWith(&parser, line);
}

RecordParser ParserFor(const RecordParserConfig& config) {
  RecordParser parser;
  std::string err;
  REQUIRE_MESSAGE(parser.Init(config, &err), err);
  return parser;
}

// Parses `line`, expecting an error, and returns the reason.
std::string ErrorOf(RecordParser* parser, std::string_view line) {
  Parsed p = ParseWith(parser, line);
  CHECK(p.status == ParseStatus::kError);
  return p.reason;
}

std::string ErrorOf(std::string_view line) {
  RecordParser parser;
  return ErrorOf(&parser, line);
}

}  // namespace

TEST_CASE("SplitFieldPath") {
  std::vector<std::string> keys;
  std::string err;
  CHECK(SplitFieldPath("text", &keys, &err));
  CHECK(keys == std::vector<std::string>{"text"});
  CHECK(SplitFieldPath("a.b.c", &keys, &err));
  CHECK(keys == std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(SplitFieldPath("", &keys, &err));
  CHECK(err == "field path is empty");
  for (const char* bad : {"a..b", ".a", "a.", "."}) {
    CHECK_FALSE(SplitFieldPath(bad, &keys, &err));
    CHECK(err ==
          "field path \"" + std::string(bad) + "\" has an empty component");
  }
}

TEST_CASE("RecordParser::Init rejects bad paths and keeps its configuration") {
  RecordParser parser;
  std::string err;
  RecordParserConfig config;
  config.text_field = "body..text";
  CHECK_FALSE(parser.Init(config, &err));
  CHECK(err == "field path \"body..text\" has an empty component");
  config = RecordParserConfig();
  config.carry_fields = {"a", "b", "a"};
  CHECK_FALSE(parser.Init(config, &err));
  CHECK(err == "field \"a\" is carried twice");
  config.carry_fields = {"a", ""};
  CHECK_FALSE(parser.Init(config, &err));
  CHECK(err == "field path is empty");
  CHECK(ParseWith(&parser, R"({"id":1,"text":"t","a":2})").record.carry_json ==
        "");
}

TEST_CASE("RecordParser extracts id and text") {
  Parsed p = ParseLine(R"({"id":"a1","text":"hello"})");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.id_json == R"("a1")");
  CHECK(p.record.text == "hello");
  CHECK(p.record.carry_json == "");
  CHECK(p.field == "");
  CHECK(p.reason == "");

  p = ParseLine(
      " \t{ \"text\" : \"x\" , \"other\" : [1, {\"id\": 2}] , "
      "\"id\" : 3 }\r ");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.id_json == "3");
  CHECK(p.record.text == "x");
}

TEST_CASE("RecordParser keeps numeric ids exactly as written") {
  for (const char* id :
       {"0", "-0", "42", "1.50", "1e3", "1E+2", "-2.5e-3",
        "12345678901234567890", "123456789012345678901234567890"}) {
    CAPTURE(id);
    Parsed p = ParseLine(std::string("{\"id\":") + id + ",\"text\":\"t\"}");
    CHECK(p.status == ParseStatus::kRecord);
    CHECK(p.record.id_json == id);
  }
}

TEST_CASE("RecordParser re-escapes string ids compactly") {
  Parsed p = ParseLine(R"({"id":"a\"b\\c\u0001\/d\u00e9\t","text":"t"})");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.id_json == "\"a\\\"b\\\\c\\u0001/d\xC3\xA9\\t\"");
}

TEST_CASE("RecordParser unescapes text and passes its bytes through") {
  Parsed p = ParseLine(R"({"id":1,"text":"a\nb\u0000c\ud83d\ude00"})");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.text == std::string("a\nb\0c\xF0\x9F\x98\x80", 9));

  // Invalid UTF-8 is the normalizer's business, not the parser's.
  p = ParseLine("{\"id\":1,\"text\":\"\xFF\xC0\xAF\xED\xA0\x80z\"}");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.text == "\xFF\xC0\xAF\xED\xA0\x80z");

  p = ParseLine(R"({"id":1,"text":""})");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.text == "");
}

TEST_CASE("RecordParser reports blank lines apart from errors") {
  for (const char* blank : {"", " ", "\t \r", "   \t"}) {
    Parsed p = ParseLine(blank);
    CHECK(p.status == ParseStatus::kBlank);
    CHECK(p.reason == "");
  }
}

TEST_CASE("RecordParser reports invalid JSON with offset and message") {
  Parsed p = ParseLine(R"({"id":1 "text":"x"})");
  CHECK(p.status == ParseStatus::kError);
  CHECK(p.field == "");
  CHECK(p.reason ==
        "invalid JSON at byte 8: Missing a comma or '}' after an object "
        "member");
  CHECK(p.record.id_json == "");

  CHECK(ErrorOf(R"({"id":1,"text":"x"} x)") ==
        "invalid JSON at byte 20: The document root must not be followed by "
        "other values");
  CHECK(ErrorOf(std::string(R"({"id":1,"text":"x"})") + '\0') ==
        "invalid JSON at byte 19: The document root must not be followed by "
        "other values");
  CHECK(ErrorOf(std::string("{\"id\":1,\"text\":\"a\0b\"}", 21)) ==
        "invalid JSON at byte 17: Missing a closing quotation mark in string");
  CHECK(ErrorOf(R"({"id":1,"text":"\ud800"})") ==
        "invalid JSON at byte 16: The surrogate pair in string is invalid");
  CHECK(ErrorOf(R"({"id":1,"text":"\ud800\u0041"})") ==
        "invalid JSON at byte 16: The surrogate pair in string is invalid");
  CHECK(ErrorOf(R"({"id":1e400,"text":"x"})") ==
        "invalid JSON at byte 6: Number too big to be stored in double");
  CHECK(ErrorOf(R"({"id":01,"text":"x"})") ==
        "invalid JSON at byte 7: Missing a comma or '}' after an object "
        "member");
  // RapidJSON calls these invalid escapes: they are characters never
  // escaped.
  CHECK(ErrorOf("{\"id\":1,\"text\":\"a\tb\"}") ==
        "invalid JSON at byte 17: unescaped control character U+0009 in a "
        "string (JSON writes it as \\u0009)");
  CHECK(ErrorOf("{\"id\":1,\"text\":\"a\x01" "b\"}") ==
        "invalid JSON at byte 17: unescaped control character U+0001 in a "
        "string (JSON writes it as \\u0001)");
  CHECK(ErrorOf(R"({"id":1,"text":"a\qb"})") ==
        "invalid JSON at byte 17: Invalid escape character in string");
  CHECK(ErrorOf(R"({"id":1,)") ==
        "invalid JSON at byte 8: Missing a name for object member");
  CHECK(ErrorOf("x") == "invalid JSON at byte 0: Invalid value");
  // The line reader drops a byte order mark only at the start of a file.
  CHECK(ErrorOf("\xEF\xBB\xBF{\"id\":1,\"text\":\"x\"}") ==
        "invalid JSON at byte 0: Invalid value (a UTF-8 byte order mark starts "
        "the line; one is skipped only at the start of a file: were files "
        "joined with cat?)");
}

TEST_CASE("RecordParser wants a JSON object at the top level") {
  CHECK(ErrorOf("[1,2]") == "expected a JSON object, got an array");
  CHECK(ErrorOf(R"([{"id":1,"text":"t"}])") ==
        "expected a JSON object, got an array");
  CHECK(ErrorOf(R"("s")") == "expected a JSON object, got a string");
  CHECK(ErrorOf("3") == "expected a JSON object, got a number");
  CHECK(ErrorOf("true") == "expected a JSON object, got a boolean");
  CHECK(ErrorOf("null") == "expected a JSON object, got null");
  CHECK(ParseLine("[1]").field == "");
}

TEST_CASE("RecordParser checks the text field") {
  Parsed p = ParseLine(R"({"id":7})");
  CHECK(p.status == ParseStatus::kError);
  CHECK(p.field == "text");
  CHECK(p.reason == "field \"text\" is missing");
  CHECK(p.record.id_json == "7");

  p = ParseLine(R"({"id":"k","text":12})");
  CHECK(p.field == "text");
  CHECK(p.reason == "field \"text\" must be a string, got number");
  CHECK(p.record.id_json == R"("k")");

  CHECK(ErrorOf(R"({"id":1,"text":null})") ==
        "field \"text\" must be a string, got null");
  CHECK(ErrorOf(R"({"id":1,"text":{"a":"b"}})") ==
        "field \"text\" must be a string, got object");
  CHECK(ErrorOf(R"({"id":1,"text":["a"]})") ==
        "field \"text\" must be a string, got array");
  CHECK(ErrorOf(R"({"id":1,"text":false})") ==
        "field \"text\" must be a string, got boolean");
}

TEST_CASE("RecordParser checks the id field before the text") {
  Parsed p = ParseLine(R"({"text":"t"})");
  CHECK(p.status == ParseStatus::kError);
  CHECK(p.field == "id");
  CHECK(p.reason == "field \"id\" is missing");

  p = ParseLine(R"({"id":true,"text":5})");
  CHECK(p.field == "id");
  CHECK(p.reason == "field \"id\" must be a string or number, got boolean");
  CHECK(p.record.id_json == "");
  CHECK(ErrorOf(R"({"id":null,"text":"t"})") ==
        "field \"id\" must be a string or number, got null");
  CHECK(ErrorOf(R"({"id":{"a":1},"text":"t"})") ==
        "field \"id\" must be a string or number, got object");
  CHECK(ErrorOf(R"({"id":[1],"text":"t"})") ==
        "field \"id\" must be a string or number, got array");
}

TEST_CASE("RecordParser without a required id") {
  RecordParserConfig config;
  config.require_id = false;
  RecordParser parser = ParserFor(config);
  Parsed p = ParseWith(&parser, R"({"text":"t"})");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.id_json == "");
  CHECK(ParseWith(&parser, R"({"id":"x","text":"t"})").record.id_json ==
        R"("x")");
  CHECK(ErrorOf(&parser, R"({"id":[1],"text":"t"})") ==
        "field \"id\" must be a string or number, got array");
}

TEST_CASE("RecordParser follows nested field paths") {
  RecordParserConfig config;
  config.id_field = "meta.id";
  config.text_field = "body.content";
  RecordParser parser = ParserFor(config);
  Parsed p =
      ParseWith(&parser, R"({"id":0,"meta":{"x":[{"id":9}],"y":{"id":8},)"
                         R"("id":"m1"},"body":{"content":"hi"}})");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.id_json == R"("m1")");
  CHECK(p.record.text == "hi");

  p = ParseWith(&parser, R"({"meta":{"id":1},"body":{"content":3}})");
  CHECK(p.field == "body.content");
  CHECK(p.reason == "field \"body.content\" must be a string, got number");
  CHECK(p.record.id_json == "1");

  // Each way of not being there.
  for (const char* line :
       {R"({"meta":5,"body":{"content":"t"}})",
        R"({"meta":[{"id":1}],"body":{"content":"t"}})",
        R"({"x":{"meta":{"id":1}},"body":{"content":"t"}})",
        R"({"meta.id":1,"body":{"content":"t"}})",
        R"({"meta":{"meta":{"id":1}},"body":{"content":"t"}})",
        R"({"Meta":{"id":1},"body":{"content":"t"}})"}) {
    CAPTURE(line);
    p = ParseWith(&parser, line);
    CHECK(p.field == "meta.id");
    CHECK(p.reason == "field \"meta.id\" is missing");
  }
}

TEST_CASE("RecordParser matches keys byte for byte after unescaping") {
  CHECK(ParseLine(R"({"i\u0064":1,"t\u0065xt":"x"})").status ==
        ParseStatus::kRecord);
  CHECK(ErrorOf(R"({"ID":1,"text":"x"})") == "field \"id\" is missing");
  CHECK(ErrorOf(R"({"id ":1,"text":"x"})") == "field \"id\" is missing");

  RecordParserConfig config;
  config.text_field = "m\xC3\xA9t\xC3\xA9";
  RecordParser parser = ParserFor(config);
  CHECK(ParseWith(&parser, "{\"id\":1,\"m\\u00e9t\xC3\xA9\":\"x\"}").status ==
        ParseStatus::kRecord);
  // The same word in decomposed form is a different key.
  CHECK(ErrorOf(&parser, R"({"id":1,"me\u0301te\u0301":"x"})") ==
        "field \"m\xC3\xA9t\xC3\xA9\" is missing");
}

TEST_CASE("RecordParser lets the first of duplicate keys win") {
  Parsed p = ParseLine(R"({"id":1,"id":2,"text":"a","text":"b"})");
  CHECK(p.record.id_json == "1");
  CHECK(p.record.text == "a");
  CHECK(ErrorOf(R"({"id":1,"text":5,"text":"b"})") ==
        "field \"text\" must be a string, got number");

  RecordParserConfig config;
  config.id_field = "meta.id";
  config.carry_fields = {"meta"};
  RecordParser parser = ParserFor(config);
  p = ParseWith(&parser, R"({"meta":{"x":1},"meta":{"id":5},"text":"t"})");
  CHECK(p.reason == "field \"meta.id\" is missing");
  config.require_id = false;
  parser = ParserFor(config);
  p = ParseWith(&parser, R"({"meta":{"x":1},"meta":{"id":5},"text":"t"})");
  CHECK(p.record.carry_json == R"("meta":{"x":1})");
  p = ParseWith(&parser, R"({"meta":3,"meta":{"id":5},"text":"t"})");
  CHECK(p.record.id_json == "");
  CHECK(p.record.carry_json == R"("meta":3)");
}

TEST_CASE("RecordParser carries fields as compact JSON in configured order") {
  RecordParserConfig config;
  config.carry_fields = {"source", "meta.page", "tags",     "missing",
                         "obj",    "text",      "meta.none"};
  RecordParser parser = ParserFor(config);
  Parsed p = ParseWith(
      &parser,
      R"({ "obj" : { "a" : { "b" : [ true , false ] } , "c" : { } , "d" : [] },)"
      R"( "id" : 1 , "text" : "t" , "tags" : [ "a" , 1.50 , { "k" : null } ] ,)"
      R"( "source" : "s\"q\u001f\u007f\/" , "meta" : { "page" : -1.0e+5 } })");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.carry_json ==
        R"("source":"s\"q\u001f)"
        "\x7F"
        R"(/","meta.page":-1.0e+5,"tags":["a",1.50,{"k":null}],)"
        R"("obj":{"a":{"b":[true,false]},"c":{},"d":[]},"text":"t")");

  p = ParseWith(&parser, R"({"id":1,"text":"t"})");
  CHECK(p.record.carry_json == R"("text":"t")");
  config.carry_fields = {"a"};
  parser = ParserFor(config);
  p = ParseWith(&parser, R"({"id":1,"text":"t","b":[1,2]})");
  CHECK(p.record.carry_json == "");
  p = ParseWith(&parser, "{\"id\":1,\"text\":\"t\",\"a\":\"\xFF\\u0000\"}");
  // Output lines must be valid JSON: invalid UTF-8 becomes U+FFFD.
  CHECK(p.record.carry_json == "\"a\":\"\xEF\xBF\xBD\\u0000\"");
  p = ParseWith(&parser,
                "{\"id\":1,\"text\":\"t\",\"a\":[\"\xC3\xA9\xE2\x82\",\"\xF0\x9F\x98\x80\"]}");
  CHECK(p.record.carry_json ==
        "\"a\":[\"\xC3\xA9\xEF\xBF\xBD\",\"\xF0\x9F\x98\x80\"]");
}

TEST_CASE("RecordParser rejects a string id with invalid UTF-8") {
  Parsed p = ParseLine("{\"id\":\"a\xFF\",\"text\":\"t\"}");
  CHECK(p.status == ParseStatus::kError);
  CHECK(p.field == "id");
  CHECK(p.reason == "field \"id\" is not valid UTF-8");
  CHECK(ParseLine("{\"id\":\"\xC3\xA9\",\"text\":\"t\"}").status ==
        ParseStatus::kRecord);
}

TEST_CASE("RecordParser carries fields nested in one another") {
  RecordParserConfig config;
  config.id_field = "meta.id";
  config.carry_fields = {"meta.n", "meta", "meta.id", "meta.n.x"};
  RecordParser parser = ParserFor(config);
  Parsed p = ParseWith(
      &parser,
      R"({"meta":{"id":"x","n":{"l":[1,{"id":2}],"x":{}}},"text":"t","z":0})");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.id_json == R"("x")");
  CHECK(p.record.carry_json ==
        R"("meta.n":{"l":[1,{"id":2}],"x":{}},)"
        R"("meta":{"id":"x","n":{"l":[1,{"id":2}],"x":{}}},)"
        R"("meta.id":"x","meta.n.x":{})");

  // A carried path that is also the id or text.
  config.id_field = "id";
  config.carry_fields = {"id", "text"};
  parser = ParserFor(config);
  p = ParseWith(&parser, R"({"id":1.0,"text":"t"})");
  CHECK(p.record.carry_json == R"("id":1.0,"text":"t")");
}

TEST_CASE("RecordParser survives deep nesting") {
  const int kDepth = 100000;
  std::string deep_arrays = std::string(kDepth, '[') + std::string(kDepth, ']');
  std::string deep_objects;
  for (int i = 0; i < kDepth; ++i) deep_objects += "{\"a\":";
  deep_objects += "1" + std::string(kDepth, '}');

  RecordParserConfig config;
  config.carry_fields = {"d"};
  RecordParser parser = ParserFor(config);
  Parsed p = ParseWith(&parser, R"({"id":1,"text":"t","d":)" + deep_arrays +
                                    ",\"e\":" + deep_objects + "}");
  CHECK(p.status == ParseStatus::kRecord);
  CHECK(p.record.carry_json == "\"d\":" + deep_arrays);

  CHECK(ErrorOf(&parser, std::string(kDepth, '[')) ==
        "invalid JSON at byte 100000: Invalid value");
  CHECK(ErrorOf(&parser,
                "{\"id\":1,\"text\":\"t\",\"d\":" + std::string(kDepth, '{')) ==
        "invalid JSON at byte 24: Missing a name for object member");
  CHECK(ErrorOf(&parser, deep_arrays) ==
        "expected a JSON object, got an array");
}

TEST_CASE("RecordParser resets its output between lines") {
  RecordParserConfig config;
  config.carry_fields = {"c"};
  RecordParser parser = ParserFor(config);
  ParsedRecord record;
  std::string field, reason;
  CHECK(parser.Parse(R"({"id":"long id","text":"long text","c":[1,2,3]})",
                     &record, &field, &reason) == ParseStatus::kRecord);
  CHECK(parser.Parse(R"({"id":1,"text":2})", &record, &field, &reason) ==
        ParseStatus::kError);
  CHECK(record.text == "");
  CHECK(record.carry_json == "");
  CHECK(parser.Parse(R"({"id":2,"text":"t"})", &record, &field, &reason) ==
        ParseStatus::kRecord);
  CHECK(record.id_json == "2");
  CHECK(record.text == "t");
  CHECK(record.carry_json == "");
  CHECK(field == "");
  CHECK(reason == "");
  CHECK(parser.Parse(R"({"id":3,"text":"u",)", &record, &field, &reason) ==
        ParseStatus::kError);
  CHECK(record.id_json == "");
  CHECK(record.text == "");
  CHECK(parser.Parse("  ", &record, &field, &reason) == ParseStatus::kBlank);
  CHECK(reason == "");
}

TEST_CASE("RecordParser rejects lone surrogate escapes, high or low") {
  const char* kReason =
      "invalid JSON at byte 16: The surrogate pair in string is invalid";
  CHECK(ErrorOf(R"({"id":1,"text":"\udc00x"})") == kReason);
  CHECK(ErrorOf(R"({"id":1,"text":"\uDFFF"})") == kReason);
  CHECK(ErrorOf(R"({"id":1,"text":"\ud800x"})").rfind(
            "invalid JSON at byte", 0) == 0);
  // A proper pair, an escaped backslash before "udc00", and plain escapes.
  for (const char* ok : {R"({"id":1,"text":"\ud83d\ude00"})",
                         R"({"id":1,"text":"\\udc00"})",
                         R"({"id":1,"text":"\u00e9\u0041"})"}) {
    CAPTURE(ok);
    CHECK(ParseLine(ok).status == ParseStatus::kRecord);
  }
  CHECK(ParseLine(R"({"id":1,"text":"\\\udc00"})").status ==
        ParseStatus::kError);
}
