#include "providers/tei_codec.h"

#include "providers/codec_json.h"

namespace {

const VectorLayout kLayout{{}, "", "", {}};

}  // namespace

TeiCodec::TeiCodec(CodecConfig config)
    : JsonCodec(config, JoinUrl(config.base_url, "/embed"),
                "Authorization: Bearer ", kLayout) {}

HttpRequest TeiCodec::EncodeRequest(const Batch& batch) const {
  rapidjson::StringBuffer buffer;
  ReserveBody(batch, &buffer);
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("inputs");
  WriteTexts(batch, &w);
  w.Key("truncate");
  w.Bool(config_.truncate);
  // Unit length, as every other provider returns; TEI's default too, but
  // a server's default is not the run's to rely on.
  w.Key("normalize");
  w.Bool(true);
  w.EndObject();
  return Post(batch, buffer);
}

