#include "providers/openai_codec.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include <fmt/core.h>

#include "providers/base64.h"
#include "providers/codec_test_util.h"

namespace {

Batch MakeBatch(std::initializer_list<const char*> texts) {
  Batch b;
  uint64_t seq = 0;
  for (const char* t : texts) {
    Record r;
    r.seq = seq++;
    r.text = t;
    b.bytes += r.text.size();
    b.records.push_back(r);
  }
  return b;
}

HttpResponse Ok(std::string body) {
  HttpResponse r;
  r.status = 200;
  r.body = std::move(body);
  return r;
}

std::string B64(std::initializer_list<float> values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.begin(), bytes.size());
  return Base64Encode(bytes);
}

OpenAiCodec MakeCodec(int dims = 0, bool base64 = true) {
  return OpenAiCodec(ConfigFor("http://127.0.0.1:9/v1/", "m", dims, base64, "sk-test"));
}

}  // namespace

TEST_CASE("OpenAiCodec encodes model, inputs, format and dimensions") {
  HttpRequest req = MakeCodec(8).EncodeRequest(MakeBatch({"a\"b", "\xc3\xa9\n"}));
  CHECK(req.url == "http://127.0.0.1:9/v1/embeddings");
  CHECK(req.body ==
        "{\"model\":\"m\",\"input\":[\"a\\\"b\",\"\xc3\xa9\\n\"],"
        "\"encoding_format\":\"base64\",\"dimensions\":8}");
  CHECK(std::find(req.headers.begin(), req.headers.end(),
                  "Authorization: Bearer sk-test") != req.headers.end());
  HttpRequest plain = MakeCodec(0, false).EncodeRequest(MakeBatch({"x"}));
  CHECK(plain.body ==
        "{\"model\":\"m\",\"input\":[\"x\"],\"encoding_format\":\"float\"}");
}

TEST_CASE("OpenAiCodec omits Authorization without a key") {
  OpenAiCodec codec(ConfigFor("http://h", "m", 0, true, ""));
  for (const std::string& h : codec.EncodeRequest(MakeBatch({"x"})).headers)
    CHECK(h.rfind("Authorization", 0) != 0);
}

TEST_CASE("OpenAiCodec places float vectors by index, not by position") {
  Batch batch = MakeBatch({"a", "b", "c"});
  Embeddings out;
  std::string err;
  REQUIRE(MakeCodec(0, false).DecodeResponse(
      Ok(R"({"object":"list","data":[
        {"object":"embedding","index":2,"embedding":[3.5,-3]},
        {"object":"embedding","embedding":[1e-3,1],"index":0},
        {"object":"embedding","index":1,"embedding":[0.1,2]}],
        "model":"m","usage":{"prompt_tokens":7,"total_tokens":7}})"),
      batch, &out, &err));
  CHECK(out.dims == 2);
  CHECK(out.values == std::vector<float>{1e-3f, 1, 0.1f, 2, 3.5f, -3});
  CHECK(out.prompt_tokens == 7);
}

TEST_CASE("OpenAiCodec decodes base64 little-endian float32") {
  Batch batch = MakeBatch({"a", "b"});
  Embeddings out;
  std::string err;
  std::string body = R"({"data":[{"index":1,"embedding":")" + B64({0.25f, -1}) +
                     R"("},{"index":0,"embedding":")" + B64({0.5f, 2}) +
                     R"("}]})";
  REQUIRE(MakeCodec(2).DecodeResponse(Ok(body), batch, &out, &err));
  CHECK(out.values == std::vector<float>{0.5f, 2, 0.25f, -1});
}

TEST_CASE("OpenAiCodec reads a body alike with or without spare capacity") {
  // The transport leaves kBodySlack bytes of capacity past a body it was
  // told the length of, and the body is then scanned where it lies; one
  // without (a chunked answer, a test's string) is copied first. Each
  // vector string is longer than 16 bytes, so the block scans run.
  Batch batch = MakeBatch({"a", "b"});
  std::string body = R"({"data":[{"index":1,"embedding":")" +
                     B64({0.25f, -1, 3, 4, 5, 6, 7}) +
                     R"("},{"index":0,"embedding":")" +
                     B64({0.5f, 2, 3, 4, 5, 6, 7}) + R"("}]})";
  HttpResponse tight = Ok(body);
  tight.body.shrink_to_fit();
  REQUIRE(tight.body.capacity() - tight.body.size() < kBodySlack);
  HttpResponse roomy;
  roomy.status = 200;
  roomy.body.reserve(body.size() + kBodySlack);
  roomy.body = body;
  for (const HttpResponse* r : {&tight, &roomy}) {
    Embeddings out;
    std::string err;
    REQUIRE(MakeCodec(7).DecodeResponse(*r, batch, &out, &err));
    CHECK(out.values == std::vector<float>{0.5f, 2, 3, 4, 5, 6, 7,
                                           0.25f, -1, 3, 4, 5, 6, 7});
  }
  // A NUL byte would end the scan early: the JSON before it must not pass.
  Embeddings out;
  std::string err;
  std::string with_nul = body + std::string(1, '\0') + "{}";
  CHECK_FALSE(MakeCodec(7).DecodeResponse(Ok(with_nul), batch, &out, &err));
  CHECK(err == fmt::format("response is not valid JSON at byte {}", body.size()));
}

TEST_CASE("OpenAiCodec rejects every response that does not match") {
  Batch batch = MakeBatch({"a", "b"});
  struct Case {
    const char* body;
    const char* error;
  } cases[] = {
      {R"({"data":[{"index":0,"embedding":[1]}]})",
       "response has 1 embeddings for 2 inputs"},
      {R"({"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]})",
       "index 0 appears twice"},
      {R"({"data":[{"index":0,"embedding":[1]},{"index":2,"embedding":[2]}]})",
       "index 2 is out of range for 2 inputs"},
      {R"({"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[2,3]}]})",
       "embeddings differ in length (1 and 2)"},
      {R"({"data":[{"index":0,"embedding":[1e99]},{"index":1,"embedding":[2]}]})",
       "embedding value 1e99 is not a finite float32"},
      {R"({"data":[{"index":0,"embedding":[NaN]},{"index":1,"embedding":[2]}]})",
       nullptr},
      {R"({"data":[{"index":0,"embedding":"@@@@"},{"index":1,"embedding":[2]}]})",
       "embedding is not base64 float32 data"},
      {R"({"data":[{"embedding":[1]},{"index":1,"embedding":[2]}]})",
       "a data item lacks index or embedding"},
      {R"({"data":[{"index":0,"embedding":[1,"x"]}]})", "embedding holds a string"},
      {R"({"object":"list"})", "response has no data array"},
      {R"({"data":[{"index":0,"embedding":[1]},)", nullptr},
      {"<html>bad gateway</html>", nullptr},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    Embeddings out;
    std::string err;
    CHECK_FALSE(MakeCodec().DecodeResponse(Ok(c.body), batch, &out, &err));
    CHECK(out.values.empty());
    if (c.error) CHECK(err == c.error);
    else CHECK(err.rfind("response is not valid JSON at byte", 0) == 0);
  }
}

TEST_CASE("OpenAiCodec checks requested dimensions") {
  Batch batch = MakeBatch({"a"});
  Embeddings out;
  std::string err;
  CHECK_FALSE(MakeCodec(3).DecodeResponse(
      Ok(R"({"data":[{"index":0,"embedding":[1,2]}]})"), batch, &out, &err));
  CHECK(err == "embedding has 2 dimensions, expected 3");
}

TEST_CASE("OpenAiCodec reads OpenAI error bodies") {
  HttpResponse r;
  r.status = 429;
  r.body = R"({"error":{"message":"You exceeded your current quota.",)"
           R"("type":"insufficient_quota","param":null,"code":"insufficient_quota"}})";
  ApiError e = MakeCodec().ParseError(r);
  CHECK(e.message == "You exceeded your current quota.");
  CHECK(e.code == "insufficient_quota");
  r.body = "upstream connect error";
  r.status = 503;
  CHECK(MakeCodec().ParseError(r).message == "HTTP 503");
}

TEST_CASE("OpenAiCodec reads OpenAI-compatible servers' error bodies") {
  struct Case {
    long status;
    const char* body;
    const char* message;
    const char* type;
    const char* code;
  } cases[] = {
      // vLLM before 0.10 and Mistral: OpenAI's fields at the root.
      {400,
       R"({"object":"error","message":"This model's maximum context length is 512 )"
       R"(tokens. However, you requested 600 tokens in the input for embedding )"
       R"(generation. Please reduce the length of the input.","type":"BadRequestError",)"
       R"("param":null,"code":400})",
       "This model's maximum context length is 512 tokens. However, you requested 600 "
       "tokens in the input for embedding generation. Please reduce the length of the input.",
       "BadRequestError", "400"},
      {404,
       R"({"object":"error","message":"The model `bge-m3` does not exist.",)"
       R"("type":"NotFoundError","param":null,"code":404})",
       "The model `bge-m3` does not exist.", "NotFoundError", "404"},
      {400,
       R"({"object":"error","message":"Too many inputs in request, split into more )"
       R"(batches.","type":"invalid_request_error","param":null,"code":null})",
       "Too many inputs in request, split into more batches.", "invalid_request_error", ""},
      // vLLM 0.10 and later, LiteLLM, Together: OpenAI's own layout.
      {400,
       R"({"error":{"message":"input is empty","type":"BadRequestError","param":null,)"
       R"("code":400}})",
       "input is empty", "BadRequestError", "400"},
      // Jina and other FastAPI servers.
      {422, R"({"detail":"model not found"})", "model not found", "", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    HttpResponse r;
    r.status = c.status;
    r.body = c.body;
    ApiError e = MakeCodec().ParseError(r);
    CHECK(e.message == c.message);
    CHECK(e.type == c.type);
    CHECK(e.code == c.code);
  }
}

TEST_CASE("OpenAiCodec refuses hostile responses with short messages") {
  Batch batch = MakeBatch({"a"});
  std::string digits = "1" + std::string(100000, '0');
  std::string tiny = "0." + std::string(100000, '0') + "1";
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string too_long = "[0";
  for (size_t i = 0; i < kMaxEmbeddingDims; ++i) too_long += ",0";
  too_long += "]";
  std::string b64_long = Base64Encode(std::string((kMaxEmbeddingDims + 1) * 4, '\0'));
  struct Case {
    std::string body;
    const char* error;
  } cases[] = {
      // RapidJSON refuses a number beyond a double as invalid JSON.
      {R"({"data":[{"index":0,"embedding":[)" + digits + "]}]}",
       "response is not valid JSON at byte 33"},
      {R"({"data":[{"index":0,"embedding":[)" + tiny + "]}]}",
       "embedding value 0.000000000000000000000000000000... (100003 characters) "
       "is not a finite float32"},
      {R"({"data":[{"index":-1,"embedding":[1]}]})", "index -1 is negative"},
      {R"({"data":[{"index":)" + tiny + R"(,"embedding":[1]}]})",
       "index 0.000000000000000000000000000000... (100003 characters) is not an "
       "integer"},
      {R"({"data":)" + deep + "}", "a data item is not a vector"},
      {R"({"data":[{"index":0,"embedding":[[1],2]}]})", "embedding holds a nested value"},
      {R"({"data":[{"index":0,"embedding":[{"a":1}]}]})", "embedding holds a nested value"},
      // Found by the codec fuzz target: an empty base64 string made a
      // memcpy from a null pointer (UBSan).
      {R"({"data":[{"index":0,"embedding":""}]})", "embedding is empty"},
      {R"({"data":[{"index":0,"embedding":)" + too_long + "}]}",
       "embedding has more than 65535 dimensions"},
      {R"({"data":[{"index":0,"embedding":")" + b64_long + "\"}]}",
       "embedding has more than 65535 dimensions"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body.substr(0, 80));
    Embeddings out;
    std::string err;
    CHECK_FALSE(MakeCodec().DecodeResponse(Ok(c.body), batch, &out, &err));
    CHECK(out.values.empty());
    CHECK(err == c.error);
  }
}

TEST_CASE("OpenAiCodec parses an error body nested 100,000 deep") {
  // Found by reasoning about the fuzz target: a recursive DOM parse of such
  // a body overflowed the stack.
  HttpResponse r;
  r.status = 400;
  r.body = R"({"error":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  CHECK(MakeCodec().ParseError(r).message == "HTTP 400");
}

TEST_CASE("OpenAiCodec bounds a response by what it asked for") {
  // Per input: dims values at 8 bytes (base64) or 32 (float) plus 1 KiB;
  // plus 64 KiB a response. Unknown dims: the largest vector accepted.
  CHECK(MakeCodec(8).MaxResponseBytes(2) == 2 * (8 * 8 + 1024) + 65536);
  CHECK(MakeCodec(8, false).MaxResponseBytes(2) == 2 * (8 * 32 + 1024) + 65536);
  CHECK(MakeCodec(0).MaxResponseBytes(1) == 65535 * 8 + 1024 + 65536);
  CHECK(MakeCodec(8).EncodeRequest(MakeBatch({"a", "b"})).max_response_bytes ==
        MakeCodec(8).MaxResponseBytes(2));
}
