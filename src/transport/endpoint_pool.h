// The servers a run sends to (--base-url given more than once): a free slot
// and pacing per endpoint (each its own rate limits, learned from its own
// headers), the least busy endpoint first, and health: an endpoint whose
// requests fail several times in a row (no answer, or a 5xx) is set aside
// for a while, doubling up to a minute, then tried again, so a fleet of
// self-hosted servers stays busy while one restarts. With one endpoint
// nothing is ever set aside: retries and their backoff do that job. Until
// an endpoint has answered once, it takes one request at a time: before
// its rate-limit headers are read the limits are unknown (unless --rpm and
// --tpm both give them), and a first burst of full slots can overrun a
// small per-minute budget. Pure: time is passed in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/run_stats.h"
#include "transport/http.h"
#include "transport/rate_limiter.h"

class EndpointPool {
 public:
  /// `urls`: at least one. `concurrency`: requests in flight per endpoint.
  /// `rpm`, `tpm`: flag limits, applied to each endpoint (see RateLimiter).
  EndpointPool(const std::vector<std::string>& urls, int concurrency,
               int64_t rpm, int64_t tpm);

  size_t size() const { return endpoints_.size(); }

  /// Where a request of `tokens` may start at `now_ms`: among endpoints in
  /// service with a free slot whose limits let it start now, the one with
  /// the fewest requests in flight (the lowest index on a tie), and
  /// `avoid` (the endpoint its last attempt failed on; -1: none) only when
  /// no other qualifies. Returns -1 when none qualifies; *earliest is then
  /// when one will (pacing, or an endpoint coming back), or -1 when only a
  /// finished request can free one.
  int Pick(int64_t now_ms, uint64_t tokens, int avoid, int64_t* earliest) const;

  /// True when `tokens` is more than the whole tokens-per-minute limit of
  /// every endpoint: no endpoint can ever take it.
  bool TooLarge(uint64_t tokens) const;
  /// The largest tokens-per-minute limit in force (for messages).
  double tpm() const;
  /// The most tokens one request should carry (RateLimiter::Slice): the
  /// largest slice of any endpoint, 0 when one has no token limit.
  uint64_t Slice() const;

  /// True while endpoint `i` takes one request at a time: it has not
  /// answered yet, and the flags do not give both limits.
  bool Probing(size_t i) const {
    return Slots(endpoints_[i]) == 1 && concurrency_ > 1;
  }

  /// Whether any endpoint in service has a free slot.
  bool HasFreeSlot(int64_t now_ms) const;

  void Started(size_t i, uint64_t tag, int64_t now_ms, uint64_t tokens);
  /// Request `tag` on endpoint `i` got `response` (status 0: none).
  void Finished(size_t i, uint64_t tag, int64_t now_ms,
                const HttpResponse& response);
  void Abandoned(size_t i, uint64_t tag);
  /// Nothing starts on endpoint `i` before `until_ms` (after its 429).
  void Hold(size_t i, int64_t until_ms);

  const EndpointCounts& counts(size_t i) const {
    return endpoints_[i].counts;
  }

 private:
  struct Endpoint {
    EndpointCounts counts;
    RateLimiter limiter;
    size_t in_flight = 0;
    int failures_in_a_row = 0;
    int64_t back_at_ms = 0;   ///< Set aside until then.
    int64_t cooldown_ms = 0;  ///< The next time it is set aside, this long.
    bool answered = false;    ///< A response (any HTTP status) was read.
  };

  bool InService(const Endpoint& e, int64_t now_ms) const {
    return e.back_at_ms <= now_ms;
  }
  /// Requests `e` may have in flight.
  size_t Slots(const Endpoint& e) const {
    return e.answered || limits_given_ ? concurrency_ : 1;
  }

  std::vector<Endpoint> endpoints_;
  size_t concurrency_;
  bool limits_given_;  ///< --rpm and --tpm both: pacing needs no headers.
};
