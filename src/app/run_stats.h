// The counters of one run that the progress line, the final summary, the
// --stats file and --dry-run report: one struct, filled by the pipeline and
// the scheduler, read by summary.cc and progress.cc. Plain data.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct RetryCounts {
  uint64_t rate_limited = 0;  ///< After a 429.
  uint64_t server = 0;        ///< After a 408, 409 or 5xx.
  uint64_t network = 0;       ///< After a connection error, timeout or stall.
  uint64_t bad_response = 0;  ///< After a 2xx whose body did not fit.

  uint64_t total() const {
    return rate_limited + server + network + bad_response;
  }
};

struct EndpointCounts {
  std::string url;
  uint64_t requests = 0;   ///< Started.
  uint64_t failures = 0;   ///< No answer, or a 5xx.
  uint64_t set_aside = 0;  ///< Times set aside for failing in a row.
};

/// --batch-api: the jobs created (by this run or an earlier one it
/// resumes), as the API last reported them.
struct BatchJobCounts {
  uint64_t jobs = 0;
  /// Jobs by status, in the order a job goes through them.
  std::vector<std::pair<std::string, uint64_t>> states;
  /// Their request_counts, summed.
  uint64_t total = 0, completed = 0, failed = 0;
};

struct RunStats {
  bool dry_run = false;
  /// A checkpoint is kept, so every repeat of a text is answered without a
  /// request; without one, only a repeat of a text still in flight is.
  bool checkpoint = false;
  std::string model;

  // Records, by what became of them. read = embedded + rejected +
  // unchanged, plus, when a run with a checkpoint stops early, the records
  // not answered.
  uint64_t read = 0;          ///< Non-blank lines.
  uint64_t embedded = 0;      ///< Written (in a dry run: would be sent or
                              ///< answered from the checkpoint).
  uint64_t from_journal = 0;  ///< Of embedded: answered by the checkpoint.
  uint64_t duplicates = 0;    ///< Of embedded: same text as an earlier one.
  uint64_t truncated = 0;     ///< Cut at --max-input-tokens.
  uint64_t split = 0;         ///< Sent in pieces and averaged.
  uint64_t rejected = 0;      ///< In the errors output.
  uint64_t other_shards = 0;  ///< Lines left to the other --shard processes.

  // --known: the records against the table's rows.
  bool known = false;         ///< --known was given.
  uint64_t unchanged = 0;     ///< Left out: the table has the same key.
  uint64_t changed = 0;       ///< Written for a known id: another key, or a
                              ///< later line of an id already written.
  uint64_t new_ids = 0;       ///< Written for an id the table does not have.
  uint64_t deleted = 0;       ///< Known ids listed in --deleted.
  bool list_deleted = false;  ///< --deleted was given.
  /// Why no deletions were written, when --deleted was given; empty when
  /// they were.
  std::string deletions_withheld;

  // Requests.
  uint64_t batches = 0;       ///< Batches formed (a dry run's requests).
  uint64_t requests = 0;      ///< Attempts sent, retries included.
  uint64_t rate_limited = 0;  ///< 429 answers.
  RetryCounts retries;
  uint64_t gave_up = 0;       ///< Batches failed after their last try.
  uint64_t in_flight = 0;     ///< Requests under way (progress only).
  /// Per --base-url, when there are several; empty otherwise.
  std::vector<EndpointCounts> endpoints;
  BatchJobCounts batch_jobs;

  // Tokens.
  /// Counted by embedpipe, in the requests sent, retries included: what
  /// the server received. A dry run: in the batches formed.
  uint64_t tokens_sent = 0;
  /// In batches formed but never sent: the run stopped first.
  uint64_t tokens_unsent = 0;
  uint64_t tokens_reported = 0;  ///< usage.prompt_tokens, where given.

  // Input position, for the progress fraction when input files are regular.
  uint64_t input_bytes_done = 0;
  uint64_t input_bytes_total = 0;  ///< 0: unknown (a pipe or terminal).

  int64_t elapsed_ms = 0;

  /// List price in US dollars per million tokens (price_table.h or
  /// --price); negative when unknown.
  double usd_per_million = -1;
  /// The price is the Batch API's, half the list price (--batch-api).
  bool batch_api = false;

  /// Tokens the run pays for: what the server reported when it reported
  /// anything, else embedpipe's own count.
  uint64_t billed_tokens() const {
    return tokens_reported ? tokens_reported : tokens_sent;
  }
};
