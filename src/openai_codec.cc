#include "openai_codec.h"

#include <utility>

#include "codec_json.h"

namespace {

const VectorLayout& Layout() {
  static const VectorLayout layout{
      {"data"}, "embedding", "index", {"usage", "prompt_tokens"}};
  return layout;
}

// The most bytes one value of a vector takes in a response: a float as JSON
// text ("-0.0123456789,") or 4 bytes as base64 (5.3 characters). Generous:
// servers print the shortest text that reads back, 15 characters at most.
constexpr size_t kFloatTextBytes = 32;
constexpr size_t kBase64ValueBytes = 8;
// Per item ("object", "index", quotes, braces) and per response (usage,
// model, headers libcurl does not count here).
constexpr size_t kItemBytes = 1024;
constexpr size_t kResponseBytes = 64 * 1024;

}  // namespace

OpenAiCodec::OpenAiCodec(OpenAiConfig config, OpenAiEndpoint endpoint)
    : config_(std::move(config)), endpoint_(std::move(endpoint)) {
  if (endpoint_.url.empty())
    endpoint_.url = JoinUrl(config_.base_url, "/embeddings");
  headers_ = JsonHeaders(endpoint_.key_header, config_.api_key);
}

size_t OpenAiCodec::MaxResponseBytes(size_t inputs) const {
  size_t dims = config_.dimensions > 0 ? static_cast<size_t>(config_.dimensions)
                                       : kMaxEmbeddingDims;
  size_t per_value = config_.base64 ? kBase64ValueBytes : kFloatTextBytes;
  return inputs * (dims * per_value + kItemBytes) + kResponseBytes;
}

HttpRequest OpenAiCodec::EncodeRequest(const Batch& batch) const {
  rapidjson::StringBuffer buffer;
  ReserveBody(batch, &buffer);
  JsonWriter w(buffer);
  w.StartObject();
  if (endpoint_.send_model) {
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

  HttpRequest request;
  request.url = endpoint_.url;
  request.headers = headers_;
  request.body.assign(buffer.GetString(), buffer.GetSize());
  request.max_response_bytes = MaxResponseBytes(batch.records.size());
  return request;
}

bool OpenAiCodec::DecodeResponse(const HttpResponse& response,
                                 const Batch& batch, Embeddings* out,
                                 std::string* err) const {
  return DecodeVectors(response.body, Layout(), batch.records.size(),
                       config_.dimensions, out, err);
}

ApiError OpenAiCodec::ParseError(const HttpResponse& response) const {
  return ParseErrorBody(response);
}
