// Codec for the OpenAI embeddings API (POST {base}/embeddings) and servers
// that speak it: Azure OpenAI, vLLM, LiteLLM, Mistral, Jina, Together...
// Each vector is placed by its `index`, because the API does not promise
// `data` in request order.
#pragma once

#include <string>

#include "codec.h"

struct OpenAiConfig {
  std::string base_url;   ///< e.g. https://api.openai.com/v1
  std::string model;
  int dimensions = 0;     ///< 0: omit, the model's native size.
  bool base64 = true;     ///< encoding_format base64 (else float).
  std::string api_key;    ///< Empty: no Authorization header.
};

/// Where a server that speaks this body differs from OpenAI: Azure OpenAI
/// has another URL and key header, and takes the model from the URL (its
/// deployment).
struct OpenAiEndpoint {
  std::string url;        ///< Empty: base_url + "/embeddings".
  std::string key_header = "Authorization: Bearer ";  ///< Prefix of the key.
  bool send_model = true; ///< Put "model" in the body.
};

class OpenAiCodec : public Codec {
 public:
  explicit OpenAiCodec(OpenAiConfig config, OpenAiEndpoint endpoint = {});

  HttpRequest EncodeRequest(const Batch& batch) const override;
  bool DecodeResponse(const HttpResponse& response, const Batch& batch,
                      Embeddings* out, std::string* err) const override;
  ApiError ParseError(const HttpResponse& response) const override;

  /// The largest body a right answer to `inputs` inputs can have: each
  /// vector at the requested dimensions (or kMaxEmbeddingDims when the
  /// model's own size is asked for) at the most bytes a value takes in the
  /// wire encoding. A larger response cannot be decoded, so the transport
  /// stops reading it there rather than at its own, much larger, limit.
  size_t MaxResponseBytes(size_t inputs) const;

 private:
  OpenAiConfig config_;
  OpenAiEndpoint endpoint_;
  std::vector<std::string> headers_;
};
