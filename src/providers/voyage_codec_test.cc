#include "providers/voyage_codec.h"

#include <doctest/doctest.h>

#include <cstring>

#include "providers/base64.h"
#include "providers/codec_test_util.h"

namespace {

VoyageCodec MakeCodec(bool base64, std::string input_type = "", int dims = 0) {
  CodecConfig c;
  c.base_url = "https://api.voyageai.com/v1";
  c.model = "voyage-3.5";
  c.api_key = "pa-key";
  c.input_type = std::move(input_type);
  c.dimensions = dims;
  c.base64 = base64;
  return VoyageCodec(c);
}

}  // namespace

TEST_CASE("VoyageCodec encodes input, model, input_type, truncation") {
  HttpRequest req = MakeCodec(false).EncodeRequest(TextBatch({"x"}));
  CHECK(req.url == "https://api.voyageai.com/v1/embeddings");
  CHECK(HasHeader(req, "Authorization: Bearer pa-key"));
  CHECK(req.body == R"({"input":["x"],"model":"voyage-3.5","truncation":false})");
  CHECK(MakeCodec(true, "document", 512).EncodeRequest(TextBatch({"x"})).body ==
        R"({"input":["x"],"model":"voyage-3.5","input_type":"document","truncation":false,)"
        R"("output_dimension":512,"encoding_format":"base64"})");
}

TEST_CASE("VoyageCodec decodes data[] by index, floats or base64") {
  const char* body =
      R"({"object":"list","data":[{"object":"embedding","embedding":[3,4],"index":1},)"
      R"({"object":"embedding","embedding":[1,2],"index":0}],"model":"voyage-3.5",)"
      R"("usage":{"total_tokens":10}})";
  Embeddings out;
  std::string err;
  REQUIRE(MakeCodec(false).DecodeResponse(Reply(200, body), TextBatch({"a", "b"}), &out, &err));
  CHECK(out.values == std::vector<float>{1, 2, 3, 4});
  CHECK(out.prompt_tokens == 10);
  float v[2] = {0.5f, -1};
  std::string b64 = Base64Encode(std::string(reinterpret_cast<char*>(v), sizeof v));
  REQUIRE(MakeCodec(true).DecodeResponse(
      Reply(200, R"({"data":[{"embedding":")" + b64 + R"(","index":0}]})"), TextBatch({"a"}),
      &out, &err));
  CHECK(out.values == std::vector<float>{0.5f, -1});
}

TEST_CASE("VoyageCodec reads Voyage's detail errors") {
  ApiError e = MakeCodec(false).ParseError(Reply(
      400, R"({"detail":"The batch size limit is 1000. Your batch size is 1001."})"));
  CHECK(e.message == "The batch size limit is 1000. Your batch size is 1001.");
}
