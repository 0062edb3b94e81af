#include "providers/gemini_codec.h"

#include <doctest/doctest.h>

#include "providers/codec_test_util.h"

namespace {

GeminiCodec MakeCodec(std::string model, std::string task = "", int dims = 0) {
  CodecConfig c;
  c.base_url = "https://generativelanguage.googleapis.com/v1beta";
  c.model = std::move(model);
  c.api_key = "AIza-key";
  c.input_type = std::move(task);
  c.dimensions = dims;
  return GeminiCodec(c);
}

}  // namespace

TEST_CASE("GeminiCodec encodes batchEmbedContents with the key header") {
  HttpRequest req = MakeCodec("gemini-embedding-001", "RETRIEVAL_DOCUMENT", 768)
                        .EncodeRequest(TextBatch({"a", "b"}));
  CHECK(req.url ==
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-embedding-001:batchEmbedContents");
  CHECK(HasHeader(req, "x-goog-api-key: AIza-key"));
  CHECK(req.body ==
        R"({"requests":[)"
        R"({"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]},)"
        R"("taskType":"RETRIEVAL_DOCUMENT","outputDimensionality":768},)"
        R"({"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]},)"
        R"("taskType":"RETRIEVAL_DOCUMENT","outputDimensionality":768}]})");
  // A model given as the API names it is not prefixed twice.
  CHECK(MakeCodec("models/text-embedding-004").EncodeRequest(TextBatch({"a"})).body ==
        R"({"requests":[{"model":"models/text-embedding-004",)"
        R"("content":{"parts":[{"text":"a"}]}}]})");
}

TEST_CASE("GeminiCodec decodes embeddings[].values in order") {
  Embeddings out;
  std::string err;
  REQUIRE(MakeCodec("m").DecodeResponse(
      Reply(200, R"({"embeddings":[{"values":[1,2]},{"values":[3,4]}]})"),
      TextBatch({"a", "b"}), &out, &err));
  CHECK(out.values == std::vector<float>{1, 2, 3, 4});
  CHECK_FALSE(MakeCodec("m").DecodeResponse(
      Reply(200, R"({"embeddings":[{"values":[1,2]},{}]})"), TextBatch({"a", "b"}), &out,
      &err));
  CHECK(err == "an embeddings item lacks values");
}

TEST_CASE("GeminiCodec reads Google's error body and reason") {
  ApiError e = MakeCodec("m").ParseError(Reply(
      400,
      R"({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.",)"
      R"("status":"INVALID_ARGUMENT","details":[{"@type":)"
      R"("type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}})"));
  CHECK(e.message == "API key not valid. Please pass a valid API key.");
  CHECK(e.type == "INVALID_ARGUMENT");
  CHECK(e.code == "API_KEY_INVALID");
  e = MakeCodec("m").ParseError(Reply(
      429, R"({"error":{"code":429,"message":"Resource has been exhausted",)"
           R"("status":"RESOURCE_EXHAUSTED"}})"));
  CHECK(e.code == "429");
  CHECK(e.type == "RESOURCE_EXHAUSTED");
}
