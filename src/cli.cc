#include "cli.h"

#include <CLI/CLI.hpp>

#include "exit_status.h"
#include "version.h"

namespace {

constexpr const char* kDescription =
    "embedpipe: turns JSONL document sections into embeddings.\n"
    "Reads one JSON object per line from FILEs (or stdin), sends the texts "
    "in batches to an embeddings API, and writes one JSON line per record to "
    "stdout, in input order.\n";

constexpr const char* kFooter =
    "Exit status: 0 all embedded, 1 usage error, 2 some records rejected, "
    "3 stopped by an API error, 4 output error, 130 interrupted.\n"
    "The API key is read from $OPENAI_API_KEY (see --api-key-env). "
    "See embedpipe(1) for details.";

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
      ->group(kInput)->take_all();
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
  app.add_option("--base-url", o->base_url,
                 "API base URL; $OPENAI_BASE_URL if set")
      ->type_name("URL")
      ->group(kProvider)->capture_default_str()->envname("OPENAI_BASE_URL");
  app.add_option("-m,--model", o->model, "Embedding model")
      ->type_name("NAME")
      ->group(kProvider)->capture_default_str();
  app.add_option("--dimensions", o->dimensions,
                 "Vector length to ask for (text-embedding-3 and later); "
                 "default: the model's own")
      ->type_name("N")
      ->group(kProvider)->check(CLI::Range(1, 65536));
  app.add_option("--api-key-env", o->api_key_env,
                 "Environment variable that holds the API key")
      ->type_name("NAME")
      ->group(kProvider)->capture_default_str();
  app.add_option("--encoding", o->encoding,
                 "Wire format of vectors: base64 or float")
      ->type_name("FORMAT")
      ->group(kProvider)->capture_default_str()
      ->check(CLI::IsMember({"base64", "float"}));

  const char* kBatching = "Batching";
  app.add_option("--batch-inputs", o->batch_inputs,
                 "Most inputs in one request")
      ->type_name("N")
      ->group(kBatching)->capture_default_str()->check(CLI::Range(1, 1000000));
  app.add_option("--batch-tokens", o->batch_tokens,
                 "Most tokens in one request, by exact count and by the "
                 "bytes/4 estimate")
      ->type_name("N")
      ->group(kBatching)->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  app.add_option("--max-input-tokens", o->max_input_tokens,
                 "Most tokens in one input; see --overlong for longer texts")
      ->type_name("N")
      ->group(kBatching)->capture_default_str()
      ->check(CLI::Range(1, 100000000));

  app.add_option("--overlong", o->overlong,
                 "A text over --max-input-tokens: split (embed the pieces, "
                 "average), truncate, skip (reject it) or fail (stop)")
      ->type_name("POLICY")
      ->group(kBatching)->capture_default_str()
      ->check(CLI::IsMember({"split", "truncate", "skip", "fail"}));
  app.add_option("--tokenizer", o->tokenizer,
                 "Count tokens with cl100k_base, o200k_base or estimate "
                 "(UTF-8 bytes); default: the model's own")
      ->type_name("NAME")
      ->group(kBatching)
      ->check(CLI::IsMember({"cl100k_base", "o200k_base", "estimate"}));

  const char* kTransfers = "Requests";
  app.add_option("-j,--concurrency", o->concurrency,
                 "Requests in flight at once")
      ->type_name("N")
      ->group(kTransfers)->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--connect-timeout", o->connect_timeout_s,
                 "Seconds to wait for a connection")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--timeout", o->timeout_s,
                 "Seconds one request may take in all")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("--max-attempts", o->max_attempts,
                 "Tries per batch before its records are given up")
      ->type_name("N")
      ->group(kTransfers)->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--stall-timeout", o->stall_timeout_s,
                 "Retry a request after this long with no byte sent or "
                 "received")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(CLI::Range(1, 86400));
  app.add_option("--max-retry-wait", o->max_retry_wait_s,
                 "Longest single wait before a retry, whatever the server "
                 "asks")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--max-retry-time", o->max_retry_time_s,
                 "Give a batch up if its next try would start this long after "
                 "its first; 0: never")
      ->type_name("SECONDS")
      ->group(kTransfers)->capture_default_str()
      ->check(CLI::Range(0.0, 864000.0));
  app.add_option("--rpm", o->rpm,
                 "Requests per minute to stay under (default: the limit the "
                 "server reports)")
      ->type_name("N")
      ->group(kTransfers)->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--tpm", o->tpm,
                 "Tokens per minute to stay under (default: the limit the "
                 "server reports)")
      ->type_name("N")
      ->group(kTransfers)->check(CLI::Range(int64_t{1}, int64_t{1} << 40));

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
                 "Vector spelling: json, pgvector ([..], vector(N)) or "
                 "pgarray ({..}, real[]); default: json for jsonl, else "
                 "pgvector")
      ->type_name("STYLE")
      ->group(kOutput)
      ->check(CLI::IsMember({"json", "pgvector", "pgarray"}));
  app.add_option("--columns", o->columns,
                 "Output columns in order, comma-separated: id, embedding, "
                 "carried, tokens, model, or a --carry path")
      ->type_name("LIST")
      ->group(kOutput)->capture_default_str();
  app.add_flag("--count-tokens", o->count_tokens,
               "Write {\"id\":...,\"tokens\":N} for each record instead of "
               "embedding it; sends nothing, needs no key")
      ->group(kOutput);
  app.add_flag("-q,--quiet", o->quiet, "No progress or summary on stderr")
      ->group(kOutput);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    *exit_code = app.exit(e);
    return false;
  } catch (const CLI::CallForVersion& e) {
    *exit_code = app.exit(e);
    return false;
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "embedpipe: error: %s\nTry 'embedpipe --help'.\n",
                 msg.c_str());
    *exit_code = kExitUsage;
    return false;
  }
  if (o->compact && o->checkpoint.empty()) {
    std::fprintf(stderr, "embedpipe: error: --compact needs --checkpoint\n"
                         "Try 'embedpipe --help'.\n");
    *exit_code = kExitUsage;
    return false;
  }
  if (o->inputs.empty()) o->inputs.push_back("-");
  return true;
}
