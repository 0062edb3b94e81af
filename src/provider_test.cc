#include "provider.h"

#include <doctest/doctest.h>

#include <map>

#include "codec_test_util.h"

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
  std::string err;
  Options o = For("azure");
  o.model = "emb-small";
  ProviderFlagsGiven given;
  given.model = true;
  REQUIRE(Apply(&o, &err, given, {{"AZURE_OPENAI_ENDPOINT", "https://r.openai.azure.com/"}}));
  HttpRequest req = NewCodec(o, "az-key")->EncodeRequest(TextBatch({"a"}));
  CHECK(req.url ==
        "https://r.openai.azure.com/openai/deployments/emb-small/embeddings"
        "?api-version=2024-10-21");
  CHECK(HasHeader(req, "api-key: az-key"));
  CHECK(req.body == R"({"input":["a"],"encoding_format":"base64"})");
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
    HttpRequest req = NewCodec(o, "k")->EncodeRequest(TextBatch({"a", "b"}));
    // Per input: each value at 8 bytes (base64) or 32 (float text), plus
    // 1 KiB; 64 KiB a response. Without --dimensions: 65,535 values.
    size_t dims = p.dimensions ? 8 : 65535;
    size_t per_value = o.encoding == "base64" ? 8 : 32;
    CHECK(req.max_response_bytes == 2 * (dims * per_value + 1024) + 65536);
  }
}
