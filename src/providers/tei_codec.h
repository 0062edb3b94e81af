// Codec for Hugging Face text-embeddings-inference (POST {base}/embed; a
// bearer key only if the server was started with one): inputs[] with
// truncate in, a bare [[...],...] out in input order; errors are
// {"error":...,"error_type":...}. The server runs one model, so the
// request names none.
#pragma once

#include "providers/codec_json.h"

class TeiCodec : public JsonCodec {
 public:
  explicit TeiCodec(CodecConfig config);

  HttpRequest EncodeRequest(const Batch& batch) const override;
};
