#include "providers/voyage_codec.h"

#include "providers/codec_json.h"

namespace {

const VectorLayout kLayout{
    {"data"}, "embedding", "index", {"usage", "total_tokens"}};

}  // namespace

VoyageCodec::VoyageCodec(CodecConfig config)
    : JsonCodec(config, JoinUrl(config.base_url, "/embeddings"),
                "Authorization: Bearer ", kLayout) {}

HttpRequest VoyageCodec::EncodeRequest(const Batch& batch) const {
  rapidjson::StringBuffer buffer;
  ReserveBody(batch, &buffer);
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("input");
  WriteTexts(batch, &w);
  w.Key("model");
  w.String(config_.model.c_str());
  if (!config_.input_type.empty()) {
    w.Key("input_type");
    w.String(config_.input_type.c_str());
  }
  // Voyage truncates by default; say so either way.
  w.Key("truncation");
  w.Bool(config_.truncate);
  if (config_.dimensions > 0) {
    w.Key("output_dimension");
    w.Int(config_.dimensions);
  }
  if (config_.base64) {
    w.Key("encoding_format");
    w.String("base64");
  }
  w.EndObject();
  return Post(batch, buffer);
}

