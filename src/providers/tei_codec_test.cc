#include "providers/tei_codec.h"

#include <doctest/doctest.h>

#include "providers/codec_test_util.h"

namespace {

TeiCodec MakeCodec(bool truncate, std::string key = "") {
  CodecConfig c;
  c.base_url = "http://127.0.0.1:8080/";
  c.model = "BAAI/bge-small-en-v1.5";
  c.truncate = truncate;
  c.api_key = std::move(key);
  return TeiCodec(c);
}

}  // namespace

TEST_CASE("TeiCodec encodes /embed with inputs, truncate and normalize") {
  HttpRequest req = MakeCodec(false).EncodeRequest(TextBatch({"a", "b"}));
  CHECK(req.url == "http://127.0.0.1:8080/embed");
  CHECK(req.body == R"({"inputs":["a","b"],"truncate":false,"normalize":true})");
  CHECK(HasHeader(MakeCodec(true, "hf-key").EncodeRequest(TextBatch({"a"})),
                  "Authorization: Bearer hf-key"));
}

TEST_CASE("TeiCodec decodes a bare array of vectors") {
  Embeddings out;
  std::string err;
  REQUIRE(MakeCodec(false).DecodeResponse(Reply(200, "[[0.5,0.25],[1,-1]]"),
                                          TextBatch({"a", "b"}), &out, &err));
  CHECK(out.values == std::vector<float>{0.5f, 0.25f, 1, -1});
  CHECK_FALSE(MakeCodec(false).DecodeResponse(Reply(200, R"({"error":"x"})"),
                                              TextBatch({"a"}), &out, &err));
  CHECK(err == "response is not an array");
  CHECK_FALSE(MakeCodec(false).DecodeResponse(Reply(200, "[[1]]"), TextBatch({"a", "b"}), &out,
                                              &err));
  CHECK(err == "response has 1 embeddings for 2 inputs");
}

TEST_CASE("TeiCodec reads TEI's error and error_type") {
  ApiError e = MakeCodec(false).ParseError(Reply(
      413, R"({"error":"Input validation error: `inputs` must have less than 512 tokens. )"
           R"(Given: 785","error_type":"Validation"})"));
  CHECK(e.message ==
        "Input validation error: `inputs` must have less than 512 tokens. Given: 785");
  CHECK(e.type == "Validation");
  e = MakeCodec(false).ParseError(
      Reply(422, R"({"error":"batch size 64 > maximum allowed batch size 32",)"
                 R"("error_type":"Validation"})"));
  CHECK(e.message == "batch size 64 > maximum allowed batch size 32");
}
