#include "providers/openai_codec.h"

namespace {

const VectorLayout kLayout{
    {"data"}, "embedding", "index", {"usage", "prompt_tokens"}};

std::string Url(const CodecConfig& config, const OpenAiEndpoint& endpoint) {
  return endpoint.url.empty() ? JoinUrl(config.base_url, "/embeddings")
                              : endpoint.url;
}

}  // namespace

OpenAiCodec::OpenAiCodec(const CodecConfig& config, OpenAiEndpoint endpoint)
    : JsonCodec(config, Url(config, endpoint), endpoint.key_header, kLayout),
      send_model_(endpoint.send_model) {}

HttpRequest OpenAiCodec::EncodeRequest(const Batch& batch) const {
  rapidjson::StringBuffer buffer;
  ReserveBody(batch, &buffer);
  JsonWriter w(buffer);
  w.StartObject();
  if (send_model_) {
    w.Key("model");
    w.String(config_.model.data(), config_.model.size());
  }
  w.Key("input");
  WriteTexts(batch, &w);
  w.Key("encoding_format");
  w.String(config_.base64 ? "base64" : "float");
  if (config_.dimensions > 0) {
    w.Key("dimensions");
    w.Int(config_.dimensions);
  }
  w.EndObject();
  return Post(batch, buffer);
}
