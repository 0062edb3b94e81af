#include "providers/provider.h"

#include <doctest/doctest.h>

#include <map>

#include "providers/base64.h"
#include "providers/codec_test_util.h"

namespace {

bool Apply(Options* o, std::string* err, ProviderFlagsGiven given = {},
           std::map<std::string, std::string> env = {}) {
  return ApplyProvider(
      given,
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      o, err);
}

Options For(const char* provider) {
  Options o;
  o.provider = provider;
  return o;
}

// An Azure OpenAI codec for deployment "emb-small" at a test endpoint.
std::unique_ptr<Codec> AzureCodec() {
  std::string err;
  Options o = For("azure");
  o.model = "emb-small";
  ProviderFlagsGiven given;
  given.model = true;
  REQUIRE(Apply(&o, &err, given, {{"AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com/"}}));
  return NewCodec(o, o.base_url, "az-key");
}

}  // namespace

TEST_CASE("ApplyProvider fills each provider's defaults") {
  std::string err;
  Options o = For("openai");
  REQUIRE(Apply(&o, &err));
  CHECK(o.base_url == "https://api.openai.com/v1");
  CHECK(o.model == "text-embedding-3-small");
  CHECK(o.api_key_env == "OPENAI_API_KEY");
  CHECK(o.batch_inputs == 2048);
  CHECK(o.batch_tokens == 300000);
  CHECK(o.max_input_tokens == 8191);
  CHECK(o.encoding == "base64");

  o = For("cohere");
  REQUIRE(Apply(&o, &err));
  CHECK(o.base_url == "https://api.cohere.com");
  CHECK(o.api_key_env == "COHERE_API_KEY");
  CHECK(o.batch_inputs == 96);
  CHECK(o.input_type == "search_document");
  CHECK(o.encoding == "float");

  o = For("voyage");
  o.model = "voyage-3.5-lite";
  ProviderFlagsGiven model_given;
  model_given.model = true;
  REQUIRE(Apply(&o, &err, model_given));
  CHECK(o.batch_inputs == 1000);
  CHECK(o.batch_tokens == 1000000);  // voyage-3.5-lite's total
  o = For("voyage");
  REQUIRE(Apply(&o, &err));
  CHECK(o.batch_tokens == 320000);

  o = For("gemini");
  REQUIRE(Apply(&o, &err));
  CHECK(o.batch_inputs == 100);
  CHECK(o.max_input_tokens == 2048);
  CHECK(o.api_key_env == "GEMINI_API_KEY");

  o = For("tei");
  o.model = "BAAI/bge-small-en-v1.5";
  REQUIRE(Apply(&o, &err, model_given));
  CHECK(o.batch_inputs == 32);
  CHECK(o.max_input_tokens == 512);
  CHECK(o.api_key_env.empty());

  o = For("azure");
  REQUIRE(Apply(&o, &err, {}, {{"AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com"}}));
  CHECK(o.base_url == "https://r.openai.azure.com");
  CHECK(o.api_version == "2024-10-21");
  CHECK(o.api_key_env == "AZURE_OPENAI_API_KEY");
}

TEST_CASE("ApplyProvider takes the caps of the model where they differ") {
  struct Case {
    const char* provider;
    const char* model;
    int batch_tokens;
    int max_input_tokens;
  } cases[] = {
      {"cohere", "embed-v4.0", 1000000, 128000},
      {"cohere", "embed-english-v3.0", 1000000, 512},
      {"cohere", "embed-multilingual-v3.0", 1000000, 512},
      {"cohere", "embed-english-light-v3.0", 1000000, 512},
      {"cohere", "embed-multilingual-light-v3.0", 1000000, 512},
      {"voyage", "voyage-3.5", 320000, 32000},
      {"voyage", "voyage-3.5-lite", 1000000, 32000},
      {"voyage", "voyage-3-large", 120000, 32000},
      {"voyage", "voyage-law-2", 120000, 16000},
      {"voyage", "voyage-2", 320000, 4000},
      {"voyage", "voyage-next", 120000, 32000},  // unknown: the smallest total
      {"ollama", "nomic-embed-text", 262144, 8192},
      {"ollama", "mxbai-embed-large:335m", 262144, 512},  // the tag aside
      {"ollama", "all-minilm", 262144, 256},
      {"tei", "BAAI/bge-small-en-v1.5", 16384, 512},
  };
  ProviderFlagsGiven model_given;
  model_given.model = true;
  for (const Case& c : cases) {
    CAPTURE(c.model);
    std::string err;
    Options o = For(c.provider);
    o.model = c.model;
    REQUIRE(Apply(&o, &err, model_given));
    CHECK(o.batch_tokens == c.batch_tokens);
    CHECK(o.max_input_tokens == c.max_input_tokens);
  }
  // What the command line gives wins over the model's caps.
  std::string err;
  Options o = For("cohere");
  o.model = "embed-english-v3.0";
  o.max_input_tokens = 300;
  ProviderFlagsGiven given = model_given;
  given.max_input_tokens = true;
  REQUIRE(Apply(&o, &err, given));
  CHECK(o.max_input_tokens == 300);
}

TEST_CASE("ApplyProvider keeps what was given and refuses conflicts") {
  std::string err;
  Options o = For("ollama");
  o.batch_inputs = 7;
  o.base_url = "http://gpu:11434";
  ProviderFlagsGiven given;
  given.batch_inputs = true;
  given.base_url = true;
  REQUIRE(Apply(&o, &err, given, {{"OPENAI_BASE_URL", "http://ignored"}}));
  CHECK(o.batch_inputs == 7);
  CHECK(o.base_url == "http://gpu:11434");

  o = For("openai");
  REQUIRE(Apply(&o, &err, {}, {{"OPENAI_BASE_URL", "http://127.0.0.1:9/v1"}}));
  CHECK(o.base_url == "http://127.0.0.1:9/v1");

  struct Case {
    const char* provider;
    void (*set)(Options*);
    const char* error;
  } cases[] = {
      {"nope", [](Options*) {}, "unknown --provider nope (known: openai, azure, "
                                "openai-compatible, cohere, voyage, gemini, ollama, tei)"},
      {"openai-compatible", [](Options*) {},
       "--provider openai-compatible needs --base-url (or $OPENAI_BASE_URL)"},
      {"tei", [](Options*) {}, "--provider tei needs --model (the model the server runs, "
                               "which the journal key names)"},
      {"openai", [](Options* o) { o->input_type = "query"; },
       "--provider openai takes no --input-type"},
      {"cohere", [](Options* o) { o->input_type = "query"; },
       "--provider cohere takes --input-type search_document, search_query, classification, "
       "clustering, not query"},
      {"gemini", [](Options* o) { o->api_version = "1"; },
       "--api-version is for --provider azure"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.provider);
    Options bad = For(c.provider);
    c.set(&bad);
    CHECK_FALSE(Apply(&bad, &err));
    CHECK(err == c.error);
  }
  Options tei = For("tei");
  tei.dimensions = 8;
  ProviderFlagsGiven model_given;
  model_given.model = true;
  CHECK_FALSE(Apply(&tei, &err, model_given));
  CHECK(err == "--provider tei has no --dimensions (the server's model decides the length)");
  Options cohere = For("cohere");
  cohere.encoding = "base64";
  ProviderFlagsGiven encoding_given;
  encoding_given.encoding = true;
  CHECK_FALSE(Apply(&cohere, &err, encoding_given));
  CHECK(err == "--provider cohere sends floats only; drop --encoding base64");
}

TEST_CASE("ApplyProvider needs no base URL for a run that sends nothing") {
  std::string err;
  for (const char* provider : {"azure", "openai-compatible"}) {
    CAPTURE(provider);
    Options o = For(provider);
    o.model = "m";
    ProviderFlagsGiven given;
    given.model = true;
    CHECK_FALSE(Apply(&o, &err, given));
    o.dry_run = true;
    CHECK(Apply(&o, &err, given));
    CHECK(o.base_url == "");
    o.dry_run = false;
    o.count_tokens = true;
    CHECK(Apply(&o, &err, given));
  }
}

TEST_CASE("CheckBaseUrl takes http and https URLs with a host only") {
  std::string err;
  for (const char* good : {"https://api.openai.com/v1", "http://127.0.0.1:8080",
                           "HTTP://[::1]:80/v1", "https://user@host/v1?x#y"}) {
    CAPTURE(good);
    CHECK(CheckBaseUrl(good, "--base-url", &err));
  }
  struct Case {
    const char* url;
    const char* error;
  } cases[] = {
      {"ftp://x", "--base-url ftp://x: the scheme is ftp; embedpipe speaks http and https only"},
      {"file:///etc/passwd",
       "--base-url file:///etc/passwd: the scheme is file; embedpipe speaks http and https "
       "only"},
      {"notaurl", "--base-url notaurl is not a URL: give http:// or https://, a host and a "
                  "path, as in https://api.openai.com/v1"},
      {"api.openai.com/v1", "--base-url api.openai.com/v1 is not a URL: give http:// or "
                            "https://, a host and a path, as in https://api.openai.com/v1"},
      {"https://", "--base-url https:// is not a URL: give http:// or https://, a host and a "
                   "path, as in https://api.openai.com/v1"},
      {"http://:80/v1", "--base-url http://:80/v1 is not a URL: give http:// or https://, a "
                        "host and a path, as in https://api.openai.com/v1"},
      {"1http://x", "--base-url 1http://x is not a URL: give http:// or https://, a host and "
                    "a path, as in https://api.openai.com/v1"},
      // A user name and password in the URL are never repeated.
      {"ftp://me:s3cret@x/v1", "--base-url ftp://x/v1: the scheme is ftp; embedpipe speaks "
                               "http and https only"},
      {"ftp://me:s3c/ret@x", "--base-url ftp://x: the scheme is ftp; embedpipe speaks http "
                             "and https only"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.url);
    CHECK_FALSE(CheckBaseUrl(c.url, "--base-url", &err));
    CHECK(err == c.error);
  }
  Options o = For("openai");
  CHECK_FALSE(Apply(&o, &err, {}, {{"OPENAI_BASE_URL", "gopher://x"}}));
  CHECK(err == "$OPENAI_BASE_URL gopher://x: the scheme is gopher; embedpipe speaks http and "
               "https only");
}

TEST_CASE("ProviderSettings name what changes a vector") {
  std::string err;
  Options openai = For("openai");
  REQUIRE(Apply(&openai, &err));
  // Exactly what journals held before there were providers.
  CHECK(ProviderSettings(openai) ==
        std::vector<std::pair<std::string, std::string>>{{"api", "openai-embeddings"}});

  Options cohere = For("cohere");
  REQUIRE(Apply(&cohere, &err));
  CHECK(ProviderSettings(cohere) ==
        std::vector<std::pair<std::string, std::string>>{
            {"api", "cohere-v2-embed"},
            {"input_type", "search_document"},
            {"server_truncation", "off"}});
  cohere.overlong = "truncate";
  CHECK(ServerTruncates(cohere));
  CHECK(ProviderSettings(cohere).back().second == "on");

  Options voyage = For("voyage");
  REQUIRE(Apply(&voyage, &err));
  CHECK(ProviderSettings(voyage)[1] ==
        std::pair<std::string, std::string>{"input_type", "none"});

  Options gemini = For("gemini");
  gemini.overlong = "truncate";
  REQUIRE(Apply(&gemini, &err));
  CHECK_FALSE(ServerTruncates(gemini));  // Gemini cannot: the client cuts
}

TEST_CASE("AddedTokens: OpenAI's models add none, any other model up to 3") {
  ProviderFlagsGiven given;
  given.model = true;
  given.base_url = true;
  for (const char* name : {"openai", "azure", "openai-compatible", "cohere", "voyage",
                           "gemini", "ollama", "tei"}) {
    CAPTURE(name);
    std::string err;
    Options o = For(name);
    o.model = "m";
    o.base_url = "http://127.0.0.1:9";
    REQUIRE(Apply(&o, &err, given));
    CHECK(AddedTokens(o) == (o.provider == "openai" || o.provider == "azure" ? 0u : 3u));
  }
}

TEST_CASE("KeyRequired only for a provider's own service") {
  std::string err;
  Options o = For("cohere");
  REQUIRE(Apply(&o, &err));
  CHECK(KeyRequired(o));
  o.base_url = "http://127.0.0.1:9";
  CHECK_FALSE(KeyRequired(o));
  Options ollama = For("ollama");
  REQUIRE(Apply(&ollama, &err));
  CHECK_FALSE(KeyRequired(ollama));
  Options azure = For("azure");
  REQUIRE(Apply(&azure, &err, {}, {{"AZURE_OPENAI_ENDPOINT", "http://127.0.0.1:9"}}));
  CHECK(KeyRequired(azure));
}

TEST_CASE("NewCodec speaks Azure OpenAI per deployment") {
  HttpRequest req = AzureCodec()->EncodeRequest(TextBatch({"a"}));
  CHECK(req.url ==
        "https://r.openai.azure.com/openai/deployments/emb-small/embeddings"
        "?api-version=2024-10-21");
  CHECK(HasHeader(req, "api-key: az-key"));
  CHECK(req.body == R"({"input":["a"],"encoding_format":"base64"})");
}

TEST_CASE("Azure OpenAI's response decodes by index, base64 or floats") {
  // As Azure's reference shows it: the model the deployment runs, the
  // vectors in any order, usage with prompt_tokens.
  float first[] = {0.5f, -0.25f}, second[] = {1, 0};
  auto b64 = [](const float* v) {
    return Base64Encode(std::string(reinterpret_cast<const char*>(v), 2 * sizeof(float)));
  };
  std::string body = R"({"object":"list","data":[{"object":"embedding","index":1,)"
                     R"("embedding":")" + b64(second) + R"("},{"object":"embedding",)"
                     R"("index":0,"embedding":")" + b64(first) + R"("}],)"
                     R"("model":"text-embedding-3-small","usage":{"prompt_tokens":4,)"
                     R"("total_tokens":4}})";
  Embeddings out;
  std::string err;
  REQUIRE(AzureCodec()->DecodeResponse(Reply(200, body), TextBatch({"a", "b"}), &out, &err));
  CHECK(out.dims == 2);
  CHECK(out.values == std::vector<float>{0.5f, -0.25f, 1, 0});
  CHECK(out.prompt_tokens == 4);
  REQUIRE(AzureCodec()->DecodeResponse(
      Reply(200, R"({"object":"list","data":[{"object":"embedding","index":0,)"
                 R"("embedding":[0.125,-1]}],"model":"text-embedding-3-small",)"
                 R"("usage":{"prompt_tokens":1,"total_tokens":1}})"),
      TextBatch({"a"}), &out, &err));
  CHECK(out.values == std::vector<float>{0.125f, -1});
}

TEST_CASE("Azure OpenAI's error bodies") {
  struct Case {
    long status;
    const char* body;
    const char* message;
    const char* code;
  } cases[] = {
      {401,
       R"({"error":{"code":"401","message":"Access denied due to invalid subscription )"
       R"(key or wrong API endpoint. Make sure to provide a valid key for an active )"
       R"(subscription and use a correct regional API endpoint for your resource."}})",
       "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
       "provide a valid key for an active subscription and use a correct regional API "
       "endpoint for your resource.",
       "401"},
      {404,
       R"({"error":{"code":"DeploymentNotFound","message":"The API deployment for this )"
       R"(resource does not exist. If you created the deployment within the last 5 )"
       R"(minutes, please wait a moment and try again."}})",
       "The API deployment for this resource does not exist. If you created the deployment "
       "within the last 5 minutes, please wait a moment and try again.",
       "DeploymentNotFound"},
      {429,
       R"({"error":{"code":"429","message":"Requests to the Embeddings_Create Operation )"
       R"(under Azure OpenAI API version 2024-10-21 have exceeded call rate limit of your )"
       R"(current OpenAI S0 pricing tier. Please retry after 2 seconds."}})",
       "Requests to the Embeddings_Create Operation under Azure OpenAI API version "
       "2024-10-21 have exceeded call rate limit of your current OpenAI S0 pricing tier. "
       "Please retry after 2 seconds.",
       "429"},
      {400,
       R"({"error":{"message":"This model's maximum context length is 8192 tokens, however )"
       R"(you requested 9000 tokens (9000 in your prompt; 0 for the completion). Please )"
       R"(reduce your prompt; or completion length.","type":"invalid_request_error",)"
       R"("param":null,"code":null}})",
       "This model's maximum context length is 8192 tokens, however you requested 9000 "
       "tokens (9000 in your prompt; 0 for the completion). Please reduce your prompt; or "
       "completion length.",
       ""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    ApiError e = AzureCodec()->ParseError(Reply(c.status, c.body));
    CHECK(e.message == c.message);
    CHECK(e.code == c.code);
  }
}

TEST_CASE("Every provider's codec bounds a response by what it asked for") {
  for (const ProviderInfo& p : AllProviders()) {
    CAPTURE(p.name);
    std::string err;
    Options o = For(p.name);
    o.base_url = "http://127.0.0.1:9";
    o.model = "m";
    o.dimensions = p.dimensions ? 8 : 0;
    ProviderFlagsGiven given;
    given.base_url = given.model = true;
    REQUIRE(Apply(&o, &err, given));
    HttpRequest req = NewCodec(o, o.base_url, "k")->EncodeRequest(TextBatch({"a", "b"}));
    // Per input: each value at 8 bytes (base64) or 32 (float text), plus
    // 1 KiB; 64 KiB a response. Without --dimensions: 65,535 values.
    size_t dims = p.dimensions ? 8 : 65535;
    size_t per_value = o.encoding == "base64" ? 8 : 32;
    CHECK(req.max_response_bytes == 2 * (dims * per_value + 1024) + 65536);
  }
}
