#include "app/cli.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "app/exit_status.h"
#include "providers/provider.h"
#include "version.h"

namespace {

constexpr const char* kDescription =
    "embedpipe: turns JSONL document sections into embeddings.\n"
    "Reads one JSON object per line from FILEs (or stdin), sends the texts "
    "in batches to an embeddings API, and writes one JSON line per record to "
    "stdout, in input order.\n";

constexpr const char* kFooter =
    "Exit status: 0 all embedded, 1 usage error, 2 some records rejected, "
    "3 stopped by an API error, 4 output error, 130 interrupted; when "
    "several apply, the first of 4, 3, 130, 2.\n"
    "The API key is read from $OPENAI_API_KEY or the --provider's own "
    "variable (see --api-key-env), or from a file (--api-key-file); never "
    "from the command line. "
    "See embedpipe(1) for details.";

// Says what is wrong with the command line and how to get help; sets the
// usage exit status. Returns false, for the caller to return.
bool UsageError(const std::string& message, int* exit_code) {
  std::fprintf(stderr, "embedpipe: error: %s\nTry 'embedpipe --help'.\n",
               message.c_str());
  *exit_code = kExitUsage;
  return false;
}

// Checks that an option's value is a number (kWholeNumber: an integer)
// before CLI::Range checks its bounds, which says "not in range" of text
// that is no number at all.
std::string CheckNumber(const std::string& value, bool whole) {
  const char* begin = value.c_str();
  char* end = nullptr;
  double parsed = std::strtod(begin, &end);
  // strtod also reads "nan" and "inf", which no range check refuses (every
  // comparison with NaN is false) and which no setting can mean.
  bool number = !value.empty() && end == begin + value.size() &&
                !std::isspace(static_cast<unsigned char>(value[0])) &&
                std::isfinite(parsed);
  if (!number) return fmt::format("'{}' is not a number", value);
  if (whole && value.find_first_not_of("+-0123456789") != std::string::npos)
    return fmt::format("'{}' is not a whole number", value);
  return "";
}
const CLI::Validator kNumber(
    [](std::string& value) { return CheckNumber(value, false); }, "", "");
const CLI::Validator kWholeNumber(
    [](std::string& value) { return CheckNumber(value, true); }, "", "");

}  // namespace

bool ParseCommandLine(int argc, const char* const* argv, Options* o,
                      int* exit_code) {
  CLI::App app(kDescription, "embedpipe");
  app.footer(kFooter);
  app.set_version_flag("-V,--version", "embedpipe " EMBEDPIPE_VERSION);
  app.get_formatter()->column_width(34);

  app.add_option("FILE", o->inputs,
                 "Input JSONL files, read in order; none or - reads stdin")
      ->type_name("");

  const char* kInput = "Input";
  app.add_option("--id-field", o->id_field,
                 "Field holding the record id; a dotted path such as meta.id")
      ->type_name("PATH")
      ->group(kInput)->capture_default_str();
  app.add_option("--text-field", o->text_field,
                 "Field holding the text to embed; a dotted path")
      ->type_name("PATH")
      ->group(kInput)->capture_default_str();
  app.add_option("--carry", o->carry_fields,
                 "Copy this field (a dotted path) to the output line; "
                 "repeatable")
      ->type_name("PATH")
      // One path per --carry, so `--carry meta.url FILE` reads FILE.
      ->group(kInput)->take_all()->allow_extra_args(false);
  app.add_option("--shard", o->shard,
                 "Take only shard K of N: the records whose id hashes to K; "
                 "N processes with 1/N..N/N cover the input once")
      ->type_name("K/N")
      ->group(kInput);
  app.add_option("--normalize", o->normalize,
                 "Text normalization: nfc, nfkc or none")
      ->type_name("FORM")
      ->group(kInput)->capture_default_str()
      ->check(CLI::IsMember({"nfc", "nfkc", "none"}));
  app.add_option("--invalid-utf8", o->invalid_utf8,
                 "Invalid UTF-8 in a text: replace (with U+FFFD) or reject")
      ->type_name("ACTION")
      ->group(kInput)->capture_default_str()
      ->check(CLI::IsMember({"replace", "reject"}));

  const char* kProvider = "Provider";
  app.add_option("--provider", o->provider,
                 "API to speak: openai, azure, openai-compatible (vLLM, "
                 "LiteLLM, Mistral, Jina...), cohere, voyage, gemini, ollama "
                 "or tei; sets the defaults of the flags below and of "
                 "batching")
      ->type_name("NAME")
      ->group(kProvider)->capture_default_str();
  // $OPENAI_BASE_URL applies to some providers only: ApplyProvider reads it.
  std::vector<std::string> base_urls;
  app.add_option("--base-url", base_urls,
                 "API base URL; $OPENAI_BASE_URL if set (openai, "
                 "openai-compatible), $AZURE_OPENAI_ENDPOINT (azure); repeat "
                 "it to spread requests over several servers, -j each")
      ->type_name("URL")->default_str(o->base_url)
      ->group(kProvider)->allow_extra_args(false);
  app.add_option("-m,--model", o->model,
                 "Embedding model (default by provider; openai's shown)")
      ->type_name("NAME")
      ->group(kProvider)->capture_default_str();
  app.add_option("--dimensions", o->dimensions,
                 "Vector length to ask for (text-embedding-3 and later); "
                 "default: the model's own")
      ->type_name("N")
      ->group(kProvider)->check(kWholeNumber)->check(CLI::Range(1, 65536));
  app.add_option("--input-type", o->input_type,
                 "What the texts are for, as the provider names it: cohere "
                 "search_document (default), search_query, classification, "
                 "clustering; voyage document, query; gemini taskType "
                 "(RETRIEVAL_DOCUMENT...)")
      ->type_name("TYPE")
      ->group(kProvider);
  app.add_option("--api-version", o->api_version,
                 "Azure OpenAI api-version (default 2024-10-21); --model "
                 "names the deployment")
      ->type_name("VERSION")
      ->group(kProvider);
  app.add_option("--api-key-env", o->api_key_env,
                 "Environment variable that holds the API key (default by "
                 "provider: AZURE_OPENAI_API_KEY, COHERE_API_KEY, "
                 "VOYAGE_API_KEY, GEMINI_API_KEY; none for ollama, tei)")
      ->type_name("NAME")
      ->group(kProvider)->capture_default_str();
  app.add_option("--api-key-file", o->api_key_file,
                 "Read the API key from the first line of FILE instead")
      ->type_name("FILE")
      ->group(kProvider);
  app.add_option("--cacert", o->ca_file,
                 "Verify the server with the CA certificates in FILE (PEM) "
                 "instead of the system's")
      ->type_name("FILE")
      ->group(kProvider);
  app.add_option("--encoding", o->encoding,
                 "Wire format of vectors: base64 or float")
      ->type_name("FORMAT")
      ->group(kProvider)->capture_default_str()
      ->check(CLI::IsMember({"base64", "float"}));

  const char* kBatching = "Batching";
  app.add_option("--batch-inputs", o->batch_inputs,
                 "Most inputs in one request (default: the provider's cap; "
                 "openai's shown)")
      ->type_name("N")
      ->group(kBatching)->capture_default_str()
      ->check(kWholeNumber)->check(CLI::Range(1, 1000000));
  app.add_option("--batch-tokens", o->batch_tokens,
                 "Most tokens in one request, by exact count and by the "
                 "bytes/4 estimate")
      ->type_name("N")
      ->group(kBatching)->capture_default_str()
      ->check(kWholeNumber)->check(CLI::Range(1, 100000000));
  app.add_option("--max-input-tokens", o->max_input_tokens,
                 "Most tokens in one input; see --overlong for longer texts")
      ->type_name("N")
      ->group(kBatching)->capture_default_str()
      ->check(kWholeNumber)->check(CLI::Range(1, 100000000));

  app.add_option("--overlong", o->overlong,
                 "A text over --max-input-tokens: split (embed the pieces, "
                 "average), truncate, skip (reject it) or fail (stop)")
      ->type_name("POLICY")
      ->group(kBatching)->capture_default_str()
      ->check(CLI::IsMember({"split", "truncate", "skip", "fail"}));
  app.add_option("--tokenizer", o->tokenizer,
                 "Count tokens with cl100k_base, o200k_base or estimate "
                 "(UTF-8 bytes, +3 per text but for openai and azure); "
                 "default: the model's own")
      ->type_name("NAME")
      ->group(kBatching)
      ->check(CLI::IsMember({"cl100k_base", "o200k_base", "estimate"}));

  const char* kTransfers = "Requests";
  app.add_option("-j,--concurrency", o->concurrency,
                 "Requests in flight at once")
      ->type_name("N")
      ->group(kTransfers)->capture_default_str()
      ->check(kWholeNumber)->check(CLI::Range(1, 1000));
  app.add_option("--connect-timeout", o->connect_timeout_s,
                 "Seconds to wait for a connection")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(kNumber)->check(CLI::Range(0.001, 3600.0));
  app.add_option("--timeout", o->timeout_s,
                 "Seconds one request may take in all")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(kNumber)->check(CLI::Range(0.001, 86400.0));
  app.add_option("--max-attempts", o->max_attempts,
                 "Tries per batch before its records are given up")
      ->type_name("N")
      ->group(kTransfers)->capture_default_str()
      ->check(kWholeNumber)->check(CLI::Range(1, 1000));
  app.add_option("--stall-timeout", o->stall_timeout_s,
                 "Retry a request after this long with no byte sent or "
                 "received")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(kWholeNumber)->check(CLI::Range(1, 86400));
  app.add_option("--max-retry-wait", o->max_retry_wait_s,
                 "Longest single wait before a retry, whatever the server "
                 "asks")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(kNumber)->check(CLI::Range(0.0, 86400.0));
  app.add_option("--max-retry-time", o->max_retry_time_s,
                 "Give a batch up if its next try would start this long after "
                 "its first; 0: never")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(kNumber)->check(CLI::Range(0.0, 864000.0));
  app.add_option("--rpm", o->rpm,
                 "Requests per minute to stay under (default: the limit the "
                 "server reports)")
      ->type_name("N")
      ->group(kTransfers)
      ->check(kWholeNumber)->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--tpm", o->tpm,
                 "Tokens per minute to stay under (default: the limit the "
                 "server reports)")
      ->type_name("N")
      ->group(kTransfers)
      ->check(kWholeNumber)->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_flag("--batch-api", o->batch_api,
               "Send through OpenAI's Batch API at half price: upload the "
               "requests as files, poll the jobs (up to 24 h), then write "
               "the output as usual; needs --checkpoint, which also keeps "
               "the job ids so that a rerun resumes them")
      ->group(kTransfers);

  const char* kCheckpoint = "Checkpoint";
  app.add_option("--checkpoint", o->checkpoint,
                 "Journal every vector received to FILE before writing it; a "
                 "rerun with the same FILE sends only what is not in it")
      ->type_name("FILE")
      ->group(kCheckpoint);
  app.add_flag("--compact", o->compact,
               "After a complete run, rewrite the --checkpoint journal to "
               "the records this run used")
      ->group(kCheckpoint);

  const char* kSync = "Incremental sync";
  app.add_option("--known", o->known_path,
                 "Rows the table holds, as id<TAB>key lines (psql's \\copy "
                 "of SELECT id, key); write only new and changed records")
      ->type_name("FILE")
      ->group(kSync);
  app.add_option("--deleted", o->deleted_path,
                 "After a complete run, write the --known ids no input line "
                 "carried to FILE, one per line (text COPY)")
      ->type_name("FILE")
      ->group(kSync);

  const char* kOutput = "Output";
  app.add_option("--errors", o->errors_path,
                 "Write rejected records as JSON lines to this file "
                 "(default: messages on stderr)")
      ->type_name("FILE")
      ->group(kOutput);
  app.add_option("--format", o->format,
                 "Output format: jsonl, tsv (PostgreSQL text COPY), csv or "
                 "binary (COPY BINARY)")
      ->type_name("FORMAT")
      ->group(kOutput)->capture_default_str()
      ->check(CLI::IsMember({"jsonl", "tsv", "csv", "binary"}));
  app.add_option("--vector", o->vector,
                 "Vector spelling: json, pgvector ([..], vector(N)), "
                 "pgarray ({..}, real[]) or halfvec ([..], halfvec(N); "
                 "binary: halves); default: json for jsonl, else pgvector")
      ->type_name("STYLE")
      ->group(kOutput)
      ->check(CLI::IsMember({"json", "pgvector", "pgarray", "halfvec"}));
  app.add_option("--columns", o->columns,
                 "Output columns in order, comma-separated: id, embedding, "
                 "carried, tokens, model, key (the content key), or a --carry "
                 "path")
      ->type_name("LIST")
      ->group(kOutput)->capture_default_str();
  CLI::Option* count = app.add_flag(
      "--count-tokens", o->count_tokens,
      "Write {\"id\":...,\"tokens\":N} for each record instead of "
      "embedding it; sends nothing, needs no key")
      ->group(kOutput);
  app.add_flag("-n,--dry-run", o->dry_run,
               "Read and tokenize everything, then report the records, "
               "batches, tokens and cost a run would send; sends and writes "
               "nothing, needs no key")
      ->group(kOutput)->excludes(count);

  const char* kMessages = "Messages";
  app.add_flag("-q,--quiet", o->quiet,
               "No progress and no summary on stderr; errors still show")
      ->group(kMessages);
  app.add_option("--progress", o->progress,
                 "Progress on stderr: a bar, log lines, none, or auto (a bar "
                 "on a terminal, else log lines)")
      ->type_name("MODE")
      ->group(kMessages)->capture_default_str()
      ->check(CLI::IsMember({"auto", "bar", "log", "none"}));
  app.add_option("--progress-interval", o->progress_interval_s,
                 "Seconds between progress lines in log mode")
      ->type_name("SECONDS")
      ->group(kMessages)->capture_default_str()
      ->check(kNumber)->check(CLI::Range(0.01, 86400.0));
  app.add_option("--stats", o->stats_path,
                 "Write the summary as one JSON object to FILE")
      ->type_name("FILE")
      ->group(kMessages);
  app.add_option("--price", o->price,
                 "Price in US dollars per million tokens, for the cost "
                 "estimate (default: the model's list price, if known)")
      ->type_name("USD")
      ->group(kMessages)->check(kNumber)->check(CLI::Range(0.0, 1e6));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    *exit_code = app.exit(e);
    return false;
  } catch (const CLI::CallForVersion& e) {
    *exit_code = app.exit(e);
    return false;
  } catch (const CLI::ParseError& e) {
    return UsageError(e.what(), exit_code);
  }
  if (o->compact && o->checkpoint.empty())
    return UsageError("--compact needs --checkpoint", exit_code);
  if (!o->deleted_path.empty() && o->known_path.empty())
    return UsageError("--deleted needs --known FILE: the ids to compare the "
                      "input with",
                      exit_code);
  if (!o->deleted_path.empty() && o->dry_run)
    return UsageError("--dry-run writes nothing; drop --deleted", exit_code);
  if (!o->known_path.empty() && o->count_tokens)
    return UsageError("--known compares content keys, which --count-tokens "
                      "does not make",
                      exit_code);
  if (!base_urls.empty()) o->base_url = base_urls.front();
  ProviderFlagsGiven given;
  given.base_url = !base_urls.empty();
  given.model = app.count("--model") > 0;
  given.api_key_env = app.count("--api-key-env") > 0;
  given.encoding = app.count("--encoding") > 0;
  given.batch_inputs = app.count("--batch-inputs") > 0;
  given.batch_tokens = app.count("--batch-tokens") > 0;
  given.max_input_tokens = app.count("--max-input-tokens") > 0;
  std::string err;
  for (const std::string& url : base_urls)
    if (!CheckBaseUrl(url, "--base-url", &err))
      return UsageError(err, exit_code);
  if (!ApplyProvider(given, [](const char* name) { return std::getenv(name); },
                     o, &err))
    return UsageError(err, exit_code);
  if (base_urls.size() > 1) o->endpoints = base_urls;
  if (o->batch_api && o->checkpoint.empty() && !o->dry_run &&
      !o->count_tokens)
    return UsageError(
        "--batch-api needs --checkpoint FILE: it keeps the vectors and the "
        "batch job ids, so that an interrupted run resumes its jobs instead "
        "of paying for them again",
        exit_code);
  if (o->batch_api && o->endpoints.size() > 1)
    return UsageError("--batch-api runs its jobs on one --base-url",
                      exit_code);
  if (o->batch_api && o->provider != "openai")
    return UsageError("--batch-api is OpenAI's Batch API: it needs "
                      "--provider openai",
                      exit_code);
  if (o->inputs.empty()) o->inputs.push_back("-");
  return true;
}
