// Every setting of a run, as plain values with their defaults, and the two
// facts derived from them that more than one module needs. Filled by
// cli.cc; read by the pipeline. Includes no library headers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct Options {
  // Input.
  std::vector<std::string> inputs;  ///< Files to read in order; "-" is stdin.
  std::string id_field = "id";
  std::string text_field = "text";
  std::vector<std::string> carry_fields;
  std::string normalize = "nfc";        ///< nfc | nfkc | none
  std::string invalid_utf8 = "replace"; ///< replace | reject
  std::string shard;                    ///< "K/N"; empty: every record.

  // Provider.
  std::string base_url = "https://api.openai.com/v1";
  /// Every --base-url in order when given more than once (a pool; the
  /// first is base_url); otherwise empty.
  std::vector<std::string> endpoints;
  std::string model = "text-embedding-3-small";
  int dimensions = 0;                   ///< 0: the model's native size.
  std::string api_key_env = "OPENAI_API_KEY";
  std::string api_key_file;             ///< Key from this file instead.
  std::string ca_file;                  ///< CA bundle; empty: the system's.
  std::string encoding = "base64";      ///< base64 | float (on the wire)
  std::string tokenizer;                ///< Empty: chosen by model.
  std::string provider = "openai";      ///< See provider.h for the others.
  std::string input_type;               ///< Empty: the provider's default.
  std::string api_version;              ///< Azure OpenAI's; empty: default.

  // Batching.
  int batch_inputs = 2048;
  int batch_tokens = 300000;
  int max_input_tokens = 8191;
  std::string overlong = "split";       ///< split | truncate | skip | fail

  // Transfers.
  int concurrency = 5;
  double connect_timeout_s = 10;
  double timeout_s = 300;               ///< Whole request, including the body.
  int max_attempts = 8;                 ///< Per batch, the first try included.
  int stall_timeout_s = 60;             ///< No byte sent or received this long.
  double max_retry_wait_s = 60;         ///< Longest single wait before a retry.
  double max_retry_time_s = 600;        ///< Per batch, first try to last; 0: none.
  int64_t rpm = 0;                      ///< Requests per minute; 0: the server's.
  int64_t tpm = 0;                      ///< Tokens per minute; 0: the server's.
  bool batch_api = false;               ///< Through the Batch API (batch_api.h).

  // Checkpoint.
  std::string checkpoint;               ///< Journal file; empty: none.
  bool compact = false;                 ///< Rewrite it to what this run used.

  // Incremental sync (known_ids.h).
  std::string known_path;               ///< id<TAB>key rows a table holds.
  std::string deleted_path;             ///< Known ids the input lacks.

  // Output.
  std::string errors_path;              ///< Empty: error records go to stderr.
  std::string format = "jsonl";         ///< jsonl | tsv | csv | binary
  std::string vector;                   ///< json | pgvector | pgarray |
                                        ///< halfvec; empty: json for
                                        ///< jsonl, else pgvector.
  std::string columns = "id,embedding,carried";  ///< See OutputConfig.

  bool count_tokens = false;            ///< Write counts; send nothing.
  bool dry_run = false;                 ///< Count what would be sent; send
                                        ///< and write nothing.

  // Messages.
  bool quiet = false;
  std::string progress = "auto";        ///< auto | bar | log | none
  double progress_interval_s = 30;      ///< Between lines in log mode.
  std::string stats_path;               ///< The summary as JSON; empty: none.
  double price = -1;                    ///< USD per million tokens; < 0: the
                                        ///< price table's.
};

/// The servers requests go to: every --base-url of a pool, else base_url.
inline std::vector<std::string> EndpointUrls(const Options& o) {
  if (o.endpoints.empty()) return {o.base_url};
  return o.endpoints;
}

/// The most requests in flight at once: -j on each endpoint.
inline int RequestSlots(const Options& o) {
  return o.concurrency * static_cast<int>(EndpointUrls(o).size());
}
