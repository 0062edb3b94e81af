#include "transport/scheduler.h"

#include <algorithm>
#include <utility>

#include <fmt/core.h>

#include "app/diag.h"
#include "app/summary.h"

namespace {

std::vector<std::string> Urls(const std::vector<SchedulerEndpoint>& endpoints) {
  std::vector<std::string> urls;
  for (const SchedulerEndpoint& e : endpoints) urls.push_back(e.url);
  return urls;
}

void Recount(Batch* batch) {
  batch->tokens = batch->bytes = 0;
  for (const Record& r : batch->records) {
    batch->tokens += r.tokens;
    batch->bytes += r.text.size();
  }
}

// Moves the records of `batch` from index `keep` on into a new batch, and
// recounts both batches' totals.
Batch SplitOff(Batch* batch, size_t keep) {
  std::vector<Record>& all = batch->records;
  Batch rest;
  rest.number = batch->number;
  rest.records.assign(std::make_move_iterator(all.begin() + keep),
                      std::make_move_iterator(all.end()));
  all.resize(keep);
  Recount(batch);
  Recount(&rest);
  return rest;
}

// A slot's share of the work left is not cut finer than this: below it a
// request's fixed cost (a round trip, hundreds of milliseconds at the
// hosted APIs) outweighs the time that balancing the slots saves. The
// first request to a server, which the other slots wait for, is cut to it
// too.
constexpr uint64_t kMinShareTokens = 8192;

}  // namespace

Scheduler::Scheduler(Transport* transport,
                     std::vector<SchedulerEndpoint> endpoints,
                     const Clock* clock, SchedulerConfig config)
    : transport_(transport), clock_(clock), config_(config),
      random_(config.seed),
      pool_(Urls(endpoints), config.concurrency, config.rpm, config.tpm) {
  for (const SchedulerEndpoint& e : endpoints) codecs_.push_back(e.codec);
}

void Scheduler::Submit(Batch batch) {
  ++outstanding_;
  waiting_.push_back(Job{std::move(batch), 0, 0, -1});
  // At once, so that queued() counts only what must wait.
  StartDue(clock_->NowMs());
}

void Scheduler::StartDue(int64_t now) {
  paced_until_ms_ = -1;
  while (!stopped_ && pool_.HasFreeSlot(now)) {
    // The due job holding the earliest input goes first: output is released
    // in input order, so it is what the writer waits for.
    auto best = waiting_.end();
    for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
      if (it->not_before_ms > now) continue;
      if (best == waiting_.end() ||
          it->batch.records.front().seq < best->batch.records.front().seq)
        best = it;
    }
    if (best == waiting_.end()) return;
    if (pool_.TooLarge(best->batch.tokens)) {
      // More tokens than the whole per-minute budget: the server would
      // refuse it however long we waited.
      Job job = std::move(*best);
      waiting_.erase(best);
      if (job.batch.records.size() > 1) {
        Split(std::move(job));
        continue;
      }
      BatchResult result;
      result.status = BatchResult::kRejected;
      result.error = fmt::format(
          "text has {} tokens, more than the whole tokens-per-minute limit "
          "of {}",
          GroupThousands(job.batch.tokens),
          GroupThousands(static_cast<uint64_t>(pool_.tpm())));
      result.batch = std::move(job.batch);
      Complete(std::move(result));
      continue;
    }
    if (input_ended_) {
      size_t index = static_cast<size_t>(best - waiting_.begin());
      CutToShare(&waiting_[index], now);  // may grow waiting_
      best = waiting_.begin() + static_cast<std::ptrdiff_t>(index);
    }
    // No request takes a large bite of a known token budget: processes
    // sharing the key could not split it finely (RateLimiter::Slice). May
    // grow waiting_.
    if (uint64_t slice = pool_.Slice(); slice > 0) {
      size_t index = static_cast<size_t>(best - waiting_.begin());
      CutTo(&waiting_[index], std::max(kMinShareTokens, slice));
      best = waiting_.begin() + static_cast<std::ptrdiff_t>(index);
    }
    // Pacing holds back the head rather than letting a later, smaller
    // batch overtake it: the writer is waiting for the head.
    int64_t at;
    int endpoint = pool_.Pick(now, best->batch.tokens, best->endpoint, &at);
    if (endpoint < 0) {
      if (at > now) {
        paced_until_ms_ = at;
        head_paced_ = true;
      }
      return;
    }
    if (head_paced_) {
      ++stats_.paced;
      head_paced_ = false;
    }
    if (pool_.Probing(static_cast<size_t>(endpoint))) {
      // The other slots wait for this answer: a small request brings it
      // sooner than a full one would (6 s for 300,000 tokens at the hosted
      // APIs' pace).
      size_t index = static_cast<size_t>(best - waiting_.begin());
      CutTo(&waiting_[index], kMinShareTokens);  // may grow waiting_
      best = waiting_.begin() + static_cast<std::ptrdiff_t>(index);
    }
    Job job = std::move(*best);
    waiting_.erase(best);
    ++job.attempts;
    ++stats_.requests;
    stats_.tokens_sent += job.batch.tokens;
    if (!job.went_out) stats_.tokens_went_out += job.batch.tokens;
    job.went_out = true;
    if (job.first_start_ms < 0) job.first_start_ms = now;
    uint64_t tag = next_tag_++;
    job.endpoint = endpoint;
    job.started_ms = now;
    pool_.Started(static_cast<size_t>(endpoint), tag, now, job.batch.tokens);
    transport_->Start(tag, CodecOf(job).EncodeRequest(job.batch));
    in_flight_.emplace(tag, std::move(job));
  }
}

size_t Scheduler::queued() const {
  return static_cast<size_t>(std::count_if(
      waiting_.begin(), waiting_.end(),
      [](const Job& job) { return job.attempts == 0; }));
}

void Scheduler::Step(int max_wait_ms, int watch_fd, bool* fd_ready) {
  int64_t now = clock_->NowMs();
  StartDue(now);
  int64_t wait = max_wait_ms;
  // With every slot busy, only a finished transfer (which ends the wait
  // early) lets anything start; otherwise wake for the next retry that
  // falls due or the moment pacing lets the head go.
  if (!stopped_ && pool_.HasFreeSlot(now)) {
    if (paced_until_ms_ >= 0) wait = std::min(wait, paced_until_ms_ - now);
    for (const Job& job : waiting_)
      if (job.not_before_ms > now)
        wait = std::min(wait, job.not_before_ms - now);
  }
  if (!results_.empty()) wait = 0;
  transport_->Wait(static_cast<int>(std::max<int64_t>(0, wait)), watch_fd,
                   fd_ready);
  uint64_t tag;
  HttpResponse response;
  while (transport_->NextFinished(&tag, &response)) {
    auto it = in_flight_.find(tag);
    Job job = std::move(it->second);
    in_flight_.erase(it);
    Finish(tag, std::move(job), std::move(response));
  }
  StartDue(clock_->NowMs());
}

void Scheduler::Finish(uint64_t tag, Job job, HttpResponse response) {
  pool_.Finished(static_cast<size_t>(job.endpoint), tag, clock_->NowMs(),
                 response);
  ApiError api;
  if (response.status != 0 && (response.status < 200 || response.status >= 300))
    api = CodecOf(job).ParseError(response);
  if (response.status >= 300 && response.status < 400)
    api.message = RedirectMessage(response);
  std::string http_error =
      fmt::format("HTTP {}: {}", response.status, api.message);
  switch (Classify(response, api.code, api.message)) {
    case Outcome::kOk: {
      BatchResult result;
      std::string err;
      if (!CodecOf(job).DecodeResponse(response, job.batch,
                                       &result.embeddings, &err)) {
        Retry(std::move(job), response, "unusable response: " + err);
        return;
      }
      served_tokens_ += job.batch.tokens;
      served_ms_ += clock_->NowMs() - job.started_ms;
      result.batch = std::move(job.batch);
      Complete(std::move(result));
      return;
    }
    case Outcome::kRetry: {
      if (response.status == 429) ++stats_.rate_limited;
      Retry(std::move(job), response,
            response.status == 0 ? response.transport_error : http_error);
      return;
    }
    case Outcome::kGiveUp:
      GiveUp(std::move(job),
             http_error + " (the server said not to retry: x-should-retry)");
      return;
    case Outcome::kTooLarge:
      ++stats_.rate_limited;
      [[fallthrough]];
    case Outcome::kRejected: {
      BatchResult result;
      ContextRefusal refusal;
      bool too_long = response.status == 400 &&
                      ParseContextRefusal(api.code, api.message, &refusal);
      result.status = too_long ? BatchResult::kTooLong : BatchResult::kRejected;
      result.server_max_tokens = refusal.max_tokens;
      result.error = fmt::format("rejected by the API (HTTP {}): {}",
                                 response.status, api.message);
      std::vector<Record>& records = job.batch.records;
      if (too_long && records.size() > 1 && refusal.index >= 0 &&
          static_cast<uint64_t>(refusal.index) < records.size()) {
        // The server named the input: it alone is refused, and the others
        // go again as a new request, with no bisection.
        ++stats_.splits;
        auto named = records.begin() + refusal.index;
        result.batch.number = job.batch.number;
        result.batch.records.push_back(std::move(*named));
        records.erase(named);
        Recount(&result.batch);
        Recount(&job.batch);
        ++outstanding_;
        Job rest{std::move(job.batch), 0, 0, -1};
        rest.went_out = true;
        waiting_.push_back(std::move(rest));
        Complete(std::move(result));
        return;
      }
      if (records.size() > 1) {
        // Bisect: the good records still get embedded, the bad ones are
        // isolated one request at a time. A batch too large for the
        // per-minute budget shrinks the same way until its parts fit.
        Split(std::move(job));
        return;
      }
      result.batch = std::move(job.batch);
      Complete(std::move(result));
      return;
    }
    case Outcome::kFatal: {
      if (fatal_message_.empty()) fatal_message_ = http_error;
      stopped_ = true;
      // The batch stays unanswered: it was not embedded, and a later run
      // (after the key or quota is fixed) sends it again.
      waiting_.push_back(std::move(job));
      return;
    }
  }
}

void Scheduler::Split(Job job) {
  ++stats_.splits;
  Batch second = SplitOff(&job.batch, job.batch.records.size() / 2);
  ++outstanding_;  // one batch became two
  // The halves are new requests: their own attempts and retry time.
  Job first{std::move(job.batch), 0, 0, -1};
  first.went_out = job.went_out;
  Job rest{std::move(second), 0, 0, -1};
  rest.went_out = job.went_out;
  waiting_.push_back(std::move(first));
  waiting_.push_back(std::move(rest));
}

void Scheduler::CutToShare(Job* job, int64_t now) {
  uint64_t slots = pool_.size() * static_cast<uint64_t>(config_.concurrency);
  CutTo(job, std::max(kMinShareTokens, (TokensLeft(now) + slots - 1) / slots));
}

// Cuts `job` to its first records within `share` tokens (at least one), the
// rest going back to wait as a batch of their own.
void Scheduler::CutTo(Job* job, uint64_t share) {
  // A retry keeps the batch its attempts were counted for.
  if (job->attempts > 0 || job->batch.records.size() < 2) return;
  // A little over its share is not worth another request.
  if (job->batch.tokens <= share + share / 4) return;
  const std::vector<Record>& records = job->batch.records;
  size_t keep = 1;
  uint64_t tokens = records[0].tokens;
  while (keep < records.size() && tokens + records[keep].tokens <= share)
    tokens += records[keep++].tokens;
  if (keep == records.size()) return;
  Job rest{SplitOff(&job->batch, keep), 0, 0, -1};
  rest.went_out = job->went_out;
  ++outstanding_;
  waiting_.push_back(std::move(rest));  // `job` may dangle from here on
}

uint64_t Scheduler::TokensLeft(int64_t now) const {
  uint64_t left = 0;
  for (const Job& job : waiting_) left += job.batch.tokens;
  for (const auto& [tag, job] : in_flight_) {
    // Until a request has been answered, the pace is unknown: a request in
    // flight counts whole.
    uint64_t served =
        served_ms_ > 0 ? served_tokens_ * static_cast<uint64_t>(
                                              now - job.started_ms) /
                             static_cast<uint64_t>(served_ms_)
                       : 0;
    left += job.batch.tokens - std::min(job.batch.tokens, served);
  }
  return left;
}

void Scheduler::Retry(Job job, const HttpResponse& response,
                      const std::string& why) {
  size_t n = job.batch.records.size();
  if (job.attempts >= config_.max_attempts) {
    GiveUp(std::move(job),
           fmt::format("gave up after {}: {}",
                       CountNoun(job.attempts, "attempt", "attempts"), why));
    return;
  }
  int64_t now = clock_->NowMs();
  int64_t delay = RetryDelayMs(response, job.attempts, config_.backoff,
                               random_(), clock_->UnixSeconds());
  if (config_.max_retry_time_ms > 0 &&
      now + delay - job.first_start_ms > config_.max_retry_time_ms) {
    GiveUp(std::move(job),
           fmt::format("gave up after {} in {:.1f} s (the retry time "
                       "limit is {:g} s): {}",
                       CountNoun(job.attempts, "attempt", "attempts"),
                       (now - job.first_start_ms) / 1000.0,
                       config_.max_retry_time_ms / 1000.0, why));
    return;
  }
  // A 429 says the whole key is over its limit, not this batch: every
  // start waits, or the other batches would walk into the same 429.
  if (response.status == 429)
    pool_.Hold(static_cast<size_t>(job.endpoint), now + delay);
  diag::Warning(fmt::format(
      "batch of {} starting at input line {}: {}; retrying in {:.1f} s "
      "(attempt {} of {})",
      CountNoun(n, "record", "records"), job.batch.records.front().line, why,
      delay / 1000.0, job.attempts + 1, config_.max_attempts));
  if (response.status == 0) ++stats_.retries.network;
  else if (response.status == 429) ++stats_.retries.rate_limited;
  else if (response.status < 300) ++stats_.retries.bad_response;
  else ++stats_.retries.server;
  job.not_before_ms = now + delay;
  waiting_.push_back(std::move(job));
}

void Scheduler::GiveUp(Job job, const std::string& why) {
  ++stats_.gave_up;
  BatchResult result;
  result.status = BatchResult::kFailed;
  result.error = why;
  result.batch = std::move(job.batch);
  Complete(std::move(result));
}

void Scheduler::Complete(BatchResult result) {
  results_.push_back(std::move(result));
}

bool Scheduler::NextResult(BatchResult* out) {
  if (results_.empty()) return false;
  *out = std::move(results_.front());
  results_.pop_front();
  --outstanding_;
  return true;
}

void Scheduler::TakeUnanswered(std::vector<Batch>* out) {
  for (Job& job : waiting_) out->push_back(std::move(job.batch));
  outstanding_ -= waiting_.size();
  waiting_.clear();
}

void Scheduler::CancelInFlight() {
  transport_->CancelAll();
  for (auto& [tag, job] : in_flight_) {
    pool_.Abandoned(static_cast<size_t>(job.endpoint), tag);
    waiting_.push_back(std::move(job));
  }
  in_flight_.clear();
}
