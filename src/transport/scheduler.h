// Runs batches as HTTP requests: at most N in flight per endpoint, refilled
// as each finishes, on the least busy endpoint in service (endpoint_pool.h),
// each started no sooner than that endpoint's rate limits allow (pacing); a
// failed attempt is rescheduled with a not-before time (never slept), within
// caps on attempts and on retry time; a 429 holds back every start for the
// time the server names; a batch the API rejects is split in halves until
// the bad records are isolated (at once, when the refusal names the input
// over the server's context length), and one bigger than the whole tokens-per-
// minute budget is split until its parts fit; the first request to a
// server, which its other slots wait for (endpoint_pool.h), is cut small;
// once the input has ended, a batch starts with no more than its slot's
// share of the work left, so that the slots finish together; an error no
// request can survive stops new requests.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "app/run_stats.h"
#include "input/record.h"
#include "providers/codec.h"
#include "transport/clock.h"
#include "transport/endpoint_pool.h"
#include "transport/retry_policy.h"
#include "transport/transport.h"

/// A server requests go to.
struct SchedulerEndpoint {
  std::string url;     ///< Its --base-url, for counts and messages.
  const Codec* codec;  ///< Builds its requests (rooted at `url`) and reads
                       ///< its answers.
};

struct SchedulerConfig {
  int concurrency = 5;      ///< Per endpoint.
  int max_attempts = 8;     ///< Per batch, the first included.
  BackoffConfig backoff;
  uint64_t seed = 0;        ///< For backoff jitter.
  /// A batch is given up rather than retried when its next attempt would
  /// start more than this after its first one; 0: no limit.
  int64_t max_retry_time_ms = 600000;
  int64_t rpm = 0;          ///< Requests per minute; 0: as the server says.
  int64_t tpm = 0;          ///< Tokens per minute; 0: as the server says.
};

struct BatchResult {
  enum Status {
    kEmbedded,  ///< embeddings holds one vector per record.
    kRejected,  ///< The API refused this (single-record) batch: error says why.
    kTooLong,   ///< As kRejected, the record being over the server's context
                ///< length (retry_policy.h: ParseContextRefusal).
    kFailed,    ///< Retries ran out: error says what happened last.
  };
  Status status = kEmbedded;
  int64_t server_max_tokens = -1;  ///< kTooLong: the limit it stated, or -1.
  Batch batch;
  Embeddings embeddings;
  std::string error;
};

struct SchedulerStats {
  uint64_t requests = 0;       ///< Attempts started.
  RetryCounts retries;         ///< Attempts rescheduled, by cause.
  uint64_t rate_limited = 0;   ///< 429 responses.
  uint64_t splits = 0;         ///< Batches split in two (rejected or too
                               ///< large for the tokens-per-minute limit).
  uint64_t paced = 0;          ///< Starts held back by the rate limits.
  uint64_t gave_up = 0;        ///< Batches failed for good (caps, or the
                               ///< server said not to retry).
  uint64_t tokens_sent = 0;    ///< In the requests started, retries included:
                               ///< what the server received.
  /// Of the batches submitted, the tokens that went out at least once (in
  /// them or in a batch they were split from); the rest were never sent.
  uint64_t tokens_went_out = 0;
};

class Scheduler {
 public:
  /// `endpoints`: at least one; requests are spread over them. All
  /// pointers must outlive the scheduler.
  Scheduler(Transport* transport, std::vector<SchedulerEndpoint> endpoints,
            const Clock* clock, SchedulerConfig config);

  /// Queues `batch` to be sent as soon as a slot is free.
  void Submit(Batch batch);

  /// Says that no batch will be submitted any more. From then on a batch
  /// about to start is cut to its slot's share of the tokens left (those
  /// waiting, and those in flight not yet served by the server's observed
  /// pace), its later records going back to wait: without that, the last
  /// full batches run alone while the other slots idle, for up to one whole
  /// request's time. This adds at most a few requests, at the end.
  void EndInput() { input_ended_ = true; }

  /// Starts every due batch that fits, then waits at most `max_wait_ms`
  /// (less when a retry falls due sooner) for a transfer to finish or
  /// `watch_fd` (if >= 0) to be readable (*fd_ready), and handles every
  /// finished transfer.
  void Step(int max_wait_ms, int watch_fd, bool* fd_ready);

  /// Moves one finished batch to *out. False when none is ready.
  bool NextResult(BatchResult* out);

  /// Batches submitted and not yet returned by NextResult.
  size_t outstanding() const { return outstanding_; }
  /// Requests in flight now.
  size_t in_flight() const { return in_flight_.size(); }
  /// Batches never sent yet, waiting only for a free slot or for pacing
  /// (retries waiting out their delay are not counted).
  size_t queued() const;
  /// The endpoints and what each did.
  const EndpointPool& endpoints() const { return pool_; }

  /// Sends nothing more; requests in flight still finish.
  void StopStarting() { stopped_ = true; }
  /// Abandons the requests in flight; their batches are not reported.
  void CancelInFlight();
  /// Once stopped with nothing in flight: moves every batch not answered
  /// (never sent, waiting for a retry, or abandoned) to *out, in no order.
  void TakeUnanswered(std::vector<Batch>* out);

  /// True once an error that no request can survive was seen (bad key,
  /// quota, unknown model); fatal_message() says what the API said.
  bool fatal() const { return !fatal_message_.empty(); }
  const std::string& fatal_message() const { return fatal_message_; }

  const SchedulerStats& stats() const { return stats_; }

 private:
  struct Job {
    Batch batch;
    int attempts = 0;
    int64_t not_before_ms = 0;
    int64_t first_start_ms = -1;  ///< When the first attempt started.
    int endpoint = -1;            ///< Of the last attempt.
    int64_t started_ms = 0;       ///< When the last attempt started.
    bool went_out = false;        ///< Its records were sent before, in it
                                  ///< or in a batch it was split from.
  };

  void StartDue(int64_t now);
  void Finish(uint64_t tag, Job job, HttpResponse response);
  void Retry(Job job, const HttpResponse& response, const std::string& why);
  void GiveUp(Job job, const std::string& why);
  void Split(Job job);
  void CutToShare(Job* job, int64_t now);
  void CutTo(Job* job, uint64_t share);
  uint64_t TokensLeft(int64_t now) const;
  void Complete(BatchResult result);

  /// Of the endpoint `job` last went to.
  const Codec& CodecOf(const Job& job) const {
    return *codecs_[static_cast<size_t>(job.endpoint)];
  }

  Transport* transport_;
  std::vector<const Codec*> codecs_;  ///< Per endpoint, as in pool_.
  const Clock* clock_;
  SchedulerConfig config_;
  std::mt19937_64 random_;
  EndpointPool pool_;
  /// When pacing next lets the waiting head start; -1 when it does not wait.
  int64_t paced_until_ms_ = -1;
  bool head_paced_ = false;  ///< The next start was held back by pacing.
  std::vector<Job> waiting_;
  std::unordered_map<uint64_t, Job> in_flight_;
  std::deque<BatchResult> results_;
  uint64_t next_tag_ = 0;
  size_t outstanding_ = 0;
  bool stopped_ = false;
  bool input_ended_ = false;
  // Tokens and milliseconds of the requests answered so far: the server's
  // pace, for how much of a request in flight is left to serve.
  uint64_t served_tokens_ = 0;
  int64_t served_ms_ = 0;
  std::string fatal_message_;
  SchedulerStats stats_;
};
