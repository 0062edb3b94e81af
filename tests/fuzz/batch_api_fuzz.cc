// Fuzz target: the Batch API's readers of what the server sends. The first
// byte picks the reply: a File object, a Batch object, or an output or
// error file read line by line as BatchApiRunner::Collect reads it; the
// rest is its text. Each reader takes it or says why. A result line's body
// comes back as JSON text that the OpenAI codec then decodes for a request
// of two inputs, or refuses with a reason.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "providers/batch_api.h"
#include "providers/codec.h"
#include "providers/openai_codec.h"

namespace {

const OpenAiCodec& Codec() {
  static const OpenAiCodec* codec = [] {
    CodecConfig config;
    config.base_url = "http://127.0.0.1:1/v1";
    config.model = "m";
    return new OpenAiCodec(config);
  }();
  return *codec;
}

void ReadResultLine(std::string_view text) {
  ResultLine line;
  std::string err;
  if (!ParseResultLine(text, &line, &err)) {
    if (err.empty()) std::abort();
    return;
  }
  if (line.custom_id.empty()) std::abort();
  if (line.body.empty()) return;
  if (line.body.front() != '{' || line.body.back() != '}') std::abort();
  Batch batch;
  batch.records.resize(2);
  HttpResponse response;
  response.status = 200;
  response.body = line.body;
  Embeddings out;
  if (Codec().DecodeResponse(response, batch, &out, &err)) {
    if (out.dims == 0 || out.values.size() != 2 * out.dims) std::abort();
  } else if (err.empty()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string err;
  switch (data[0] % 3) {
    case 0: {
      std::string id;
      if (ParseFileObject(text, &id, &err) ? id.empty() : err.empty())
        std::abort();
      break;
    }
    case 1: {
      BatchJobStatus status;
      if (ParseBatchObject(text, &status, &err)
              ? status.id.empty() || status.status.empty()
              : err.empty())
        std::abort();
      break;
    }
    case 2:
      while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.empty()) ReadResultLine(line);
      }
      break;
  }
  return 0;
}
