// Codec for Cohere's v2 embed API (POST {base}/v2/embed, bearer key): texts
// with input_type and truncate in, float vectors out under embeddings.float
// in input order; errors are {"message":...}.
#pragma once

#include "providers/codec_json.h"

class CohereCodec : public JsonCodec {
 public:
  explicit CohereCodec(CodecConfig config);

  HttpRequest EncodeRequest(const Batch& batch) const override;
};
