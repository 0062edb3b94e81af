#include "providers/ollama_codec.h"

#include "providers/codec_json.h"

namespace {

const VectorLayout kLayout{{"embeddings"}, "", "", {"prompt_eval_count"}};

}  // namespace

OllamaCodec::OllamaCodec(CodecConfig config)
    : JsonCodec(config, JoinUrl(config.base_url, "/api/embed"),
                "Authorization: Bearer ", kLayout) {}

HttpRequest OllamaCodec::EncodeRequest(const Batch& batch) const {
  rapidjson::StringBuffer buffer;
  ReserveBody(batch, &buffer);
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("model");
  w.String(config_.model.c_str());
  w.Key("input");
  WriteTexts(batch, &w);
  // Ollama truncates to the context length by default; say so either way.
  w.Key("truncate");
  w.Bool(config_.truncate);
  if (config_.dimensions > 0) {
    w.Key("dimensions");
    w.Int(config_.dimensions);
  }
  w.EndObject();
  return Post(batch, buffer);
}

