#include "openai_codec.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "base64.h"

namespace {

// SAX handler for {"data":[{"index":i,"embedding":[...]|"b64"},...],
// "usage":{"prompt_tokens":n},...}. Unknown members are skipped by depth.
class ResponseHandler
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, ResponseHandler> {
 public:
  ResponseHandler(size_t count, size_t expected_dims, Embeddings* out)
      : count_(count), expected_dims_(expected_dims), out_(out),
        seen_(count, false) {}

  bool Default() { return Fail("unexpected value"); }

  bool StartObject() {
    ++depth_;
    if (depth_ == 3 && in_data_) {
      item_index_ = -1;
      item_has_vector_ = false;
    }
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    if (depth_ == 3 && in_data_ && !FinishItem()) return false;
    --depth_;
    return true;
  }
  bool StartArray() {
    ++depth_;
    if (depth_ == 2 && key_ == "data") {
      in_data_ = true;
      seen_data_ = true;
    } else if (depth_ == 4 && in_data_ && key_ == "embedding") {
      in_vector_ = true;
      vector_.clear();
    }
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    if (depth_ == 4 && in_vector_) {
      in_vector_ = false;
      item_has_vector_ = true;
    } else if (depth_ == 2 && in_data_) {
      in_data_ = false;
    }
    --depth_;
    return true;
  }
  bool Key(const char* s, rapidjson::SizeType len, bool) {
    key_.assign(s, len);
    if (depth_ == 1) in_usage_ = key_ == "usage";
    return true;
  }
  bool RawNumber(const char* s, rapidjson::SizeType len, bool) {
    if (in_vector_) {
      float f;
      auto [end, ec] = std::from_chars(s, s + len, f);
      if (ec != std::errc() || end != s + len || !std::isfinite(f))
        return Fail("embedding value " + std::string(s, len) +
                    " is not a finite float32");
      vector_.push_back(f);
    } else if (depth_ == 3 && in_data_ && key_ == "index") {
      auto [end, ec] = std::from_chars(s, s + len, item_index_);
      if (ec != std::errc() || end != s + len)
        return Fail("index " + std::string(s, len) + " is not an integer");
    } else if (depth_ == 2 && in_usage_ && key_ == "prompt_tokens") {
      std::from_chars(s, s + len, out_->prompt_tokens);
    }
    return true;
  }
  bool String(const char* s, rapidjson::SizeType len, bool) {
    if (in_vector_) return Fail("embedding holds a string");
    if (depth_ == 3 && in_data_ && key_ == "embedding") {
      if (!Base64Decode(std::string_view(s, len), &bytes_) ||
          bytes_.size() % sizeof(float) != 0)
        return Fail("embedding is not base64 float32 data");
      vector_.resize(bytes_.size() / sizeof(float));
      // The wire format is little-endian, as is every host we build for.
      static_assert(std::endian::native == std::endian::little);
      std::memcpy(vector_.data(), bytes_.data(), bytes_.size());
      for (float f : vector_)
        if (!std::isfinite(f)) return Fail("embedding holds a non-finite value");
      item_has_vector_ = true;
    }
    return true;
  }
  bool Null() { return !in_vector_ || Fail("embedding holds null"); }
  bool Bool(bool) { return !in_vector_ || Fail("embedding holds a boolean"); }

  bool Finish(std::string* err) {
    if (!error_.empty()) {
      *err = error_;
      return false;
    }
    if (!seen_data_) {
      *err = "response has no data array";
      return false;
    }
    if (received_ != count_) {
      *err = fmt::format("response has {} embeddings for {} inputs", received_,
                         count_);
      return false;
    }
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }

  bool FinishItem() {
    if (item_index_ < 0 || !item_has_vector_)
      return Fail("a data item lacks index or embedding");
    if (static_cast<size_t>(item_index_) >= count_)
      return Fail(fmt::format("index {} is out of range for {} inputs",
                              item_index_, count_));
    if (seen_[item_index_])
      return Fail(fmt::format("index {} appears twice", item_index_));
    if (out_->dims == 0) {
      if (vector_.empty()) return Fail("embedding is empty");
      if (expected_dims_ != 0 && vector_.size() != expected_dims_)
        return Fail(fmt::format("embedding has {} dimensions, expected {}",
                                vector_.size(), expected_dims_));
      out_->dims = vector_.size();
      out_->values.assign(count_ * out_->dims, 0.0f);
    } else if (vector_.size() != out_->dims) {
      return Fail(fmt::format("embeddings differ in length ({} and {})",
                              out_->dims, vector_.size()));
    }
    seen_[item_index_] = true;
    ++received_;
    std::memcpy(out_->values.data() + item_index_ * out_->dims, vector_.data(),
                out_->dims * sizeof(float));
    return true;
  }

  size_t count_;
  size_t expected_dims_;
  Embeddings* out_;
  std::vector<bool> seen_;
  size_t received_ = 0;
  int depth_ = 0;
  std::string key_;
  bool in_data_ = false;
  bool seen_data_ = false;
  bool in_vector_ = false;
  bool in_usage_ = false;
  int64_t item_index_ = -1;
  bool item_has_vector_ = false;
  std::vector<float> vector_;
  std::string bytes_;
  std::string error_;
};

std::string JoinUrl(const std::string& base, const char* path) {
  std::string url = base;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url + path;
}

}  // namespace

OpenAiCodec::OpenAiCodec(OpenAiConfig config)
    : config_(std::move(config)), url_(JoinUrl(config_.base_url, "/embeddings")) {
  headers_.push_back("Content-Type: application/json");
  // A 100-continue round trip per request buys nothing against this API.
  headers_.push_back("Expect:");
  if (!config_.api_key.empty())
    headers_.push_back("Authorization: Bearer " + config_.api_key);
}

HttpRequest OpenAiCodec::EncodeRequest(const Batch& batch) const {
  rapidjson::StringBuffer buffer;
  buffer.Reserve(batch.bytes + batch.records.size() * 4 + 128);
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("model");
  w.String(config_.model.data(), config_.model.size());
  w.Key("input");
  w.StartArray();
  for (const Record& r : batch.records) w.String(r.text.data(), r.text.size());
  w.EndArray();
  w.Key("encoding_format");
  w.String(config_.base64 ? "base64" : "float");
  if (config_.dimensions > 0) {
    w.Key("dimensions");
    w.Int(config_.dimensions);
  }
  w.EndObject();

  HttpRequest request;
  request.url = url_;
  request.headers = headers_;
  request.body.assign(buffer.GetString(), buffer.GetSize());
  return request;
}

bool OpenAiCodec::DecodeResponse(const HttpResponse& response,
                                 const Batch& batch, Embeddings* out,
                                 std::string* err) const {
  *out = Embeddings();
  ResponseHandler handler(batch.records.size(), config_.dimensions, out);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(response.body.data(), response.body.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(ms);
  rapidjson::ParseResult ok =
      reader.Parse<rapidjson::kParseNumbersAsStringsFlag |
                   rapidjson::kParseIterativeFlag>(in, handler);
  if (!ok) {
    if (!handler.error().empty()) {
      *err = handler.error();
    } else {
      *err = fmt::format("response is not valid JSON at byte {}",
                         ok.Offset());
    }
    *out = Embeddings();
    return false;
  }
  if (!handler.Finish(err)) {
    *out = Embeddings();
    return false;
  }
  return true;
}

ApiError OpenAiCodec::ParseError(const HttpResponse& response) const {
  ApiError e;
  rapidjson::Document doc;
  doc.Parse(response.body.data(), response.body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    auto it = doc.FindMember("error");
    if (it != doc.MemberEnd() && it->value.IsObject()) {
      const auto& obj = it->value;
      auto get = [&obj](const char* name) -> std::string {
        auto m = obj.FindMember(name);
        return m != obj.MemberEnd() && m->value.IsString()
                   ? std::string(m->value.GetString(),
                                 m->value.GetStringLength())
                   : std::string();
      };
      e.message = get("message");
      e.type = get("type");
      e.code = get("code");
    }
  }
  if (e.message.empty())
    e.message = response.status ? fmt::format("HTTP {}", response.status)
                                : response.transport_error;
  return e;
}
