// Codec for Ollama's embed API (POST {base}/api/embed, no key): model,
// input[], truncate and dimensions in; embeddings[][] out in input order;
// errors are {"error":"..."}.
#pragma once

#include "providers/codec_json.h"

class OllamaCodec : public JsonCodec {
 public:
  explicit OllamaCodec(CodecConfig config);

  HttpRequest EncodeRequest(const Batch& batch) const override;
};
