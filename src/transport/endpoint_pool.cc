#include "transport/endpoint_pool.h"

#include <algorithm>

#include "transport/redact.h"

namespace {

// Failures in a row that set an endpoint aside: one is a blip, three with
// nothing in between is a server that is down or restarting.
constexpr int kFailuresToSetAside = 3;
constexpr int64_t kFirstCooldownMs = 2000;
constexpr int64_t kMaxCooldownMs = 60000;

bool EndpointFailed(const HttpResponse& response) {
  return response.status == 0 || response.status >= 500;
}

}  // namespace

EndpointPool::EndpointPool(const std::vector<std::string>& urls,
                           int concurrency, int64_t rpm, int64_t tpm)
    : concurrency_(static_cast<size_t>(std::max(1, concurrency))),
      limits_given_(rpm > 0 && tpm > 0) {
  for (const std::string& url : urls) {
    // The counts are printed; the URL may hold a password.
    Endpoint e{EndpointCounts{WithoutCredentials(url)}, RateLimiter(rpm, tpm)};
    e.cooldown_ms = kFirstCooldownMs;
    endpoints_.push_back(std::move(e));
  }
}

int EndpointPool::Pick(int64_t now_ms, uint64_t tokens, int avoid,
                       int64_t* earliest) const {
  int best = -1;
  *earliest = -1;
  auto later = [&](int64_t at) {
    if (*earliest < 0 || at < *earliest) *earliest = at;
  };
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const Endpoint& e = endpoints_[i];
    if (!InService(e, now_ms)) {
      later(e.back_at_ms);
      continue;
    }
    if (e.in_flight >= Slots(e)) continue;
    int64_t at = e.limiter.EarliestStart(now_ms, tokens);
    if (at > now_ms) {
      later(at);
      continue;
    }
    auto rank = [&](size_t k) {
      // The avoided endpoint sorts last; then the least busy.
      return std::make_pair(static_cast<int>(k) == avoid,
                            endpoints_[k].in_flight);
    };
    if (best < 0 || rank(i) < rank(static_cast<size_t>(best)))
      best = static_cast<int>(i);
  }
  return best;
}

bool EndpointPool::TooLarge(uint64_t tokens) const {
  return std::all_of(endpoints_.begin(), endpoints_.end(),
                     [&](const Endpoint& e) {
                       return e.limiter.TooLarge(tokens);
                     });
}

uint64_t EndpointPool::Slice() const {
  uint64_t most = 0;
  for (const Endpoint& e : endpoints_) {
    uint64_t slice = e.limiter.Slice();
    if (slice == 0) return 0;
    most = std::max(most, slice);
  }
  return most;
}

double EndpointPool::tpm() const {
  double most = 0;
  for (const Endpoint& e : endpoints_) most = std::max(most, e.limiter.tpm());
  return most;
}

bool EndpointPool::HasFreeSlot(int64_t now_ms) const {
  return std::any_of(endpoints_.begin(), endpoints_.end(),
                     [&](const Endpoint& e) {
                       return InService(e, now_ms) &&
                              e.in_flight < Slots(e);
                     });
}

void EndpointPool::Started(size_t i, uint64_t tag, int64_t now_ms,
                           uint64_t tokens) {
  Endpoint& e = endpoints_[i];
  ++e.in_flight;
  ++e.counts.requests;
  e.limiter.Started(tag, now_ms, tokens);
}

void EndpointPool::Finished(size_t i, uint64_t tag, int64_t now_ms,
                            const HttpResponse& response) {
  Endpoint& e = endpoints_[i];
  --e.in_flight;
  e.limiter.Finished(tag, now_ms, response);
  // Its rate headers, or their absence, are known now; a failed connection
  // tells nothing.
  if (response.status != 0) e.answered = true;
  if (!EndpointFailed(response)) {
    e.failures_in_a_row = 0;
    e.cooldown_ms = kFirstCooldownMs;
    return;
  }
  ++e.counts.failures;
  if (++e.failures_in_a_row < kFailuresToSetAside || endpoints_.size() == 1)
    return;
  // Requests already in flight there may still fail after this; they do
  // not set it aside again until it has been tried once more.
  if (e.back_at_ms > now_ms) return;
  e.back_at_ms = now_ms + e.cooldown_ms;
  e.cooldown_ms = std::min(kMaxCooldownMs, e.cooldown_ms * 2);
  e.failures_in_a_row = kFailuresToSetAside - 1;  // one more failure: again
  ++e.counts.set_aside;
}

void EndpointPool::Abandoned(size_t i, uint64_t tag) {
  Endpoint& e = endpoints_[i];
  --e.in_flight;
  e.limiter.Abandoned(tag);
}

void EndpointPool::Hold(size_t i, int64_t until_ms) {
  endpoints_[i].limiter.Hold(until_ms);
}
