#include "providers/provider.h"

#include <algorithm>
#include <cctype>

#include <fmt/core.h>

#include "providers/codec_json.h"
#include "providers/cohere_codec.h"
#include "providers/gemini_codec.h"
#include "providers/ollama_codec.h"
#include "providers/openai_codec.h"
#include "providers/tei_codec.h"
#include "providers/voyage_codec.h"
#include "transport/redact.h"

namespace {

// Azure OpenAI's current GA data-plane version.
constexpr const char* kAzureApiVersion = "2024-10-21";

// The caps are the providers' documented ones where there are any: OpenAI
// 2048 inputs, 300,000 tokens a request, 8192 an input; Cohere 96 texts;
// Voyage 1000 texts and a per-model total (kModelCaps; 120,000 for a model
// it does not list), 32,000 an input; Gemini 100 requests a batch, 2048
// tokens an input; TEI's defaults max_client_batch_size 32 and
// max_batch_tokens 16384, and 512 an input (BERT-sized models). Where a
// provider documents no total (Cohere, Gemini, Ollama) the cap only bounds a
// request's size. Ollama has no input cap of its own; 8192 is
// nomic-embed-text's context.
//
// The estimate's margin: OpenAI's models add no tokens to an input; any
// other may add up to 3 (BERT's [CLS] and [SEP]; a BOS, an EOS and
// SentencePiece's leading space mark), which its caps count.
const ProviderInfo kProviders[] = {
    {"openai", "openai-embeddings", "https://api.openai.com/v1",
     "OPENAI_BASE_URL", "text-embedding-3-small", "OPENAI_API_KEY", 2048,
     300000, 8191, 0, false, true, true, {}, ""},
    {"azure", "azure-openai-embeddings", "", "AZURE_OPENAI_ENDPOINT",
     "text-embedding-3-small", "AZURE_OPENAI_API_KEY", 2048, 300000, 8191, 0,
     false, true, true, {}, ""},
    {"openai-compatible", "openai-compatible-embeddings", "",
     "OPENAI_BASE_URL", "", "OPENAI_API_KEY", 2048, 300000, 8191, 3, false,
     true, true, {}, ""},
    {"cohere", "cohere-v2-embed", "https://api.cohere.com", "", "embed-v4.0",
     "COHERE_API_KEY", 96, 1000000, 128000, 3, true, true, false,
     {"search_document", "search_query", "classification", "clustering"},
     "search_document"},
    {"voyage", "voyage-embeddings", "https://api.voyageai.com/v1", "",
     "voyage-3.5", "VOYAGE_API_KEY", 1000, 120000, 32000, 3, true, true, true,
     {"document", "query"}, ""},
    {"gemini", "gemini-batch-embed-contents",
     "https://generativelanguage.googleapis.com/v1beta", "",
     "gemini-embedding-001", "GEMINI_API_KEY", 100, 204800, 2048, 3, false, true,
     false,
     {"RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY", "SEMANTIC_SIMILARITY",
      "CLASSIFICATION", "CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION",
      "CODE_RETRIEVAL_QUERY"},
     ""},
    {"ollama", "ollama-embed", "http://127.0.0.1:11434", "", "nomic-embed-text",
     "", 128, 262144, 8192, 3, true, true, false, {}, ""},
    {"tei", "tei-embed", "http://127.0.0.1:8080", "", "", "", 32, 16384, 512, 3,
     true, false, false, {}, ""},
};

// Where a provider's caps differ by model, as its documentation gives them;
// 0 keeps the provider's. A model not listed has the provider's caps.
struct ModelCaps {
  const char* provider;
  const char* model;  ///< Without an Ollama ":tag".
  int batch_tokens;
  int max_input_tokens;
};

const ModelCaps kModelCaps[] = {
    // Cohere's v3 models read 512 tokens an input; embed-v4.0 128,000.
    {"cohere", "embed-english-v3.0", 0, 512},
    {"cohere", "embed-multilingual-v3.0", 0, 512},
    {"cohere", "embed-english-light-v3.0", 0, 512},
    {"cohere", "embed-multilingual-light-v3.0", 0, 512},
    // Voyage: 1M tokens a request for the lite models, 320K for these,
    // 120K for the rest; 32,000 an input but for the older models.
    {"voyage", "voyage-4-lite", 1000000, 0},
    {"voyage", "voyage-3.5-lite", 1000000, 0},
    {"voyage", "voyage-3-lite", 1000000, 0},
    {"voyage", "voyage-4", 320000, 0},
    {"voyage", "voyage-3.5", 320000, 0},
    {"voyage", "voyage-3", 320000, 0},
    {"voyage", "voyage-2", 320000, 4000},
    {"voyage", "voyage-law-2", 0, 16000},
    {"voyage", "voyage-code-2", 0, 16000},
    {"voyage", "voyage-large-2", 0, 16000},
    {"voyage", "voyage-large-2-instruct", 0, 16000},
    // The contexts of Ollama's BERT-sized embedding models.
    {"ollama", "mxbai-embed-large", 0, 512},
    {"ollama", "snowflake-arctic-embed", 0, 512},
    {"ollama", "all-minilm", 0, 256},
};

// The row of kModelCaps for `model` under `provider`, or null.
const ModelCaps* FindModelCaps(std::string_view provider, std::string_view model) {
  std::string_view base = model.substr(0, model.find(':'));
  for (const ModelCaps& m : kModelCaps)
    if (provider == m.provider && base == m.model) return &m;
  return nullptr;
}

std::string Join(const std::vector<std::string_view>& items) {
  std::string out;
  for (std::string_view s : items) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out;
}

}  // namespace

std::span<const ProviderInfo> AllProviders() { return kProviders; }

const ProviderInfo* FindProvider(std::string_view name) {
  for (const ProviderInfo& p : kProviders)
    if (name == p.name) return &p;
  return nullptr;
}

std::string ProviderNames() {
  std::vector<std::string_view> names;
  for (const ProviderInfo& p : kProviders) names.push_back(p.name);
  return Join(names);
}

bool ApplyProvider(const ProviderFlagsGiven& given,
                   const std::function<const char*(const char*)>& getenv,
                   Options* o, std::string* err) {
  const ProviderInfo* p = FindProvider(o->provider);
  if (!p) {
    *err = fmt::format("unknown --provider {} (known: {})", o->provider,
                       ProviderNames());
    return false;
  }
  std::string name = p->name;
  if (!given.base_url) {
    const char* env = *p->base_url_env ? getenv(p->base_url_env) : nullptr;
    o->base_url = env && *env ? env : p->base_url;
    if (env && *env &&
        !CheckBaseUrl(o->base_url, fmt::format("${}", p->base_url_env), err))
      return false;
    // A dry run and --count-tokens send nothing: they need no address.
    if (o->base_url.empty() && !o->dry_run && !o->count_tokens) {
      *err = fmt::format("--provider {} needs --base-url{}", name,
                         *p->base_url_env
                             ? fmt::format(" (or ${})", p->base_url_env)
                             : "");
      return false;
    }
  }
  if (!given.model) {
    o->model = p->model;
    if (o->model.empty()) {
      *err = fmt::format("--provider {} needs --model (the model the server "
                         "runs, which the journal key names)",
                         name);
      return false;
    }
  }
  if (!given.api_key_env) o->api_key_env = p->key_env;
  const ModelCaps* model_caps = FindModelCaps(name, o->model);
  if (!given.batch_inputs) o->batch_inputs = p->batch_inputs;
  if (!given.batch_tokens)
    o->batch_tokens = model_caps && model_caps->batch_tokens
                          ? model_caps->batch_tokens
                          : p->batch_tokens;
  if (!given.max_input_tokens)
    o->max_input_tokens = model_caps && model_caps->max_input_tokens
                              ? model_caps->max_input_tokens
                              : p->max_input_tokens;
  if (!given.encoding)
    o->encoding = p->base64 && name != "openai-compatible" ? "base64" : "float";
  else if (o->encoding == "base64" && !p->base64) {
    *err = fmt::format("--provider {} sends floats only; drop --encoding base64",
                       name);
    return false;
  }
  if (o->dimensions > 0 && !p->dimensions) {
    *err = fmt::format("--provider {} has no --dimensions (the server's model "
                       "decides the length)",
                       name);
    return false;
  }
  if (o->input_type.empty()) {
    o->input_type = p->default_input_type;
  } else if (p->input_types.empty()) {
    *err = fmt::format("--provider {} takes no --input-type", name);
    return false;
  } else if (std::find(p->input_types.begin(), p->input_types.end(),
                       o->input_type) == p->input_types.end()) {
    *err = fmt::format("--provider {} takes --input-type {}, not {}", name,
                       Join(p->input_types), o->input_type);
    return false;
  }
  if (name == "azure") {
    if (o->api_version.empty()) o->api_version = kAzureApiVersion;
  } else if (!o->api_version.empty()) {
    *err = "--api-version is for --provider azure";
    return false;
  }
  return true;
}

bool CheckBaseUrl(std::string_view url, std::string_view origin,
                  std::string* err) {
  // Messages repeat the URL, but never a password in it.
  std::string shown = WithoutCredentials(url);
  size_t colon = url.find("://");
  std::string_view scheme = url.substr(0, colon);
  bool scheme_ok =
      colon != std::string_view::npos && !scheme.empty() &&
      std::isalpha(static_cast<unsigned char>(scheme[0])) &&
      scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") ==
          std::string_view::npos;
  std::string lower(scheme);
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // libcurl would take others (file://, ftp://...) or fail on them only
  // when the request goes out, and each failure would be retried.
  if (scheme_ok && lower != "http" && lower != "https") {
    *err = fmt::format("{} {}: the scheme is {}; embedpipe speaks http and "
                       "https only",
                       origin, shown, scheme);
    return false;
  }
  std::string_view authority =
      scheme_ok ? url.substr(colon + 3) : std::string_view();
  authority = authority.substr(0, authority.find_first_of("/?#"));
  // After any "user@" (npos + 1 is 0: none).
  std::string_view host = authority.substr(authority.rfind('@') + 1);
  if (!scheme_ok || host.empty() || host[0] == ':') {
    *err = fmt::format("{} {} is not a URL: give http:// or https://, a host "
                       "and a path, as in https://api.openai.com/v1",
                       origin, shown);
    return false;
  }
  return true;
}

bool KeyRequired(const Options& o) {
  const ProviderInfo* p = FindProvider(o.provider);
  if (o.api_key_env.empty() || !*p->key_env) return false;
  // Azure has no public default endpoint: every one of them wants a key.
  return o.provider == "azure" || o.base_url == p->base_url;
}

uint32_t AddedTokens(const Options& o) {
  return static_cast<uint32_t>(FindProvider(o.provider)->added_tokens);
}

bool ServerTruncates(const Options& o) {
  return FindProvider(o.provider)->server_truncation && o.overlong == "truncate";
}

std::vector<std::pair<std::string, std::string>> ProviderSettings(
    const Options& o) {
  const ProviderInfo* p = FindProvider(o.provider);
  std::vector<std::pair<std::string, std::string>> settings = {{"api", p->api}};
  if (!p->input_types.empty())
    settings.emplace_back("input_type",
                          o.input_type.empty() ? "none" : o.input_type);
  if (p->server_truncation)
    settings.emplace_back("server_truncation",
                          ServerTruncates(o) ? "on" : "off");
  return settings;
}

std::unique_ptr<Codec> NewCodec(const Options& o, const std::string& base_url,
                                const std::string& api_key) {
  CodecConfig c;
  c.base_url = base_url;
  c.model = o.model;
  c.dimensions = o.dimensions;
  c.base64 = o.encoding == "base64";
  c.api_key = api_key;
  c.input_type = o.input_type;
  c.truncate = ServerTruncates(o);
  c.api_version = o.api_version;
  const std::string& name = o.provider;
  if (name == "cohere") return std::make_unique<CohereCodec>(c);
  if (name == "voyage") return std::make_unique<VoyageCodec>(c);
  if (name == "gemini") return std::make_unique<GeminiCodec>(c);
  if (name == "ollama") return std::make_unique<OllamaCodec>(c);
  if (name == "tei") return std::make_unique<TeiCodec>(c);
  OpenAiEndpoint endpoint;
  if (name == "azure") {
    // The deployment names the model; the body does not.
    endpoint.url = JoinUrl(c.base_url, "/openai/deployments/" + c.model +
                                           "/embeddings?api-version=" +
                                           c.api_version);
    endpoint.key_header = "api-key: ";
    endpoint.send_model = false;
  }
  return std::make_unique<OpenAiCodec>(c, endpoint);
}
