// Codec for Voyage AI's embeddings API (POST {base}/embeddings, bearer key):
// OpenAI's response shape (data[].index, base64 float32 on request), with
// input_type, truncation and output_dimension in the request; errors are
// {"detail":...}.
#pragma once

#include "providers/codec_json.h"

class VoyageCodec : public JsonCodec {
 public:
  explicit VoyageCodec(CodecConfig config);

  HttpRequest EncodeRequest(const Batch& batch) const override;
};
