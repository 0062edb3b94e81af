// The other providers' dialects of build/fake_provider (--dialect NAME):
// for each, where its endpoint is, how it authenticates, how it reads a
// request, its caps, its error bodies and its success body, written from the
// providers' API references. fake_provider.cc runs one request through a
// dialect (faults, rate limits, latency and the log stay its own); vectors
// are fake_vectors.h's, so build/verify_embeddings checks every dialect.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "fake_base64.h"
#include "http_server.h"

namespace fake_dialects {

/// A model a dialect serves: its native vector length, its context (tokens
/// per input), for Voyage its per-request token total, and the special
/// tokens it puts around every input, which its context counts.
struct Model {
  const char* name;
  uint32_t dims;
  uint32_t context;
  uint64_t request_tokens = 0;  ///< 0: no total.
  uint32_t added_tokens = 0;
};

/// A BERT-style model's [CLS] and [SEP].
constexpr uint32_t kBertAdded = 2;

/// What the server enforces per request.
struct Caps {
  size_t max_inputs = std::numeric_limits<size_t>::max();
  uint32_t max_input_tokens = 0;
  uint64_t max_request_tokens = 0;  ///< 0: none.
};

/// A request as its dialect reads it.
struct Request {
  std::string model;                  ///< As vectors are computed for it.
  std::vector<std::string> texts;
  bool truncate = false;              ///< The server may cut long inputs.
  std::optional<int64_t> dimensions;  ///< As requested, for the log.
  uint32_t dims = 0;                  ///< Output length.
  std::string input_type;             ///< As requested, for the log.
  bool base64 = false;
  Caps caps;
  uint32_t added_tokens = 0;          ///< Counted on top of each text's own.
};

struct Error {
  int status = 400;
  std::string body;
};

inline std::string Quote(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

inline std::string Member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return {};
  auto m = obj.FindMember(name);
  return m != obj.MemberEnd() && m->value.IsString()
             ? std::string(m->value.GetString(), m->value.GetStringLength())
             : std::string();
}

/// Reads a string or an array of strings into *texts; false if neither, or
/// any text is empty.
inline bool ReadTexts(const rapidjson::Value& v, std::vector<std::string>* texts) {
  if (v.IsString()) {
    texts->emplace_back(v.GetString(), v.GetStringLength());
    return v.GetStringLength() > 0;
  }
  if (!v.IsArray() || v.Empty()) return false;
  for (const auto& t : v.GetArray()) {
    if (!t.IsString() || t.GetStringLength() == 0) return false;
    texts->emplace_back(t.GetString(), t.GetStringLength());
  }
  return true;
}

/// Appends one vector as a JSON array of shortest float32 texts, or as a
/// base64 string of little-endian float32s.
inline void AppendVector(const std::vector<float>& v, bool base64, std::string* out) {
  if (base64) {
    out->push_back('"');
    fake_base64::Encode(v.data(), v.size() * sizeof(float), out);
    out->push_back('"');
    return;
  }
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out->push_back(',');
    fmt::format_to(std::back_inserter(*out), "{}", v[i]);
  }
  out->push_back(']');
}

class Dialect {
 public:
  virtual ~Dialect() = default;
  /// Whether this is the dialect's embeddings endpoint; fills *path_model
  /// when the URL names the model.
  virtual bool Match(const http::Request& req, std::string* path_model) const = 0;
  /// The refusal of a request without the right key, or nullopt.
  virtual std::optional<Error> CheckAuth(const http::Request& req,
                                         const std::string& require_key) const = 0;
  /// Reads and checks the body (everything but the token caps) into *r.
  virtual std::optional<Error> Parse(const std::string& body, const std::string& path_model,
                                     Request* r) const = 0;
  /// An error in the dialect's shape; `kind` is what the fault or check is
  /// ("rate", "server", "unavailable", "not_found", "invalid").
  virtual Error MakeError(int status, std::string_view kind, std::string_view message) const = 0;
  virtual Error TooManyInputs(const Request& r) const = 0;
  virtual Error InputTooLong(const Request& r, size_t index, uint32_t tokens) const = 0;
  virtual Error RequestTooLarge(const Request& r, uint64_t tokens) const = 0;
  /// Appends the success body for vectors[i] of r.texts[i].
  virtual void Success(const Request& r, const std::vector<std::vector<float>>& vectors,
                       uint64_t tokens, std::string* body) const = 0;

 protected:
  static const Model* FindModel(const std::vector<Model>& models, std::string_view name) {
    for (const Model& m : models)
      if (name == m.name) return &m;
    return nullptr;
  }

  static bool Bearer(const http::Request& req, const std::string& require_key) {
    const std::string* auth = req.Header("authorization");
    if (!auth || auth->size() <= 7 || !http::EqualsIgnoreCase(auth->substr(0, 7), "bearer "))
      return false;
    return require_key.empty() || http::Trim(std::string_view(*auth).substr(7)) == require_key;
  }
};

// OpenAI's body and response, as Azure OpenAI serves them per deployment.
class AzureDialect : public Dialect {
 public:
  bool Match(const http::Request& req, std::string* path_model) const override {
    constexpr std::string_view kPrefix = "/openai/deployments/";
    std::string_view path = req.path;
    if (path.substr(0, kPrefix.size()) != kPrefix || path.size() < 12 ||
        path.substr(path.size() - 11) != "/embeddings")
      return false;
    *path_model = std::string(path.substr(kPrefix.size(), path.size() - 11 - kPrefix.size()));
    return req.target.find("api-version=") != std::string::npos;
  }
  std::optional<Error> CheckAuth(const http::Request& req,
                                 const std::string& require_key) const override {
    const std::string* key = req.Header("api-key");
    if (key && !key->empty() && (require_key.empty() || *key == require_key)) return std::nullopt;
    return Error{401, R"({"error":{"code":"401","message":"Access denied due to invalid )"
                      R"(subscription key or wrong API endpoint. Make sure to provide a valid )"
                      R"(key for an active subscription and use a correct regional API endpoint )"
                      R"(for your resource."}})"};
  }
  std::optional<Error> Parse(const std::string& body, const std::string& path_model,
                             Request* r) const override {
    static const std::vector<Model> kModels = {{"text-embedding-3-small", 1536, 8192},
                                               {"text-embedding-3-large", 3072, 8192}};
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject())
      return MakeError(400, "invalid", "We could not parse the JSON body of your request.");
    const Model* m = FindModel(kModels, path_model);
    if (!m)
      return Error{404, R"({"error":{"code":"DeploymentNotFound","message":"The API deployment )"
                        R"(for this resource does not exist."}})"};
    r->model = m->name;
    r->dims = m->dims;
    r->caps = {2048, 8192, 300000};
    auto input = doc.FindMember("input");
    if (input == doc.MemberEnd() || !ReadTexts(input->value, &r->texts))
      return MakeError(400, "invalid", "'$.input' is invalid.");
    std::string format = Member(doc, "encoding_format");
    r->base64 = format == "base64";
    if (!format.empty() && format != "float" && !r->base64)
      return MakeError(400, "invalid", "encoding_format must be float or base64");
    if (auto d = doc.FindMember("dimensions"); d != doc.MemberEnd()) {
      if (!d->value.IsInt64() || d->value.GetInt64() < 1 || d->value.GetInt64() > m->dims)
        return MakeError(400, "invalid", "Invalid value for 'dimensions'.");
      r->dimensions = d->value.GetInt64();
      r->dims = static_cast<uint32_t>(*r->dimensions);
    }
    return std::nullopt;
  }
  Error MakeError(int status, std::string_view kind, std::string_view message) const override {
    return {status, fmt::format(R"({{"error":{{"code":{},"message":{},"type":{},"param":null}}}})",
                                Quote(std::to_string(status)), Quote(message), Quote(kind))};
  }
  Error TooManyInputs(const Request& r) const override {
    return MakeError(400, "invalid_request_error",
                     fmt::format("Too many inputs. The max number of inputs is 2048. We "
                                 "received {} inputs.", r.texts.size()));
  }
  Error InputTooLong(const Request&, size_t, uint32_t tokens) const override {
    return MakeError(400, "invalid_request_error",
                     fmt::format("This model's maximum context length is 8192 tokens, "
                                 "however you requested {} tokens.", tokens));
  }
  Error RequestTooLarge(const Request&, uint64_t tokens) const override {
    return MakeError(400, "invalid_request_error",
                     fmt::format("Requested {} tokens, max 300000 tokens per request", tokens));
  }
  void Success(const Request& r, const std::vector<std::vector<float>>& vectors,
               uint64_t tokens, std::string* body) const override {
    OpenAiShape(r, vectors, fmt::format(R"("usage":{{"prompt_tokens":{},"total_tokens":{}}})",
                                        tokens, tokens), body);
  }

  /// {"object":"list","data":[{"object":"embedding","index":i,"embedding":..}],
  /// "model":..., <usage>}: OpenAI's shape, shared with Voyage.
  static void OpenAiShape(const Request& r, const std::vector<std::vector<float>>& vectors,
                          std::string_view usage, std::string* body) {
    *body += R"({"object":"list","data":[)";
    for (size_t i = 0; i < vectors.size(); ++i) {
      if (i) *body += ',';
      *body += fmt::format(R"({{"object":"embedding","index":{},"embedding":)", i);
      AppendVector(vectors[i], r.base64, body);
      *body += '}';
    }
    *body += fmt::format(R"(],"model":{},{}}})", Quote(r.model), usage);
  }
};

// Cohere v2 /v2/embed.
class CohereDialect : public Dialect {
 public:
  bool Match(const http::Request& req, std::string*) const override {
    return req.path == "/v2/embed";
  }
  std::optional<Error> CheckAuth(const http::Request& req,
                                 const std::string& require_key) const override {
    if (req.Header("authorization") == nullptr)
      return MakeError(401, "auth", "no api key supplied");
    if (!Bearer(req, require_key)) return MakeError(401, "auth", "invalid api token");
    return std::nullopt;
  }
  std::optional<Error> Parse(const std::string& body, const std::string&,
                             Request* r) const override {
    static const std::vector<Model> kModels = {{"embed-v4.0", 1536, 128000},
                                               // WordPiece vocabularies, BERT's specials
                                               {"embed-english-v3.0", 1024, 512, 0, kBertAdded},
                                               {"embed-multilingual-v3.0", 1024, 512, 0,
                                                kBertAdded},
                                               {"embed-english-light-v3.0", 384, 512, 0,
                                                kBertAdded},
                                               {"embed-multilingual-light-v3.0", 384, 512, 0,
                                                kBertAdded}};
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject())
      return MakeError(400, "invalid", "invalid request: could not parse the body as JSON");
    r->model = Member(doc, "model");
    if (r->model.empty()) return MakeError(400, "invalid", "invalid request: model must be specified");
    const Model* m = FindModel(kModels, r->model);
    if (!m)
      return MakeError(404, "not_found",
                       fmt::format("model '{}' not found, make sure the correct model ID was "
                                   "used and that you have access to the model.", r->model));
    r->dims = m->dims;
    r->caps = {96, m->context, 0};
    r->added_tokens = m->added_tokens;
    auto texts = doc.FindMember("texts");
    if (texts == doc.MemberEnd() || !texts->value.IsArray() || !ReadTexts(texts->value, &r->texts))
      return MakeError(400, "invalid", "invalid request: texts must be a non-empty list of non-empty strings");
    r->input_type = Member(doc, "input_type");
    if (r->input_type != "search_document" && r->input_type != "search_query" &&
        r->input_type != "classification" && r->input_type != "clustering")
      return MakeError(400, "invalid",
                       "invalid request: valid input_type must be provided with the provided model");
    auto types = doc.FindMember("embedding_types");
    bool has_float = false;
    if (types != doc.MemberEnd() && types->value.IsArray())
      for (const auto& t : types->value.GetArray())
        has_float = has_float || (t.IsString() && std::string_view(t.GetString()) == "float");
    if (!has_float)
      return MakeError(400, "invalid", "invalid request: embedding_types must include float");
    std::string truncate = Member(doc, "truncate");
    if (!truncate.empty() && truncate != "NONE" && truncate != "START" && truncate != "END")
      return MakeError(400, "invalid", "invalid request: truncate must be one of NONE, START, END");
    r->truncate = truncate != "NONE";  // END is the default
    if (auto d = doc.FindMember("output_dimension"); d != doc.MemberEnd() && !d->value.IsNull()) {
      int64_t v = d->value.IsInt64() ? d->value.GetInt64() : 0;
      if (r->model != "embed-v4.0" || (v != 256 && v != 512 && v != 1024 && v != 1536))
        return MakeError(400, "invalid",
                         "invalid request: output_dimension must be one of 256, 512, 1024, 1536 "
                         "and is only supported by embed-v4.0");
      r->dimensions = v;
      r->dims = static_cast<uint32_t>(v);
    }
    return std::nullopt;
  }
  Error MakeError(int status, std::string_view, std::string_view message) const override {
    return {status, fmt::format(R"({{"id":"7f3c1e0a-fake-cohere","message":{}}})", Quote(message))};
  }
  Error TooManyInputs(const Request& r) const override {
    return MakeError(400, "invalid",
                     fmt::format("invalid request: total number of texts must be at most 96 - "
                                 "received {}", r.texts.size()));
  }
  Error InputTooLong(const Request& r, size_t index, uint32_t tokens) const override {
    return MakeError(400, "invalid",
                     fmt::format("invalid request: text at index {} has {} tokens, over the "
                                 "model's {}; use truncate START or END", index, tokens,
                                 r.caps.max_input_tokens));
  }
  Error RequestTooLarge(const Request&, uint64_t) const override {
    return MakeError(400, "invalid", "invalid request: too many tokens");
  }
  void Success(const Request& r, const std::vector<std::vector<float>>& vectors,
               uint64_t tokens, std::string* body) const override {
    *body += R"({"id":"0d6d5a1c-fake-cohere","embeddings":{"float":[)";
    for (size_t i = 0; i < vectors.size(); ++i) {
      if (i) *body += ',';
      AppendVector(vectors[i], false, body);
    }
    *body += R"(]},"texts":[)";
    for (size_t i = 0; i < r.texts.size(); ++i) {
      if (i) *body += ',';
      *body += Quote(r.texts[i]);
    }
    *body += fmt::format(R"(],"meta":{{"api_version":{{"version":"2"}},"billed_units":)"
                         R"({{"input_tokens":{}}}}},"response_type":"embeddings_by_type"}})",
                         tokens);
  }
};

// Voyage AI /v1/embeddings.
class VoyageDialect : public Dialect {
 public:
  bool Match(const http::Request& req, std::string*) const override {
    return req.path == "/v1/embeddings";
  }
  std::optional<Error> CheckAuth(const http::Request& req,
                                 const std::string& require_key) const override {
    if (!Bearer(req, require_key)) return MakeError(401, "auth", "Provided API key is invalid.");
    return std::nullopt;
  }
  std::optional<Error> Parse(const std::string& body, const std::string&,
                             Request* r) const override {
    static const std::vector<Model> kModels = {{"voyage-3.5", 1024, 32000, 320000},
                                               {"voyage-3.5-lite", 1024, 32000, 1000000},
                                               {"voyage-3-large", 1024, 32000, 120000},
                                               {"voyage-law-2", 1024, 16000, 120000},
                                               {"voyage-2", 1024, 4000, 320000}};
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject())
      return MakeError(400, "invalid", "Request body is not valid JSON.");
    r->model = Member(doc, "model");
    const Model* m = FindModel(kModels, r->model);
    if (!m)
      return MakeError(400, "invalid",
                       fmt::format("Model {} is not supported. Supported models are "
                                   "voyage-3.5, voyage-3.5-lite, voyage-3-large, "
                                   "voyage-law-2, voyage-2.", r->model));
    r->dims = m->dims;
    r->caps = {1000, m->context, m->request_tokens};
    auto input = doc.FindMember("input");
    if (input == doc.MemberEnd() || !ReadTexts(input->value, &r->texts))
      return MakeError(400, "invalid", "input must be a non-empty string or list of strings.");
    r->input_type = Member(doc, "input_type");
    if (!r->input_type.empty() && r->input_type != "query" && r->input_type != "document")
      return MakeError(400, "invalid", "input_type must be null, 'query' or 'document'.");
    auto truncation = doc.FindMember("truncation");
    r->truncate = truncation == doc.MemberEnd() || !truncation->value.IsFalse();
    std::string format = Member(doc, "encoding_format");
    r->base64 = format == "base64";
    if (!format.empty() && !r->base64)
      return MakeError(400, "invalid", "encoding_format must be null or 'base64'.");
    if (auto d = doc.FindMember("output_dimension"); d != doc.MemberEnd() && !d->value.IsNull()) {
      int64_t v = d->value.IsInt64() ? d->value.GetInt64() : 0;
      if (v != 256 && v != 512 && v != 1024 && v != 2048)
        return MakeError(400, "invalid", "output_dimension must be one of 256, 512, 1024, 2048.");
      r->dimensions = v;
      r->dims = static_cast<uint32_t>(v);
    }
    return std::nullopt;
  }
  Error MakeError(int status, std::string_view, std::string_view message) const override {
    return {status, fmt::format(R"({{"detail":{}}})", Quote(message))};
  }
  Error TooManyInputs(const Request& r) const override {
    return MakeError(400, "invalid",
                     fmt::format("The batch size limit is 1000. Your batch size is {}.",
                                 r.texts.size()));
  }
  Error InputTooLong(const Request& r, size_t index, uint32_t tokens) const override {
    return MakeError(400, "invalid",
                     fmt::format("Input at index {} has {} tokens, over the context length of "
                                 "{} for model {}; set truncation to true or shorten it.",
                                 index, tokens, r.caps.max_input_tokens, r.model));
  }
  Error RequestTooLarge(const Request& r, uint64_t tokens) const override {
    return MakeError(400, "invalid",
                     fmt::format("Request to model '{}' failed. The max allowed tokens per "
                                 "submitted batch is {}. Your batch has {} tokens after "
                                 "truncation. Please lower the number of tokens in the batch.",
                                 r.model, r.caps.max_request_tokens, tokens));
  }
  void Success(const Request& r, const std::vector<std::vector<float>>& vectors,
               uint64_t tokens, std::string* body) const override {
    AzureDialect::OpenAiShape(r, vectors, fmt::format(R"("usage":{{"total_tokens":{}}})", tokens),
                              body);
  }
};

// The Gemini API's models/{model}:batchEmbedContents.
class GeminiDialect : public Dialect {
 public:
  bool Match(const http::Request& req, std::string* path_model) const override {
    constexpr std::string_view kPrefix = "/v1beta/models/", kSuffix = ":batchEmbedContents";
    std::string_view path = req.path;
    if (path.size() <= kPrefix.size() + kSuffix.size() ||
        path.substr(0, kPrefix.size()) != kPrefix ||
        path.substr(path.size() - kSuffix.size()) != kSuffix)
      return false;
    *path_model = std::string(path.substr(kPrefix.size(),
                                          path.size() - kPrefix.size() - kSuffix.size()));
    return true;
  }
  std::optional<Error> CheckAuth(const http::Request& req,
                                 const std::string& require_key) const override {
    const std::string* key = req.Header("x-goog-api-key");
    if (!key || key->empty())
      return MakeError(403, "PERMISSION_DENIED",
                       "Method doesn't allow unregistered callers (callers without established "
                       "identity). Please use API Key or other form of API consumer identity "
                       "to call this API.");
    if (!require_key.empty() && *key != require_key)
      return Error{400, R"({"error":{"code":400,"message":"API key not valid. Please pass a )"
                        R"(valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":)"
                        R"("type.googleapis.com/google.rpc.ErrorInfo","reason":)"
                        R"("API_KEY_INVALID","domain":"googleapis.com"}]}})"};
    return std::nullopt;
  }
  std::optional<Error> Parse(const std::string& body, const std::string& path_model,
                             Request* r) const override {
    static const std::vector<Model> kModels = {{"gemini-embedding-001", 3072, 2048},
                                               {"text-embedding-004", 768, 2048}};
    const Model* m = FindModel(kModels, path_model);
    if (!m)
      return MakeError(404, "NOT_FOUND",
                       fmt::format("models/{} is not found for API version v1beta, or is not "
                                   "supported for batchEmbedContents.", path_model));
    r->model = m->name;
    r->dims = m->dims;
    r->caps = {100, m->context, 0};
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject())
      return MakeError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    auto requests = doc.FindMember("requests");
    if (requests == doc.MemberEnd() || !requests->value.IsArray() || requests->value.Empty())
      return MakeError(400, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: "
                                                "must not be empty");
    std::string want_model = "models/" + path_model;
    for (rapidjson::SizeType i = 0; i < requests->value.Size(); ++i) {
      const rapidjson::Value& q = requests->value[i];
      if (Member(q, "model") != want_model)
        return MakeError(400, "INVALID_ARGUMENT",
                         fmt::format("* BatchEmbedContentsRequest.requests[{}].model: the model "
                                     "must be {}", i, want_model));
      std::string text;
      if (q.IsObject() && q.HasMember("content") && q["content"].IsObject() &&
          q["content"].HasMember("parts") && q["content"]["parts"].IsArray())
        for (const auto& part : q["content"]["parts"].GetArray()) text += Member(part, "text");
      if (text.empty())
        return MakeError(400, "INVALID_ARGUMENT",
                         fmt::format("* BatchEmbedContentsRequest.requests[{}].content: "
                                     "contents must not be empty", i));
      r->texts.push_back(std::move(text));
      std::string task = Member(q, "taskType");
      if (i == 0) r->input_type = task;
      if (task != r->input_type)
        return MakeError(400, "INVALID_ARGUMENT", "requests differ in taskType");
      if (q.IsObject() && q.HasMember("outputDimensionality")) {
        const rapidjson::Value& d = q["outputDimensionality"];
        if (!d.IsInt64() || d.GetInt64() < 1 || d.GetInt64() > m->dims)
          return MakeError(400, "INVALID_ARGUMENT",
                           fmt::format("* BatchEmbedContentsRequest.requests[{}]."
                                       "output_dimensionality: out of range", i));
        r->dimensions = d.GetInt64();
        r->dims = static_cast<uint32_t>(d.GetInt64());
      }
    }
    return std::nullopt;
  }
  Error MakeError(int status, std::string_view kind, std::string_view message) const override {
    static const std::pair<int, const char*> kStatus[] = {
        {400, "INVALID_ARGUMENT"}, {403, "PERMISSION_DENIED"}, {404, "NOT_FOUND"},
        {429, "RESOURCE_EXHAUSTED"}, {500, "INTERNAL"}, {503, "UNAVAILABLE"}};
    std::string name(kind);
    for (const auto& [code, text] : kStatus)
      if (code == status && (kind.empty() || kind == "rate" || kind == "server" ||
                             kind == "unavailable" || kind == "invalid"))
        name = text;
    return {status, fmt::format("{{\n  \"error\": {{\n    \"code\": {},\n    \"message\": {},\n"
                                "    \"status\": {}\n  }}\n}}\n",
                                status, Quote(message), Quote(name))};
  }
  Error TooManyInputs(const Request&) const override {
    return MakeError(400, "INVALID_ARGUMENT",
                     "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one "
                     "batch");
  }
  Error InputTooLong(const Request& r, size_t index, uint32_t tokens) const override {
    return MakeError(400, "INVALID_ARGUMENT",
                     fmt::format("* BatchEmbedContentsRequest.requests[{}]: input token count "
                                 "({}) exceeds the maximum number of tokens allowed ({}).",
                                 index, tokens, r.caps.max_input_tokens));
  }
  Error RequestTooLarge(const Request&, uint64_t) const override {
    return MakeError(400, "INVALID_ARGUMENT", "request too large");
  }
  void Success(const Request&, const std::vector<std::vector<float>>& vectors, uint64_t,
               std::string* body) const override {
    *body += R"({"embeddings":[)";
    for (size_t i = 0; i < vectors.size(); ++i) {
      if (i) *body += ',';
      *body += R"({"values":)";
      AppendVector(vectors[i], false, body);
      *body += '}';
    }
    *body += "]}";
  }
};

// Ollama's /api/embed.
class OllamaDialect : public Dialect {
 public:
  bool Match(const http::Request& req, std::string*) const override {
    return req.path == "/api/embed";
  }
  std::optional<Error> CheckAuth(const http::Request&, const std::string&) const override {
    return std::nullopt;  // a local server
  }
  std::optional<Error> Parse(const std::string& body, const std::string&,
                             Request* r) const override {
    // BERT-style, all three.
    static const std::vector<Model> kModels = {{"nomic-embed-text", 768, 8192, 0, kBertAdded},
                                               {"mxbai-embed-large", 1024, 512, 0, kBertAdded},
                                               {"all-minilm", 384, 256, 0, kBertAdded}};
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject())
      return MakeError(400, "invalid", "invalid character in request body");
    r->model = Member(doc, "model");
    if (r->model.empty()) return MakeError(400, "invalid", "model is required");
    const Model* m = FindModel(kModels, r->model);
    if (!m)
      return MakeError(404, "not_found",
                       fmt::format("model \"{}\" not found, try pulling it first", r->model));
    r->dims = m->dims;
    r->caps = {std::numeric_limits<size_t>::max(), m->context, 0};
    r->added_tokens = m->added_tokens;
    auto input = doc.FindMember("input");
    if (input == doc.MemberEnd() || !ReadTexts(input->value, &r->texts))
      return MakeError(400, "invalid", "invalid input type");
    auto truncate = doc.FindMember("truncate");
    r->truncate = truncate == doc.MemberEnd() || !truncate->value.IsFalse();
    if (auto d = doc.FindMember("dimensions"); d != doc.MemberEnd()) {
      if (!d->value.IsInt64() || d->value.GetInt64() < 1 || d->value.GetInt64() > m->dims)
        return MakeError(400, "invalid", "invalid dimensions");
      r->dimensions = d->value.GetInt64();
      r->dims = static_cast<uint32_t>(*r->dimensions);
    }
    return std::nullopt;
  }
  Error MakeError(int status, std::string_view, std::string_view message) const override {
    return {status, fmt::format(R"({{"error":{}}})", Quote(message))};
  }
  Error TooManyInputs(const Request&) const override {
    return MakeError(400, "invalid", "too many inputs");
  }
  Error InputTooLong(const Request&, size_t, uint32_t) const override {
    return MakeError(400, "invalid", "the input length exceeds the context length");
  }
  Error RequestTooLarge(const Request&, uint64_t) const override {
    return MakeError(400, "invalid", "request too large");
  }
  void Success(const Request& r, const std::vector<std::vector<float>>& vectors,
               uint64_t tokens, std::string* body) const override {
    *body += fmt::format(R"({{"model":{},"embeddings":[)", Quote(r.model));
    for (size_t i = 0; i < vectors.size(); ++i) {
      if (i) *body += ',';
      AppendVector(vectors[i], false, body);
    }
    *body += fmt::format(R"(],"total_duration":14143917,"load_duration":1019500,)"
                         R"("prompt_eval_count":{}}})", tokens);
  }
};

// Hugging Face text-embeddings-inference's /embed, serving one model
// (fake_provider --served-model) with the router's defaults:
// max_client_batch_size 32, no auto-truncate.
class TeiDialect : public Dialect {
 public:
  explicit TeiDialect(std::string served_model) : served_model_(std::move(served_model)) {}
  static const std::vector<Model>& Models() {
    static const std::vector<Model> kModels = {
        {"BAAI/bge-small-en-v1.5", 384, 512, 0, kBertAdded},
        {"BAAI/bge-base-en-v1.5", 768, 512, 0, kBertAdded}};
    return kModels;
  }
  bool Match(const http::Request& req, std::string*) const override {
    return req.path == "/embed";
  }
  std::optional<Error> CheckAuth(const http::Request& req,
                                 const std::string& require_key) const override {
    // The router checks a key only when started with --api-key.
    if (require_key.empty() || Bearer(req, require_key)) return std::nullopt;
    return Error{401, ""};
  }
  std::optional<Error> Parse(const std::string& body, const std::string&,
                             Request* r) const override {
    const Model* m = FindModel(Models(), served_model_);
    r->model = m->name;
    r->dims = m->dims;
    r->caps = {32, m->context, 0};
    r->added_tokens = m->added_tokens;
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject())
      return MakeError(422, "Validation", "Failed to deserialize the JSON body into the target type");
    auto input = doc.FindMember("inputs");
    if (input == doc.MemberEnd() || !ReadTexts(input->value, &r->texts))
      return MakeError(422, "Validation", "`inputs` cannot be empty");
    auto truncate = doc.FindMember("truncate");
    r->truncate = truncate != doc.MemberEnd() && truncate->value.IsTrue();
    return std::nullopt;
  }
  Error MakeError(int status, std::string_view kind, std::string_view message) const override {
    std::string type(kind);
    if (kind == "rate") type = "overloaded";
    if (kind == "server" || kind == "unavailable") type = "backend";
    return {status, fmt::format(R"({{"error":{},"error_type":{}}})", Quote(message), Quote(type))};
  }
  Error TooManyInputs(const Request& r) const override {
    return MakeError(422, "Validation",
                     fmt::format("batch size {} > maximum allowed batch size 32", r.texts.size()));
  }
  Error InputTooLong(const Request& r, size_t, uint32_t tokens) const override {
    return MakeError(413, "Validation",
                     fmt::format("Input validation error: `inputs` must have less than {} tokens. "
                                 "Given: {}", r.caps.max_input_tokens, tokens));
  }
  Error RequestTooLarge(const Request&, uint64_t) const override {
    return MakeError(413, "Validation", "payload too large");
  }
  void Success(const Request&, const std::vector<std::vector<float>>& vectors, uint64_t,
               std::string* body) const override {
    *body += '[';
    for (size_t i = 0; i < vectors.size(); ++i) {
      if (i) *body += ',';
      AppendVector(vectors[i], false, body);
    }
    *body += ']';
  }

 private:
  std::string served_model_;
};

/// The dialect named `name` ("azure", "cohere", "voyage", "gemini",
/// "ollama", "tei"), or null; `served_model` is TEI's model.
inline std::unique_ptr<Dialect> NewDialect(std::string_view name, const std::string& served_model) {
  if (name == "azure") return std::make_unique<AzureDialect>();
  if (name == "cohere") return std::make_unique<CohereDialect>();
  if (name == "voyage") return std::make_unique<VoyageDialect>();
  if (name == "gemini") return std::make_unique<GeminiDialect>();
  if (name == "ollama") return std::make_unique<OllamaDialect>();
  if (name == "tei") {
    for (const Model& m : TeiDialect::Models())
      if (served_model == m.name) return std::make_unique<TeiDialect>(served_model);
  }
  return nullptr;
}

}  // namespace fake_dialects
