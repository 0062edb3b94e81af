#include "scheduler.h"

#include <algorithm>
#include <utility>

#include <fmt/core.h>

#include "diag.h"

Scheduler::Scheduler(Transport* transport, const Codec* codec,
                     const Clock* clock, SchedulerConfig config)
    : transport_(transport), codec_(codec), clock_(clock), config_(config),
      random_(config.seed) {}

void Scheduler::Submit(Batch batch) {
  ++outstanding_;
  waiting_.push_back(Job{std::move(batch), 0, 0});
}

void Scheduler::StartDue(int64_t now) {
  while (!stopped_ &&
         in_flight_.size() < static_cast<size_t>(config_.concurrency)) {
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
    Job job = std::move(*best);
    waiting_.erase(best);
    ++job.attempts;
    ++stats_.requests;
    uint64_t tag = next_tag_++;
    transport_->Start(tag, codec_->EncodeRequest(job.batch));
    in_flight_.emplace(tag, std::move(job));
  }
}

void Scheduler::Step(int max_wait_ms, int watch_fd, bool* fd_ready) {
  int64_t now = clock_->NowMs();
  StartDue(now);
  int64_t wait = max_wait_ms;
  if (!stopped_) {
    for (const Job& job : waiting_)
      wait = std::min(wait, std::max<int64_t>(0, job.not_before_ms - now));
  }
  if (!results_.empty()) wait = 0;
  transport_->Wait(static_cast<int>(wait), watch_fd, fd_ready);
  uint64_t tag;
  HttpResponse response;
  while (transport_->NextFinished(&tag, &response)) {
    auto it = in_flight_.find(tag);
    Job job = std::move(it->second);
    in_flight_.erase(it);
    Finish(std::move(job), std::move(response));
  }
  StartDue(clock_->NowMs());
}

void Scheduler::Finish(Job job, HttpResponse response) {
  ApiError api;
  if (response.status != 0 && (response.status < 200 || response.status >= 300))
    api = codec_->ParseError(response);
  switch (Classify(response, api.code)) {
    case Outcome::kOk: {
      BatchResult result;
      std::string err;
      if (!codec_->DecodeResponse(response, job.batch, &result.embeddings,
                                  &err)) {
        Retry(std::move(job), response, "unusable response: " + err);
        return;
      }
      result.batch = std::move(job.batch);
      Complete(std::move(result));
      return;
    }
    case Outcome::kRetry: {
      if (response.status == 429) ++stats_.rate_limited;
      std::string why = response.status == 0
                            ? response.transport_error
                            : fmt::format("HTTP {}: {}", response.status,
                                          api.message);
      Retry(std::move(job), response, why);
      return;
    }
    case Outcome::kRejected: {
      if (job.batch.records.size() > 1) {
        // Bisect: the good records still get embedded, the bad ones are
        // isolated one request at a time.
        ++stats_.splits;
        std::vector<Record>& all = job.batch.records;
        size_t half = all.size() / 2;
        Batch second;
        second.number = job.batch.number;
        second.records.assign(std::make_move_iterator(all.begin() + half),
                              std::make_move_iterator(all.end()));
        all.resize(half);
        for (Batch* b : {&job.batch, &second}) {
          b->tokens = b->bytes = 0;
          for (const Record& r : b->records) {
            b->tokens += r.tokens;
            b->bytes += r.text.size();
          }
        }
        ++outstanding_;  // one batch became two
        waiting_.push_back(Job{std::move(job.batch), 0, 0});
        waiting_.push_back(Job{std::move(second), 0, 0});
        return;
      }
      BatchResult result;
      result.status = BatchResult::kRejected;
      result.error = fmt::format("rejected by the API (HTTP {}): {}",
                                 response.status, api.message);
      result.batch = std::move(job.batch);
      Complete(std::move(result));
      return;
    }
    case Outcome::kFatal: {
      if (fatal_message_.empty())
        fatal_message_ = fmt::format("HTTP {}: {}", response.status, api.message);
      stopped_ = true;
      // The batch stays unanswered: it was not embedded, and a later run
      // (after the key or quota is fixed) sends it again.
      waiting_.push_back(std::move(job));
      return;
    }
  }
}

void Scheduler::Retry(Job job, const HttpResponse& response,
                      const std::string& why) {
  size_t n = job.batch.records.size();
  if (job.attempts >= config_.max_attempts) {
    BatchResult result;
    result.status = BatchResult::kFailed;
    result.error = fmt::format("gave up after {} attempts: {}", job.attempts, why);
    result.batch = std::move(job.batch);
    Complete(std::move(result));
    return;
  }
  int64_t delay = RetryDelayMs(response, job.attempts, config_.backoff,
                               random_(), clock_->UnixSeconds());
  diag::Warning(fmt::format(
      "batch of {} record{} starting at input line {}: {}; retrying in {:.1f} s "
      "(attempt {} of {})",
      n, n == 1 ? "" : "s", job.batch.records.front().line, why, delay / 1000.0,
      job.attempts + 1, config_.max_attempts));
  ++stats_.retries;
  job.not_before_ms = clock_->NowMs() + delay;
  waiting_.push_back(std::move(job));
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

void Scheduler::CancelInFlight() {
  transport_->CancelAll();
  for (auto& [tag, job] : in_flight_) waiting_.push_back(std::move(job));
  in_flight_.clear();
}
