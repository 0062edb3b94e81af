#include "providers/gemini_codec.h"

#include <string_view>

#include "providers/codec_json.h"

namespace {

// The model as the API names it in a request: "models/<name>".
std::string ModelPath(std::string_view model) {
  if (model.rfind("models/", 0) == 0) model.remove_prefix(7);
  return "models/" + std::string(model);
}

// The config with its model as the request names it.
CodecConfig WithModelPath(CodecConfig config) {
  config.model = ModelPath(config.model);
  return config;
}

const VectorLayout kLayout{{"embeddings"}, "values", "", {}};

}  // namespace

GeminiCodec::GeminiCodec(CodecConfig config)
    : JsonCodec(WithModelPath(config),
                JoinUrl(config.base_url,
                        "/" + ModelPath(config.model) + ":batchEmbedContents"),
                "x-goog-api-key: ", kLayout) {}

HttpRequest GeminiCodec::EncodeRequest(const Batch& batch) const {
  rapidjson::StringBuffer buffer;
  buffer.Reserve(batch.bytes + batch.records.size() *
                                   (config_.model.size() + 96) + 64);
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("requests");
  w.StartArray();
  for (const Record& r : batch.records) {
    w.StartObject();
    w.Key("model");
    w.String(config_.model.c_str());
    w.Key("content");
    w.StartObject();
    w.Key("parts");
    w.StartArray();
    w.StartObject();
    w.Key("text");
    w.String(r.text.data(), static_cast<rapidjson::SizeType>(r.text.size()));
    w.EndObject();
    w.EndArray();
    w.EndObject();
    if (!config_.input_type.empty()) {
      w.Key("taskType");
      w.String(config_.input_type.c_str());
    }
    if (config_.dimensions > 0) {
      w.Key("outputDimensionality");
      w.Int(config_.dimensions);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Post(batch, buffer);
}

