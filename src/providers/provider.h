// The embedding providers embedpipe speaks (--provider): each one's
// defaults (base URL, model, key variable, request caps), what it accepts
// (input types, --dimensions, base64, server-side truncation), the settings
// that make its vectors differ, and the codec that speaks its API.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "app/options.h"
#include "providers/codec.h"

struct ProviderInfo {
  const char* name;             ///< As --provider takes it.
  const char* api;              ///< The journal's "api" setting.
  const char* base_url;         ///< Default; "" when it must be given.
  const char* base_url_env;     ///< Variable that may give it, or "".
  const char* model;            ///< Default; "" when it must be given.
  const char* key_env;          ///< Default --api-key-env; "": none.
  int batch_inputs;             ///< Inputs per request.
  int batch_tokens;             ///< Tokens per request (but see ApplyProvider).
  int max_input_tokens;         ///< Tokens per input (but see ApplyProvider).
  int added_tokens;             ///< The estimate's margin per input.
  bool server_truncation;       ///< Can cut an over-long input itself.
  bool dimensions;              ///< Accepts a requested vector length.
  bool base64;                  ///< Can send vectors as base64 float32.
  std::vector<std::string_view> input_types;  ///< Empty: takes none.
  const char* default_input_type;             ///< "": omit by default.
};

/// Every provider, in the order --help lists them.
std::span<const ProviderInfo> AllProviders();

/// The provider named `name`, or null.
const ProviderInfo* FindProvider(std::string_view name);

/// Every provider's name, comma-separated, for messages and --help.
std::string ProviderNames();

/// Which provider-dependent flags the command line (or its environment)
/// set; the others take the provider's defaults.
struct ProviderFlagsGiven {
  bool base_url = false;
  bool model = false;
  bool api_key_env = false;
  bool encoding = false;
  bool batch_inputs = false;
  bool batch_tokens = false;
  bool max_input_tokens = false;
};

/// Fills the settings of *o that the user left to o->provider (the caps
/// from o->model where the provider documents caps per model), and checks
/// the ones given against what that provider accepts. `getenv` reads the
/// environment (the base URL variables). Returns false and fills *err with
/// a usage message on a conflict. The base URL may stay empty in a dry run
/// or with --count-tokens, which send nothing.
bool ApplyProvider(const ProviderFlagsGiven& given,
                   const std::function<const char*(const char*)>& getenv,
                   Options* o, std::string* err);

/// Whether `url` is one requests can go to: http:// or https:// and a host.
/// Returns false and fills *err with a usage message naming `origin` (the
/// flag or variable that gave it) otherwise.
bool CheckBaseUrl(std::string_view url, std::string_view origin,
                  std::string* err);

/// Whether a run must have a key: the provider takes one and the base URL
/// is the provider's own service (a local stand-in may need none).
bool KeyRequired(const Options& o);

/// Tokens the run's provider's models may add to each input, which the
/// token estimate counts on top of the text's bytes (see NewTokenCounter).
uint32_t AddedTokens(const Options& o);

/// Whether over-long inputs are left for the server to cut (--overlong
/// truncate with a provider that can), instead of cut by the client.
bool ServerTruncates(const Options& o);

/// The settings besides model, dimensions and the text that make this
/// provider's vectors differ, for the journal key: the API, and where the
/// provider has them, the input type and the server-side truncation.
/// OpenAI's stay what they were before there were providers, so older
/// journals still match.
std::vector<std::pair<std::string, std::string>> ProviderSettings(
    const Options& o);

/// The codec for the run's provider, building requests rooted at
/// `base_url` (o.base_url, or one endpoint of a pool); `o` must have passed
/// ApplyProvider.
std::unique_ptr<Codec> NewCodec(const Options& o, const std::string& base_url,
                                const std::string& api_key);
