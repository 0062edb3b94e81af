// Codec for the OpenAI embeddings API (POST {base}/embeddings) and servers
// that speak it. Responses are decoded in one SAX pass straight into the
// output array, each vector placed by its `index`, because the API does not
// promise `data` in request order.
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

class OpenAiCodec : public Codec {
 public:
  explicit OpenAiCodec(OpenAiConfig config);

  HttpRequest EncodeRequest(const Batch& batch) const override;
  bool DecodeResponse(const HttpResponse& response, const Batch& batch,
                      Embeddings* out, std::string* err) const override;
  ApiError ParseError(const HttpResponse& response) const override;

 private:
  OpenAiConfig config_;
  std::string url_;
  std::vector<std::string> headers_;
};
