#include "providers/codec_json.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/reader.h>

#include "providers/base64.h"

namespace {

// SAX handler that finds the item list a VectorLayout names and copies each
// item's vector into its place in the output, so a response of thousands of
// vectors is never held as a document. Unknown members are skipped.
// A number from the response, for a message: a hostile server's may be
// 100,000 digits long.
std::string Excerpt(const char* s, size_t len) {
  constexpr size_t kMax = 32;
  return len <= kMax ? std::string(s, len)
                     : std::string(s, kMax) +
                           fmt::format("... ({} characters)", len);
}

class VectorHandler
    : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, VectorHandler> {
 public:
  VectorHandler(const VectorLayout& layout, size_t count, size_t expected_dims,
                Embeddings* out)
      : layout_(layout), count_(count), expected_dims_(expected_dims),
        out_(out), seen_(count, false) {}

  bool Default() { return Fail("unexpected value"); }

  bool StartObject() { return Open(false); }
  bool EndObject(rapidjson::SizeType) { return Close(false); }
  bool StartArray() { return Open(true); }
  bool EndArray(rapidjson::SizeType) { return Close(true); }

  bool Key(const char* s, rapidjson::SizeType len, bool) {
    key_.assign(s, len);
    return true;
  }

  bool RawNumber(const char* s, rapidjson::SizeType len, bool) {
    size_t depth = names_.size();
    if (in_vector_) {
      if (depth != vector_depth_) return Fail("embedding holds a nested value");
      if (vector_.size() == kMaxEmbeddingDims)
        return Fail(fmt::format("embedding has more than {} dimensions",
                                kMaxEmbeddingDims));
      float f;
      auto [end, ec] = std::from_chars(s, s + len, f);
      if (ec != std::errc() || end != s + len || !std::isfinite(f))
        return Fail("embedding value " + Excerpt(s, len) +
                    " is not a finite float32");
      vector_.push_back(f);
    } else if (list_depth_ && !layout_.index_key.empty() &&
               depth == list_depth_ + 1 && !is_array_.back() &&
               key_ == layout_.index_key) {
      auto [end, ec] = std::from_chars(s, s + len, item_index_);
      if (ec != std::errc() || end != s + len)
        return Fail("index " + Excerpt(s, len) + " is not an integer");
      if (item_index_ < 0)
        return Fail("index " + Excerpt(s, len) + " is negative");
    } else if (AtTokens()) {
      std::from_chars(s, s + len, out_->prompt_tokens);
    }
    return true;
  }

  bool String(const char* s, rapidjson::SizeType len, bool) {
    if (in_vector_) return Fail("embedding holds a string");
    if (!AtVector()) return true;
    if (len / 4 * 3 > kMaxEmbeddingDims * sizeof(float) + 2)
      return Fail(fmt::format("embedding has more than {} dimensions",
                              kMaxEmbeddingDims));
    if (!Base64Decode(std::string_view(s, len), &bytes_) ||
        bytes_.size() % sizeof(float) != 0)
      return Fail("embedding is not base64 float32 data");
    vector_.resize(bytes_.size() / sizeof(float));
    // The wire format is little-endian, as is every host we build for.
    static_assert(std::endian::native == std::endian::little);
    // An empty string decodes to nothing: no memcpy from a null pointer.
    if (!bytes_.empty())
      std::memcpy(vector_.data(), bytes_.data(), bytes_.size());
    for (float f : vector_)
      if (!std::isfinite(f)) return Fail("embedding holds a non-finite value");
    return GotVector();
  }
  bool Null() { return !in_vector_ || Fail("embedding holds null"); }
  bool Bool(bool) { return !in_vector_ || Fail("embedding holds a boolean"); }

  bool Finish(std::string* err) {
    if (!error_.empty()) {
      *err = error_;
      return false;
    }
    if (!seen_list_) {
      *err = layout_.list_path.empty()
                 ? "response is not an array"
                 : fmt::format("response has no {} array", ListName());
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

  // "a data item", "an embeddings item".
  std::string AnItem() const {
    std::string name = ListName();
    bool vowel = !name.empty() && std::string_view("aeiou").find(name[0]) !=
                                      std::string_view::npos;
    return (vowel ? "an " : "a ") + name + " item";
  }

  std::string ListName() const {
    std::string name;
    for (const std::string& k : layout_.list_path)
      name += (name.empty() ? "" : ".") + k;
    return name;
  }

  // Whether the value about to be read sits where a vector goes: directly
  // in the list, or under vector_key in an item object.
  bool AtVector() const {
    if (!list_depth_) return false;
    size_t depth = names_.size();
    if (layout_.vector_key.empty()) return depth == list_depth_;
    return depth == list_depth_ + 1 && !is_array_.back() &&
           key_ == layout_.vector_key;
  }

  bool AtTokens() const {
    const std::vector<std::string>& path = layout_.tokens_path;
    if (path.empty() || names_.size() != path.size() || is_array_.back() ||
        key_ != path.back())
      return false;
    for (size_t i = 1; i < names_.size(); ++i)
      if (names_[i] != path[i - 1]) return false;
    return true;
  }

  bool Open(bool array) {
    if (in_vector_) return Fail("embedding holds a nested value");
    bool at_vector = array && AtVector();
    names_.push_back(names_.empty() ? std::string()
                     : is_array_.back() ? std::string("*")
                                        : key_);
    is_array_.push_back(array);
    size_t depth = names_.size();
    if (at_vector) {
      in_vector_ = true;
      vector_depth_ = depth;
      vector_.clear();
    } else if (list_depth_ && depth == list_depth_ + 1) {
      if (layout_.vector_key.empty() || array)
        return Fail(fmt::format("{} is not a vector", AnItem()));
      item_index_ = -1;
      item_has_vector_ = false;
    } else if (array && !list_depth_ && !seen_list_ &&
               depth == layout_.list_path.size() + 1) {
      for (size_t i = 1; i < depth; ++i)
        if (is_array_[i - 1] || names_[i] != layout_.list_path[i - 1])
          return true;
      list_depth_ = depth;
      seen_list_ = true;
    }
    return true;
  }

  bool Close(bool array) {
    size_t depth = names_.size();
    if (in_vector_ && depth == vector_depth_) {
      in_vector_ = false;
      if (!GotVector()) return false;
    } else if (!array && list_depth_ && depth == list_depth_ + 1) {
      if (!FinishItem()) return false;
    } else if (array && depth == list_depth_) {
      list_depth_ = 0;
    }
    names_.pop_back();
    is_array_.pop_back();
    return true;
  }

  // A vector was read: an item of its own, or part of an item object.
  bool GotVector() {
    if (layout_.vector_key.empty()) return Place(next_position_++);
    item_has_vector_ = true;
    return true;
  }

  bool FinishItem() {
    if (!layout_.index_key.empty()) {
      if (item_index_ < 0 || !item_has_vector_)
        return Fail(fmt::format("{} lacks {} or {}", AnItem(),
                                layout_.index_key, layout_.vector_key));
      return Place(item_index_);
    }
    if (!item_has_vector_)
      return Fail(fmt::format("{} lacks {}", AnItem(), layout_.vector_key));
    return Place(next_position_++);
  }

  bool Place(int64_t index) {
    if (static_cast<uint64_t>(index) >= count_)
      return Fail(layout_.index_key.empty()
                      ? fmt::format("response has more embeddings than the "
                                    "{} inputs",
                                    count_)
                      : fmt::format("index {} is out of range for {} inputs",
                                    index, count_));
    if (seen_[index]) return Fail(fmt::format("index {} appears twice", index));
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
    seen_[index] = true;
    ++received_;
    std::memcpy(out_->values.data() + index * out_->dims, vector_.data(),
                out_->dims * sizeof(float));
    return true;
  }

  const VectorLayout& layout_;
  size_t count_;
  size_t expected_dims_;
  Embeddings* out_;
  std::vector<bool> seen_;
  size_t received_ = 0;
  // One entry per open container: the key it is under ("*" in an array,
  // "" for the root), and whether it is an array.
  std::vector<std::string> names_;
  std::vector<bool> is_array_;
  std::string key_;
  size_t list_depth_ = 0;  // Depth of the open item list; 0: not in it.
  bool seen_list_ = false;
  size_t next_position_ = 0;
  int64_t item_index_ = -1;
  bool item_has_vector_ = false;
  bool in_vector_ = false;
  size_t vector_depth_ = 0;
  std::vector<float> vector_;
  std::string bytes_;
  std::string error_;
};

std::string StringMember(const rapidjson::Value& obj, const char* name) {
  auto m = obj.FindMember(name);
  if (m == obj.MemberEnd()) return std::string();
  if (m->value.IsString())
    return std::string(m->value.GetString(), m->value.GetStringLength());
  if (m->value.IsInt64()) return std::to_string(m->value.GetInt64());
  return std::string();
}

}  // namespace

bool DecodeVectors(const std::string& body, const VectorLayout& layout,
                   size_t count, size_t expected_dims, Embeddings* out,
                   std::string* err) {
  *out = Embeddings();
  // Parsed as a NUL-terminated string, which RapidJSON scans 16 bytes at a
  // time (RAPIDJSON_SSE2: the Makefile sets it on x86-64), twice as fast as
  // through its bounded stream: a 4.9 MB response of 600 base64 vectors in
  // 5.7 ms instead of 11.6. Those aligned loads read up to 15 bytes past the
  // terminator, which must be memory the string owns.
  size_t nul = body.find('\0');
  if (nul != std::string::npos) {
    *err = fmt::format("response is not valid JSON at byte {}", nul);
    return false;
  }
  std::string padded;
  const std::string* text = &body;
  if (body.capacity() - body.size() < kBodySlack) {
    padded.reserve(body.size() + kBodySlack);
    padded = body;
    text = &padded;
  }
  VectorHandler handler(layout, count, expected_dims, out);
  rapidjson::Reader reader;
  rapidjson::StringStream in(text->c_str());
  rapidjson::ParseResult ok =
      reader.Parse<rapidjson::kParseNumbersAsStringsFlag |
                   rapidjson::kParseIterativeFlag>(in, handler);
  if (!ok) {
    *err = !handler.error().empty()
               ? handler.error()
               : fmt::format("response is not valid JSON at byte {}",
                             ok.Offset());
    *out = Embeddings();
    return false;
  }
  if (!handler.Finish(err)) {
    *out = Embeddings();
    return false;
  }
  return true;
}

ApiError ParseErrorBody(const HttpResponse& response) {
  ApiError e;
  rapidjson::Document doc;
  // Iterative: an error body nested 100,000 deep must not exhaust the stack.
  doc.Parse<rapidjson::kParseIterativeFlag>(response.body.data(),
                                            response.body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    auto it = doc.FindMember("error");
    if (it != doc.MemberEnd() && it->value.IsObject()) {
      const rapidjson::Value& obj = it->value;
      e.message = StringMember(obj, "message");
      e.type = StringMember(obj, "type");
      if (e.type.empty()) e.type = StringMember(obj, "status");  // Google
      e.code = StringMember(obj, "code");
      // Google says why in details[].reason ("API_KEY_INVALID"); its code
      // only repeats the status.
      auto details = obj.FindMember("details");
      if (details != obj.MemberEnd() && details->value.IsArray())
        for (const rapidjson::Value& d : details->value.GetArray())
          if (d.IsObject() && !StringMember(d, "reason").empty())
            e.code = StringMember(d, "reason");
    } else {
      e.message = StringMember(doc, "error");  // TEI, Ollama
      e.type = StringMember(doc, "error_type");
      if (e.message.empty()) {
        // Cohere; and vLLM and Mistral, which give OpenAI's fields at the
        // root: {"object":"error","message","type","param","code"}.
        e.message = StringMember(doc, "message");
        e.type = StringMember(doc, "type");
        e.code = StringMember(doc, "code");
      }
      if (e.message.empty()) e.message = StringMember(doc, "detail");
    }
  }
  if (e.message.empty())
    e.message = response.status ? fmt::format("HTTP {}", response.status)
                                : response.transport_error;
  return e;
}

std::vector<std::string> JsonHeaders(std::string_view auth_prefix,
                                     std::string_view key) {
  std::vector<std::string> headers = {"Content-Type: application/json",
                                      // A 100-continue round trip per
                                      // request buys nothing here.
                                      "Expect:"};
  if (!key.empty()) headers.push_back(std::string(auth_prefix) + std::string(key));
  return headers;
}

std::string JoinUrl(std::string_view base, std::string_view path) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  std::string url(base);
  url += path;
  return url;
}

void WriteTexts(const Batch& batch, JsonWriter* w) {
  w->StartArray();
  for (const Record& r : batch.records)
    w->String(r.text.data(), static_cast<rapidjson::SizeType>(r.text.size()));
  w->EndArray();
}

void ReserveBody(const Batch& batch, rapidjson::StringBuffer* buffer) {
  buffer->Reserve(batch.bytes + batch.records.size() * 4 + 256);
}

JsonCodec::JsonCodec(CodecConfig config, std::string url,
                     std::string_view auth_prefix, const VectorLayout& layout)
    : config_(std::move(config)),
      url_(std::move(url)),
      headers_(JsonHeaders(auth_prefix, config_.api_key)),
      layout_(layout) {}

size_t JsonCodec::MaxResponseBytes(size_t inputs) const {
  // The most bytes one value of a vector takes in a response: a float as
  // JSON text ("-0.0123456789,") or 4 bytes as base64 (5.3 characters).
  // Generous: servers print the shortest text that reads back, 15
  // characters at most.
  constexpr size_t kFloatTextBytes = 32;
  constexpr size_t kBase64ValueBytes = 8;
  // Per item (index, object names, quotes, braces) and per response (usage,
  // model, ids).
  constexpr size_t kItemBytes = 1024;
  constexpr size_t kResponseBytes = 64 * 1024;
  size_t dims = config_.dimensions > 0 ? static_cast<size_t>(config_.dimensions)
                                       : kMaxEmbeddingDims;
  size_t per_value = config_.base64 ? kBase64ValueBytes : kFloatTextBytes;
  return inputs * (dims * per_value + kItemBytes) + kResponseBytes;
}

HttpRequest JsonCodec::Post(const Batch& batch,
                            const rapidjson::StringBuffer& body) const {
  HttpRequest request{url_, headers_,
                      std::string(body.GetString(), body.GetSize())};
  request.max_response_bytes = MaxResponseBytes(batch.records.size());
  return request;
}

bool JsonCodec::DecodeResponse(const HttpResponse& response, const Batch& batch,
                               Embeddings* out, std::string* err) const {
  return DecodeVectors(response.body, layout_, batch.records.size(),
                       config_.dimensions, out, err);
}

ApiError JsonCodec::ParseError(const HttpResponse& response) const {
  return ParseErrorBody(response);
}
