#include "providers/ollama_codec.h"

#include <doctest/doctest.h>

#include "providers/codec_test_util.h"

namespace {

OllamaCodec MakeCodec(bool truncate, int dims = 0) {
  CodecConfig c;
  c.base_url = "http://127.0.0.1:11434";
  c.model = "nomic-embed-text";
  c.truncate = truncate;
  c.dimensions = dims;
  return OllamaCodec(c);
}

}  // namespace

TEST_CASE("OllamaCodec encodes /api/embed without a key") {
  HttpRequest req = MakeCodec(true).EncodeRequest(TextBatch({"a", "b"}));
  CHECK(req.url == "http://127.0.0.1:11434/api/embed");
  for (const std::string& h : req.headers) CHECK(h.rfind("Authorization", 0) != 0);
  CHECK(req.body == R"({"model":"nomic-embed-text","input":["a","b"],"truncate":true})");
  CHECK(MakeCodec(false, 256).EncodeRequest(TextBatch({"a"})).body ==
        R"({"model":"nomic-embed-text","input":["a"],"truncate":false,"dimensions":256})");
}

TEST_CASE("OllamaCodec decodes embeddings[][] and prompt_eval_count") {
  Embeddings out;
  std::string err;
  REQUIRE(MakeCodec(true).DecodeResponse(
      Reply(200, R"({"model":"nomic-embed-text","embeddings":[[0.1,0.2],[0.3,0.4]],)"
                 R"("total_duration":14143917,"load_duration":1019500,"prompt_eval_count":8})"),
      TextBatch({"a", "b"}), &out, &err));
  CHECK(out.values == std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f});
  CHECK(out.prompt_tokens == 8);
  CHECK_FALSE(MakeCodec(true).DecodeResponse(Reply(200, R"({"embeddings":[[1],[2,3]]})"),
                                             TextBatch({"a", "b"}), &out, &err));
  CHECK(err == "embeddings differ in length (1 and 2)");
}

TEST_CASE("OllamaCodec reads Ollama's error body") {
  CHECK(MakeCodec(true)
            .ParseError(Reply(404, R"({"error":"model \"x\" not found, try pulling it first"})"))
            .message == "model \"x\" not found, try pulling it first");
}
