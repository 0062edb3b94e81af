// Fuzz target: every response codec's decoders. The first bytes choose the
// batch (inputs, requested dimensions, wire encoding); the rest is the
// response body, decoded as a success and parsed as an error. A decoded
// response must fill exactly inputs x dims finite values; a refused one
// must say why and leave nothing behind.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "codec.h"
#include "openai_codec.h"

namespace {

// Every response codec, chosen by `which`; a new provider's codec is added
// here.
std::unique_ptr<Codec> MakeCodec(uint8_t which, int dims, bool base64) {
  (void)which;  // One codec so far: OpenAI's.
  OpenAiConfig config;
  config.base_url = "http://127.0.0.1:1/v1";
  config.model = "m";
  config.dimensions = dims;
  config.base64 = base64;
  return std::make_unique<OpenAiCodec>(config);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  uint8_t which = data[0];
  size_t inputs = 1 + data[1] % 8;
  int dims = data[2] % 5;  // 0: the model's native size.
  bool base64 = data[1] & 0x80;
  std::unique_ptr<Codec> codec = MakeCodec(which, dims, base64);

  Batch batch;
  for (size_t i = 0; i < inputs; ++i) {
    Record r;
    r.seq = i;
    r.text = "t";
    batch.records.push_back(r);
  }
  HttpResponse response;
  response.status = 200;
  response.body.assign(reinterpret_cast<const char*>(data) + 3, size - 3);

  Embeddings out;
  std::string err;
  if (codec->DecodeResponse(response, batch, &out, &err)) {
    if (out.dims == 0 || (dims != 0 && out.dims != static_cast<size_t>(dims)))
      std::abort();
    if (out.values.size() != inputs * out.dims) std::abort();
    for (float f : out.values)
      if (!std::isfinite(f)) std::abort();
  } else {
    if (err.empty() || !out.values.empty() || out.dims != 0) std::abort();
  }
  response.status = 400;
  ApiError e = codec->ParseError(response);
  if (e.message.empty()) std::abort();
  return 0;
}
