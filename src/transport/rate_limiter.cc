#include "transport/rate_limiter.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <string_view>

namespace {

// A request starts only when the budget holds its cost plus this much
// refill time. It absorbs the delay between our start and the server's
// count (while the server's bucket is full, refill in that gap is lost to
// it but not to us) and rounding on both sides. It costs a quarter second
// once per run, not per request: in steady state each request still waits
// for exactly its own cost to refill.
constexpr double kMarginMs = 250;
constexpr double kMsPerMinute = 60000.0;
constexpr int64_t kMinuteMs = 60000;
// Slices of a tokens-per-minute budget a request carries at most: fine
// enough that N processes sharing a key (8 or 16 are common) each get
// several per minute and a race between them costs one slice, coarse enough
// that a request still amortizes its round trip.
constexpr double kSlicesPerBudget = 64;
// How fast others' spending is forgotten while the figures show them idle:
// by e for each ten seconds without a sign of them.
constexpr double kIdleDecayMs = 10000;
// The least share a process takes, however little it spent so far. A share
// learned from past spending alone feeds on itself: the process that spent
// most takes most, the rest starve, and when it finishes its spending keeps
// their shares small for a minute while the budget idles. A floor lets the
// starved ones keep sending and so keep learning from the figures; at the
// fair share of 8 processes, it overcommits the key only beyond that.
constexpr double kMinShare = 1.0 / 8;

int64_t HeaderInt(const HttpResponse& response, std::string_view name) {
  const std::string* v = response.Header(name);
  if (!v) return -1;
  int64_t out;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  return ec == std::errc() && end == v->data() + v->size() && out >= 0 ? out
                                                                      : -1;
}

// A non-negative integer that `text` starts with; -1 if none.
int64_t LeadingInt(std::string_view text) {
  int64_t out;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end != text.data() && out >= 0 ? out : -1;
}

// From OpenAI's 429 message "... on tokens per min (TPM): Limit 1000000,
// Used 999500, Requested 1200. ...": the limit and what is left of it,
// for the budget named by `on` ("tokens per min (TPM): ").
void BodyFigures(std::string_view body, std::string_view on, int64_t* limit,
                 int64_t* remaining) {
  size_t at = body.find(on);
  if (at == std::string_view::npos) return;
  std::string_view rest = body.substr(at + on.size());
  constexpr std::string_view kLimit = "Limit ", kUsed = ", Used ";
  if (!rest.starts_with(kLimit)) return;
  int64_t l = LeadingInt(rest.substr(kLimit.size()));
  size_t used_at = rest.find(kUsed);
  if (l < 0 || used_at == std::string_view::npos) return;
  int64_t used = LeadingInt(rest.substr(used_at + kUsed.size()));
  if (used < 0) return;
  *limit = l;
  *remaining = std::max<int64_t>(0, l - used);
}

}  // namespace

RateHeaders ParseRateHeaders(const HttpResponse& response) {
  RateHeaders h;
  h.limit_requests = HeaderInt(response, "x-ratelimit-limit-requests");
  h.limit_tokens = HeaderInt(response, "x-ratelimit-limit-tokens");
  h.remaining_requests = HeaderInt(response, "x-ratelimit-remaining-requests");
  h.remaining_tokens = HeaderInt(response, "x-ratelimit-remaining-tokens");
  // A 429 without the headers (some proxies drop them) still names the
  // budget it ran out of, and how much of it is used.
  if (response.status == 429) {
    if (h.limit_tokens < 0 && h.remaining_tokens < 0)
      BodyFigures(response.body, "tokens per min (TPM): ", &h.limit_tokens,
                  &h.remaining_tokens);
    if (h.limit_requests < 0 && h.remaining_requests < 0)
      BodyFigures(response.body, "requests per min (RPM): ",
                  &h.limit_requests, &h.remaining_requests);
  }
  return h;
}

double RateLimiter::Bucket::Sum(const std::deque<Spend>& spends,
                                int64_t now_ms, int64_t until_ms) {
  double sum = 0;
  for (const Spend& s : spends)
    if (s.at_ms > now_ms - kMinuteMs && s.at_ms <= until_ms) sum += s.amount;
  return sum;
}

double RateLimiter::Bucket::LevelAt(int64_t now_ms) const {
  if (capacity <= 0) return level;
  double refill = static_cast<double>(now_ms - at_ms) * capacity / kMsPerMinute;
  return std::min(capacity, level + std::max(0.0, refill));
}

void RateLimiter::Bucket::Advance(int64_t now_ms) {
  level = LevelAt(now_ms);
  at_ms = std::max(at_ms, now_ms);
  for (auto* spends : {&own, &others})
    while (!spends->empty() && spends->front().at_ms <= now_ms - kMinuteMs)
      spends->pop_front();
}

void RateLimiter::Bucket::Spent(int64_t now_ms, double cost) {
  level -= cost;
  own.push_back(Spend{now_ms, cost});
}

double RateLimiter::Bucket::Share(int64_t now_ms, double cost) const {
  double theirs = Sum(others, now_ms);
  if (theirs <= 0) return 1;
  // Others' spending is seen only when a figure shows it, a round trip
  // (and the server's queue) late; ours counted at once would outweigh it
  // while everyone spends fast, as processes started together do, and
  // their shares would add up to more than the whole.
  double ours = std::max(0.0, Sum(own, now_ms, shown_through_ms)) + cost;
  return std::max(ours / (ours + theirs), kMinShare);
}

int64_t RateLimiter::Bucket::When(int64_t now_ms, double cost,
                                  double in_flight) const {
  if (capacity <= 0) return now_ms;
  // Of the key's budget as the server last showed it, and its refill
  // since, the others' share is theirs to spend: ours is what is left of
  // our count after it. Alone, that is all of it. The figure is stale by
  // every request on its way to the server's count: ours are in our count,
  // and the others most likely have as much on the way for each share of
  // theirs as we have for ours (processes started together all take what
  // the first figures show, and 40 requests in flight over 8 of them hide
  // more than half a budget).
  double share = Share(now_ms, cost);
  double theirs =
      (1 - share) *
      (std::min(capacity, shown + static_cast<double>(now_ms - learned_ms) *
                                      capacity / kMsPerMinute) +
       in_flight / share);
  double have = LevelAt(now_ms) - theirs;
  // Never ask for more than our share of a full bucket, or the wait would
  // never end.
  double need = std::min(cost + capacity * kMarginMs / kMsPerMinute,
                         share * capacity);
  if (have >= need) return now_ms;
  return now_ms + static_cast<int64_t>(std::ceil(
                      (need - have) * kMsPerMinute / (share * capacity)));
}

// `limit` and `remaining` are the server's (-1: not sent), as it counted
// when it took request R, at some time between `started_ms` (R was sent)
// and `now_ms`. Which of our other requests that figure includes is
// unknown: `cost_after` is what the requests started after R and still
// unanswered cost (most likely not included); `cost_unsure` what every
// request that may have been counted after R cost (all others in flight,
// and those answered since R was sent).
void RateLimiter::Bucket::Learn(int64_t now_ms, int64_t limit,
                                int64_t remaining, double cost_after,
                                double cost_unsure, int64_t started_ms) {
  bool first = false;
  // What we would have left alone: a key unknown so far is assumed idle
  // (full) before our own spending.
  double alone = level;
  if (limit > 0) {
    double cap = flag > 0 ? std::min(flag, static_cast<double>(limit))
                          : static_cast<double>(limit);
    if (capacity <= 0) {
      first = true;
      alone = cap + level;
      level = cap;
    } else {
      alone = level - (capacity - cap);
      level = std::min(level, cap);
    }
    capacity = cap;
  }
  if (capacity <= 0 || remaining < 0) return;
  double r = static_cast<double>(remaining);
  // Certainly no more than the server has left, for our part: everything
  // that may have been counted since, and no refill since.
  double lower = std::min(r - cost_unsure, capacity);
  // Most likely no less: the requests started since are not in the figure,
  // and the refill since R was sent is (R was counted no earlier). It errs
  // high, so it only pulls our count down when the server counts more.
  double upper = std::min(
      r - cost_after +
          static_cast<double>(now_ms - started_ms) * capacity / kMsPerMinute,
      capacity);
  // Our own count stands between the two: it is exact for our traffic,
  // while the figure is ambiguous by the requests in flight.
  level = first ? lower : std::max(lower, std::min(level, upper));
  // The figure is below even its likely bound: someone else spent that.
  // Or it shows no one else spent since the last figure: their spending
  // before counts for less, as they may have finished, so that the share
  // grows back in seconds rather than in a minute.
  if (alone > upper) {
    others.push_back(Spend{now_ms, alone - upper});
  } else {
    double keep = std::exp(-static_cast<double>(now_ms - learned_ms) /
                           kIdleDecayMs);
    for (Spend& s : others) s.amount *= keep;
  }
  shown = level;
  learned_ms = now_ms;
  shown_through_ms = std::max(shown_through_ms, started_ms);
}

RateLimiter::RateLimiter(int64_t rpm, int64_t tpm) {
  for (auto [bucket, limit] : {std::pair{&requests_, rpm}, {&tokens_, tpm}}) {
    if (limit <= 0) continue;
    // Assume an idle key: the server's bucket starts full. The first
    // response's remaining-* header corrects this if it is not.
    bucket->flag = bucket->capacity = bucket->level =
        static_cast<double>(limit);
  }
}

int64_t RateLimiter::EarliestStart(int64_t now_ms, uint64_t tokens) const {
  double tokens_in_flight = 0;
  for (const auto& [id, flight] : in_flight_)
    tokens_in_flight += static_cast<double>(flight.tokens);
  int64_t t = std::max(now_ms, hold_until_ms_);
  t = std::max(t, requests_.When(now_ms, 1,
                                 static_cast<double>(in_flight_.size())));
  if (!TooLarge(tokens))
    t = std::max(t, tokens_.When(now_ms, static_cast<double>(tokens),
                                 tokens_in_flight));
  return t;
}

bool RateLimiter::TooLarge(uint64_t tokens) const {
  return tokens_.capacity > 0 && static_cast<double>(tokens) > tokens_.capacity;
}

uint64_t RateLimiter::Slice() const {
  if (tokens_.capacity <= 0) return 0;
  double slice = tokens_.capacity / kSlicesPerBudget;
  if (requests_.capacity > 0)
    slice = std::max(slice, 2 * tokens_.capacity / requests_.capacity);
  return static_cast<uint64_t>(std::ceil(slice));
}

void RateLimiter::Started(uint64_t id, int64_t now_ms, uint64_t tokens) {
  requests_.Advance(now_ms);
  tokens_.Advance(now_ms);
  requests_.Spent(now_ms, 1);
  tokens_.Spent(now_ms, static_cast<double>(tokens));
  in_flight_[id] = Flight{now_ms, tokens};
}

void RateLimiter::Finished(uint64_t id, int64_t now_ms,
                           const HttpResponse& response) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return;
  Flight flight = it->second;
  in_flight_.erase(it);
  requests_.Advance(now_ms);
  tokens_.Advance(now_ms);
  bool refused = response.status == 429;
  if (refused) {
    requests_.Spent(now_ms, -1);
    tokens_.Spent(now_ms, -static_cast<double>(flight.tokens));
    for (Bucket* b : {&requests_, &tokens_})
      if (b->capacity > 0) b->level = std::min(b->level, b->capacity);
  }
  if (response.status != 0) {
    RateHeaders h = ParseRateHeaders(response);
    double requests_after = 0, tokens_after = 0;
    double requests_unsure = 0, tokens_unsure = 0;
    for (const auto& [other, f] : in_flight_) {
      requests_unsure += 1;
      tokens_unsure += static_cast<double>(f.tokens);
      if (other > id) {
        requests_after += 1;
        tokens_after += static_cast<double>(f.tokens);
      }
    }
    for (const Done& d : done_) {
      if (d.finished_ms < flight.started_ms) continue;
      requests_unsure += 1;
      tokens_unsure += static_cast<double>(d.tokens);
    }
    requests_.Learn(now_ms, h.limit_requests, h.remaining_requests,
                    requests_after, requests_unsure, flight.started_ms);
    tokens_.Learn(now_ms, h.limit_tokens, h.remaining_tokens, tokens_after,
                  tokens_unsure, flight.started_ms);
  }
  // A refused request took nothing; any other may have been counted.
  if (!refused) done_.push_back(Done{now_ms, flight.tokens});
  // Only requests still in flight look back at these, and none of them
  // started before the oldest in flight.
  if (in_flight_.empty()) {
    done_.clear();
  } else {
    int64_t oldest = in_flight_.begin()->second.started_ms;
    while (!done_.empty() && done_.front().finished_ms < oldest)
      done_.pop_front();
  }
}

void RateLimiter::Abandoned(uint64_t id) { in_flight_.erase(id); }

void RateLimiter::Hold(int64_t until_ms) {
  hold_until_ms_ = std::max(hold_until_ms_, until_ms);
}
