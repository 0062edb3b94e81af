// Codec for the Gemini API's batchEmbedContents (POST
// {base}/models/{model}:batchEmbedContents, key in x-goog-api-key): one
// request per text with taskType and outputDimensionality, vectors as
// embeddings[].values in input order; errors are Google's
// {"error":{"code","message","status","details"}}.
#pragma once

#include "providers/codec_json.h"

class GeminiCodec : public JsonCodec {
 public:
  explicit GeminiCodec(CodecConfig config);

  HttpRequest EncodeRequest(const Batch& batch) const override;
};
