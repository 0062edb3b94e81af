#include "providers/cohere_codec.h"

#include <doctest/doctest.h>

#include "providers/codec_test_util.h"

namespace {

CohereCodec MakeCodec(bool truncate = false, int dims = 0) {
  CodecConfig c;
  c.base_url = "https://api.cohere.com/";
  c.model = "embed-v4.0";
  c.api_key = "co-key";
  c.input_type = "search_document";
  c.truncate = truncate;
  c.dimensions = dims;
  return CohereCodec(c);
}

}  // namespace

TEST_CASE("CohereCodec encodes a v2 embed request") {
  HttpRequest req = MakeCodec().EncodeRequest(TextBatch({"a", "b\"c"}));
  CHECK(req.url == "https://api.cohere.com/v2/embed");
  CHECK(HasHeader(req, "Authorization: Bearer co-key"));
  CHECK(req.body ==
        R"({"model":"embed-v4.0","texts":["a","b\"c"],"input_type":"search_document",)"
        R"("embedding_types":["float"],"truncate":"NONE"})");
  CHECK(MakeCodec(true, 512).EncodeRequest(TextBatch({"a"})).body ==
        R"({"model":"embed-v4.0","texts":["a"],"input_type":"search_document",)"
        R"("embedding_types":["float"],"truncate":"END","output_dimension":512})");
}

TEST_CASE("CohereCodec decodes embeddings.float in input order") {
  // The documented response: id, embeddings by type, texts, meta.
  const char* body =
      R"({"id":"da6e531f","embeddings":{"float":[[0.5,-0.25],[1,2]]},)"
      R"("texts":["a","b"],"meta":{"api_version":{"version":"2"},)"
      R"("billed_units":{"input_tokens":7}},"response_type":"embeddings_by_type"})";
  Embeddings out;
  std::string err;
  REQUIRE(MakeCodec().DecodeResponse(Reply(200, body), TextBatch({"a", "b"}), &out, &err));
  CHECK(out.dims == 2);
  CHECK(out.values == std::vector<float>{0.5f, -0.25f, 1, 2});
  CHECK(out.prompt_tokens == 7);
  CHECK_FALSE(MakeCodec().DecodeResponse(
      Reply(200, R"({"embeddings":{"int8":[[1],[2]]}})"), TextBatch({"a", "b"}), &out, &err));
  CHECK(err == "response has no embeddings.float array");
  CHECK_FALSE(MakeCodec().DecodeResponse(
      Reply(200, R"({"embeddings":{"float":[[1],[2],[3]]}})"), TextBatch({"a", "b"}), &out,
      &err));
  CHECK(err == "response has more embeddings than the 2 inputs");
}

TEST_CASE("CohereCodec reads Cohere's error body") {
  ApiError e = MakeCodec().ParseError(
      Reply(400, R"({"id":"0b7c","message":"invalid request: valid input_type must be provided"})"));
  CHECK(e.message == "invalid request: valid input_type must be provided");
  CHECK(MakeCodec().ParseError(Reply(429, "")).message == "HTTP 429");
}
