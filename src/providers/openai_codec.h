// Codec for the OpenAI embeddings API (POST {base}/embeddings) and servers
// that speak it: Azure OpenAI, vLLM, LiteLLM, Mistral, Jina, Together...
// Each vector is placed by its `index`, because the API does not promise
// `data` in request order.
#pragma once

#include <string>

#include "providers/codec_json.h"

/// Where a server that speaks this body differs from OpenAI: Azure OpenAI
/// has another URL and key header, and takes the model from the URL (its
/// deployment).
struct OpenAiEndpoint {
  std::string url;        ///< Empty: base_url + "/embeddings".
  std::string key_header = "Authorization: Bearer ";  ///< Prefix of the key.
  bool send_model = true; ///< Put "model" in the body.
};

class OpenAiCodec : public JsonCodec {
 public:
  /// Reads base_url, model, dimensions, base64 and api_key of `config`.
  explicit OpenAiCodec(const CodecConfig& config, OpenAiEndpoint endpoint = {});

  HttpRequest EncodeRequest(const Batch& batch) const override;

 private:
  const bool send_model_;
};
