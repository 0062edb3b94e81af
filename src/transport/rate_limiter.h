// Client-side pacing by the API's per-minute budgets: requests per minute
// and tokens per minute, each a token bucket that holds one minute's worth
// and refills continuously (as OpenAI and build/fake_provider apply them).
// Limits come from flags and from the server's x-ratelimit-* headers, so a
// run at a limit starts each request when the server will accept it instead
// of learning the limit from 429s. Pure: time is passed in, nothing sleeps.
//
// What is counted: one request, and the batch's exact token count (the
// provider's tokenizer), debited when the request starts. The server's
// x-ratelimit-remaining-* figures then correct that count both ways, as far
// as the requests in flight leave them unambiguous: down when the server
// counts more (OpenAI's limiter counts an estimate of the request; others
// may share the key), so the difference slows the run instead of causing
// 429s; up when it counts less (a failed request it never charged).
//
// One key's limits are shared by every process that uses it (shards, other
// jobs), and there is no coordinator: what the server's figures show spent
// beyond our own count is others' spending. Our share is ours of all the
// spending seen in the last minute, counting the request about to start;
// of the budget as the server last showed it, and of its refill since, the
// rest is left to the others. So processes that see each other split the
// budget instead of each taking all of it, and one takes more as the
// others' spending ages out of the minute, or fades while the figures show
// none (alone, all of it is its share). The share is never below 1/8, so
// that one that spent little so far is not starved by those that spent
// more. Two things keep shares from adding up to more than the budget
// while everyone spends fast (processes started together): our own
// spending counts toward the share only as far as the figures show the
// others' (both a round trip late), and the others are assumed to have as
// much on its way to the server, for each share of theirs, as we have in
// flight for ours.
#pragma once

#include <cstdint>
#include <deque>
#include <map>

#include "transport/http.h"

/// The x-ratelimit-* headers of one response; -1 where absent or unreadable.
/// A 429 without them fills them from its message, where it has OpenAI's
/// form ("on tokens per min (TPM): Limit L, Used U"): limit L, remaining
/// L - U.
struct RateHeaders {
  int64_t limit_requests = -1;
  int64_t limit_tokens = -1;
  int64_t remaining_requests = -1;
  int64_t remaining_tokens = -1;
};

RateHeaders ParseRateHeaders(const HttpResponse& response);

class RateLimiter {
 public:
  /// `rpm`, `tpm`: limits set by flags, 0 for none. A budget with no limit
  /// is not enforced until a response names one; then the lower of the two
  /// applies (a flag may keep a run below what the key allows, to leave
  /// room for other users of the key).
  RateLimiter(int64_t rpm, int64_t tpm);

  /// The earliest time, not before `now_ms`, at which a request of `tokens`
  /// may start: when our share of both budgets holds enough (all of them
  /// while no one else is seen spending) and any Hold() is over. A
  /// request larger than the whole token budget (TooLarge) is not paced by
  /// tokens: it can never fit, and the caller splits it.
  int64_t EarliestStart(int64_t now_ms, uint64_t tokens) const;

  /// True when `tokens` is more than the whole tokens-per-minute limit, so
  /// no amount of waiting lets the request through.
  bool TooLarge(uint64_t tokens) const;

  /// The most tokens one request should carry, 0 while no tokens-per-minute
  /// limit is in force: 1/64 of the budget, so that processes sharing the
  /// key split it finely and a refused request costs little, but never so
  /// little that the requests-per-minute limit binds first (twice the
  /// tokens per request the two limits allow together).
  uint64_t Slice() const;

  /// Request `id` (increasing with start order) of `tokens` started now.
  void Started(uint64_t id, int64_t now_ms, uint64_t tokens);

  /// Request `id` got `response` (status 0: none). Learns limits and the
  /// server's remaining budget from its headers; a 429 gives its cost back,
  /// since a refused request takes nothing from the server's budget.
  void Finished(uint64_t id, int64_t now_ms, const HttpResponse& response);

  /// Request `id` was abandoned without an answer; its cost stays spent.
  void Abandoned(uint64_t id);

  /// Nothing may start before `until_ms` (after a 429: the whole run backs
  /// off, not just the batch that was refused).
  void Hold(int64_t until_ms);

  /// The limits in force, 0 for none (for tests and messages).
  double rpm() const { return requests_.capacity; }
  double tpm() const { return tokens_.capacity; }

 private:
  /// An amount spent at a time, kept for a minute.
  struct Spend {
    int64_t at_ms = 0;
    double amount = 0;
  };
  struct Bucket {
    double flag = 0;      ///< From the command line, 0: none.
    double capacity = 0;  ///< In force; 0: not enforced.
    double level = 0;     ///< As of at_ms; may be negative.
    int64_t at_ms = 0;
    /// Our spending and what the figures showed others spend, in the last
    /// minute; `level` as the last figure set it, and when.
    std::deque<Spend> own, others;
    double shown = 0;
    int64_t learned_ms = 0;
    /// When the newest request whose figure we learned started: the
    /// figures show others' spending up to about then.
    int64_t shown_through_ms = 0;

    /// What `spends` holds of the last minute, up to `until_ms`.
    static double Sum(const std::deque<Spend>& spends, int64_t now_ms,
                      int64_t until_ms = INT64_MAX);
    double LevelAt(int64_t now_ms) const;
    void Advance(int64_t now_ms);
    void Spent(int64_t now_ms, double cost);
    /// Our share of all spending if `cost` is spent now:
    /// (own + cost) / (own + cost + others), but at least 1/8; own as far
    /// as the figures show others'.
    double Share(int64_t now_ms, double cost) const;
    /// `in_flight`: what our requests still unanswered cost.
    int64_t When(int64_t now_ms, double cost, double in_flight) const;
    void Learn(int64_t now_ms, int64_t limit, int64_t remaining,
               double cost_after, double cost_unsure, int64_t started_ms);
  };
  struct Flight {
    int64_t started_ms = 0;
    uint64_t tokens = 0;
  };
  struct Done {
    int64_t finished_ms = 0;
    uint64_t tokens = 0;
  };

  Bucket requests_, tokens_;
  std::map<uint64_t, Flight> in_flight_;
  /// Requests answered since the oldest one in flight started, which the
  /// server may have counted after that one: see Finished().
  std::deque<Done> done_;
  int64_t hold_until_ms_ = 0;
};
