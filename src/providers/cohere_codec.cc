#include "providers/cohere_codec.h"

#include "providers/codec_json.h"

namespace {

const VectorLayout kLayout{
    {"embeddings", "float"}, "", "", {"meta", "billed_units", "input_tokens"}};

}  // namespace

CohereCodec::CohereCodec(CodecConfig config)
    : JsonCodec(config, JoinUrl(config.base_url, "/v2/embed"),
                "Authorization: Bearer ", kLayout) {}

HttpRequest CohereCodec::EncodeRequest(const Batch& batch) const {
  rapidjson::StringBuffer buffer;
  ReserveBody(batch, &buffer);
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("model");
  w.String(config_.model.c_str());
  w.Key("texts");
  WriteTexts(batch, &w);
  w.Key("input_type");
  w.String(config_.input_type.c_str());
  w.Key("embedding_types");
  w.StartArray();
  w.String("float");
  w.EndArray();
  // Cohere's default is END: a silent cut unless the run asked for one.
  w.Key("truncate");
  w.String(config_.truncate ? "END" : "NONE");
  if (config_.dimensions > 0) {
    w.Key("output_dimension");
    w.Int(config_.dimensions);
  }
  w.EndObject();
  return Post(batch, buffer);
}

