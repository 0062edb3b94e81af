// Fuzz target: every response codec's decoders, each made by NewCodec as
// the binary makes it. The first byte picks the provider (AllProviders(),
// in order), the next two the batch (inputs; base64 and requested
// dimensions where the provider takes them); the rest is the response body,
// decoded as a success and parsed as an error. A decoded response must fill
// exactly inputs x dims finite values; a refused one must say why and leave
// nothing behind.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "providers/codec.h"
#include "app/options.h"
#include "providers/provider.h"

namespace {

std::unique_ptr<Codec> MakeCodec(const ProviderInfo& p, int dims, bool base64) {
  Options o;
  o.provider = p.name;
  o.base_url = "http://127.0.0.1:1";
  o.model = "m";
  o.dimensions = dims;
  o.encoding = base64 ? "base64" : "float";
  ProviderFlagsGiven given;
  given.base_url = given.model = given.encoding = true;
  std::string err;
  if (!ApplyProvider(given, [](const char*) -> const char* { return nullptr; },
                     &o, &err))
    std::abort();
  return NewCodec(o, o.base_url, "k");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  std::span<const ProviderInfo> providers = AllProviders();
  const ProviderInfo& provider = providers[data[0] % providers.size()];
  size_t inputs = 1 + data[1] % 8;
  bool base64 = provider.base64 && (data[1] & 0x80);
  // 0: the model's native size.
  int dims = provider.dimensions ? data[2] % 5 : 0;
  std::unique_ptr<Codec> codec = MakeCodec(provider, dims, base64);

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
