#include "transport/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <doctest/doctest.h>

namespace {

HttpResponse Headers(long status,
                     std::vector<std::pair<std::string, std::string>> h) {
  HttpResponse r;
  r.status = status;
  r.headers = std::move(h);
  return r;
}

HttpResponse TokenHeaders(long status, int64_t limit, int64_t remaining) {
  return Headers(status, {{"x-ratelimit-limit-tokens", std::to_string(limit)},
                          {"x-ratelimit-remaining-tokens",
                           std::to_string(remaining)}});
}

}  // namespace

TEST_CASE("ParseRateHeaders reads the four figures") {
  RateHeaders h = ParseRateHeaders(Headers(
      200, {{"x-ratelimit-limit-requests", "3000"},
            {"x-ratelimit-limit-tokens", "1000000"},
            {"x-ratelimit-remaining-requests", "2999"},
            {"x-ratelimit-remaining-tokens", "bogus"}}));
  CHECK(h.limit_requests == 3000);
  CHECK(h.limit_tokens == 1000000);
  CHECK(h.remaining_requests == 2999);
  CHECK(h.remaining_tokens == -1);
}

TEST_CASE("ParseRateHeaders reads a 429's Limit and Used where headers "
          "lack them") {
  HttpResponse r = Headers(
      429, {{"x-ratelimit-limit-requests", "3000"},
            {"x-ratelimit-remaining-requests", "12"}});
  r.body =
      R"({"error":{"message":"Rate limit reached for text-embedding-3-small )"
      R"(in organization org-x on tokens per min (TPM): Limit 1000000, Used )"
      R"(999500, Requested 1200. Please try again in 42ms. Visit )"
      R"(https://platform.openai.com/account/rate-limits to learn more.",)"
      R"("type":"tokens","param":null,"code":"rate_limit_exceeded"}})";
  RateHeaders h = ParseRateHeaders(r);
  CHECK(h.limit_tokens == 1000000);
  CHECK(h.remaining_tokens == 500);
  // The headers, where sent, are the server's own figures.
  CHECK(h.limit_requests == 3000);
  CHECK(h.remaining_requests == 12);

  r.headers.clear();
  r.body = "Rate limit reached for m in organization o on requests per min "
           "(RPM): Limit 3000, Used 3000, Requested 1. Please try again in "
           "20ms.";
  h = ParseRateHeaders(r);
  CHECK(h.limit_requests == 3000);
  CHECK(h.remaining_requests == 0);
  CHECK(h.limit_tokens == -1);
  CHECK(h.remaining_tokens == -1);
  // Only a refusal's message is read, and only OpenAI's form of it.
  r.status = 200;
  CHECK(ParseRateHeaders(r).limit_requests == -1);
  r.status = 429;
  r.body = "on requests per min (RPM): Limit 3000, Used lots";
  CHECK(ParseRateHeaders(r).limit_requests == -1);
}

TEST_CASE("RateLimiter learns a key's limit from a 429's message") {
  RateLimiter l(0, 0);
  l.Started(1, 0, 1000);
  HttpResponse r;
  r.status = 429;
  r.body = "Rate limit reached for m in organization o on tokens per min "
           "(TPM): Limit 60000, Used 59500, Requested 1000. Please try "
           "again in 500ms.";
  l.Finished(1, 0, r);
  CHECK(l.tpm() == 60000);
  // 500 left, refilling at 1,000 a second (at most; others spend too).
  CHECK(l.EarliestStart(0, 1000) >= 500);
}

TEST_CASE("RateLimiter without limits never waits") {
  RateLimiter l(0, 0);
  for (uint64_t i = 0; i < 1000; ++i) l.Started(i, 0, 1000000);
  CHECK(l.EarliestStart(0, 1000000) == 0);
  CHECK(!l.TooLarge(1000000000));
}

TEST_CASE("RateLimiter paces tokens by a flag, starting from a full bucket") {
  RateLimiter l(0, 60000);  // 1000 tokens a second
  CHECK(l.EarliestStart(0, 50000) == 0);
  l.Started(1, 0, 50000);
  // 10000 left; a start also needs a quarter second of refill (250) in
  // hand.
  CHECK(l.EarliestStart(0, 9750) == 0);
  CHECK(l.EarliestStart(0, 10000) == 250);
  CHECK(l.EarliestStart(0, 20000) == 10250);
  CHECK(l.EarliestStart(5000, 20000) == 10250);
  // The bucket never holds more than a minute's worth.
  CHECK(l.EarliestStart(10000000, 60000) == 10000000);
  CHECK(l.TooLarge(60001));
  CHECK(!l.TooLarge(60000));
  // A request bigger than the budget is the caller's to split; it is not
  // held back by tokens (it would wait forever).
  CHECK(l.EarliestStart(0, 70000) == 0);
}

TEST_CASE("RateLimiter paces requests by a flag") {
  RateLimiter l(120, 0);  // 2 a second
  for (uint64_t i = 0; i < 119; ++i) {
    REQUIRE(l.EarliestStart(0, 1) == 0);
    l.Started(i, 0, 1);
  }
  // One left, but not the margin: wait for half a request (250 ms).
  CHECK(l.EarliestStart(0, 1) == 250);
  l.Started(119, 250, 1);
  CHECK(l.EarliestStart(250, 1) == 750);  // one request refills in 500 ms
}

TEST_CASE("RateLimiter learns limits and the remaining budget from headers") {
  RateLimiter l(0, 0);
  l.Started(1, 0, 100);
  l.Started(2, 0, 200);  // started after 1, not yet answered
  l.Finished(1, 10, Headers(200, {{"x-ratelimit-limit-requests", "60"},
                                  {"x-ratelimit-remaining-requests", "59"},
                                  {"x-ratelimit-limit-tokens", "6000"},
                                  {"x-ratelimit-remaining-tokens", "5900"}}));
  CHECK(l.rpm() == 60);
  CHECK(l.tpm() == 6000);
  // 5900 as the server counted after request 1, less request 2's 200.
  CHECK(l.EarliestStart(10, 5675) == 10);
  CHECK(l.EarliestStart(10, 5700) == 260);  // 25 more tokens at 100/s
}

TEST_CASE("RateLimiter follows the server's figure both ways") {
  RateLimiter l(0, 6000);  // 100 tokens a second
  l.Started(1, 0, 1000);
  // The server says more is left than we count (it did not charge all we
  // did, or started from less usage): with nothing else in flight, its
  // figure is exact for our traffic, and refill since only adds.
  l.Finished(1, 1000, TokenHeaders(200, 6000, 5900));
  CHECK(l.EarliestStart(1000, 5875) == 1000);
  CHECK(l.EarliestStart(1000, 5900) == 1250);
  // Another user of the key took 4000 more than we know of: the 900 left
  // is not all ours, they are expected to take their share of it (4000 of
  // the 6875 spent in the last minute, counting this request).
  l.Started(2, 1000, 1000);
  l.Finished(2, 1000, TokenHeaders(200, 6000, 900));
  CHECK(l.EarliestStart(1000, 875) > 1250);
  // A minute later their spending is out of the window: all of a full
  // budget is ours again.
  CHECK(l.EarliestStart(61001, 5975) == 61001);
}

TEST_CASE("RateLimiter does not trust a figure the requests in flight blur") {
  RateLimiter l(0, 6000);
  l.Started(1, 0, 3000);
  l.Started(2, 0, 2000);  // level 1000
  // The server answered 2 first, not yet having counted 1: 4000 left by
  // its figure, but 1 is still in flight, so that proves nothing more
  // than 1000; our own count stands.
  l.Finished(2, 0, TokenHeaders(200, 6000, 4000));
  CHECK(l.EarliestStart(0, 975) == 0);
  CHECK(l.EarliestStart(0, 1000) > 0);
  // Then 1, counted after 2: 1000 left, as we had it.
  l.Finished(1, 0, TokenHeaders(200, 6000, 1000));
  CHECK(l.EarliestStart(0, 975) == 0);
  CHECK(l.EarliestStart(0, 1000) > 0);
}

TEST_CASE("RateLimiter takes back what the server did not charge for a 500") {
  RateLimiter l(0, 6000);
  l.Started(1, 0, 3000);
  l.Finished(1, 0, TokenHeaders(500, 6000, 6000));
  CHECK(l.EarliestStart(0, 5975) == 0);
  // Without the figure, the cost stays spent: it may have been counted.
  l.Started(2, 0, 3000);
  l.Finished(2, 0, Headers(500, {}));
  CHECK(l.EarliestStart(0, 3000) > 0);
}

TEST_CASE("RateLimiter: the lower of flag and server limit applies") {
  RateLimiter low(0, 3000);
  low.Finished(7, 0, TokenHeaders(200, 6000, 6000));  // unknown id: ignored
  low.Started(1, 0, 10);
  low.Finished(1, 0, TokenHeaders(200, 6000, 5990));
  CHECK(low.tpm() == 3000);
  RateLimiter high(0, 9000);
  high.Started(1, 0, 10);
  high.Finished(1, 0, TokenHeaders(200, 6000, 5990));
  CHECK(high.tpm() == 6000);
  CHECK(high.EarliestStart(0, 5965) == 0);
  CHECK(high.EarliestStart(0, 5990) > 0);
}

TEST_CASE("RateLimiter gives back a refused request's cost") {
  RateLimiter l(0, 6000);
  l.Started(1, 0, 3000);
  CHECK(l.EarliestStart(0, 5000) > 0);
  l.Finished(1, 0, Headers(429, {}));
  CHECK(l.EarliestStart(0, 5000) == 0);
  // A failure that may have been counted is not given back.
  l.Started(2, 0, 3000);
  l.Finished(2, 0, Headers(500, {}));
  CHECK(l.EarliestStart(0, 5000) > 0);
}

TEST_CASE("RateLimiter holds every start after a 429") {
  RateLimiter l(0, 0);
  l.Hold(500);
  l.Hold(300);  // a shorter hold does not cut a longer one
  CHECK(l.EarliestStart(0, 1) == 500);
  CHECK(l.EarliestStart(600, 1) == 600);
}

TEST_CASE("RateLimiter forgets an abandoned request") {
  RateLimiter l(0, 0);
  l.Started(1, 0, 100);
  l.Started(2, 0, 200);
  l.Abandoned(2);
  l.Finished(1, 0, TokenHeaders(200, 6000, 5900));
  // Request 2 is no longer subtracted as in flight.
  CHECK(l.EarliestStart(0, 5875) == 0);
}

namespace {

// One API key's token budget as the server keeps it, shared by every
// client: a minute's worth, refilled continuously, starting full; a
// refused request takes nothing. Every answer carries the figures.
struct SharedBudget {
  double capacity, level;
  int64_t at_ms = 0;

  explicit SharedBudget(double tpm) : capacity(tpm), level(tpm) {}

  HttpResponse Take(int64_t now_ms, uint64_t tokens, int64_t* retry_ms) {
    level = std::min(capacity, level + static_cast<double>(now_ms - at_ms) *
                                           capacity / 60000.0);
    at_ms = now_ms;
    bool ok = level >= static_cast<double>(tokens);
    if (ok) level -= static_cast<double>(tokens);
    *retry_ms = ok ? 0
                   : static_cast<int64_t>(std::ceil(
                         (static_cast<double>(tokens) - level) * 60000.0 /
                         capacity));
    return TokenHeaders(ok ? 200 : 429, static_cast<int64_t>(capacity),
                        static_cast<int64_t>(level));
  }
};

struct SharedRun {
  int64_t end_ms = 0;      ///< When the last request was accepted.
  int refused = 0;         ///< 429s, over all clients.
  int accepted = 0;
  std::vector<int64_t> done_ms;  ///< When each client's last was accepted.
};

// Clients (one RateLimiter each, no flags: limits learned from the
// headers) with `work[i]` requests of `tokens` each, all started at
// `start_ms[i]`, against one SharedBudget. The server counts a request
// when it starts and answers `latency_ms` later; a client has at most
// `slots` requests in flight; a 429 holds its client as the scheduler does
// (for the time the server names) and its request is sent again.
SharedRun RunShared(double tpm, uint64_t tokens, std::vector<int> work,
                    std::vector<int64_t> start_ms, int64_t latency_ms = 0,
                    int slots = 1) {
  struct Answer {
    size_t client;
    uint64_t id;
    int64_t due_ms, retry_ms;
    HttpResponse response;
  };
  SharedBudget server(tpm);
  std::vector<RateLimiter> clients(work.size(), RateLimiter(0, 0));
  std::vector<int> in_flight(work.size(), 0);
  std::deque<Answer> answers;  // In due order: one latency for all.
  SharedRun run;
  run.done_ms.assign(work.size(), -1);
  uint64_t id = 0;
  // Returns false when the answer was a 429.
  auto deliver = [&](Answer a, int64_t now) {
    size_t c = a.client;
    --in_flight[c];
    clients[c].Finished(a.id, now, a.response);
    if (a.response.status == 429) {
      ++run.refused;
      ++work[c];
      clients[c].Hold(now + a.retry_ms);
      return false;
    }
    ++run.accepted;
    if (work[c] == 0 && in_flight[c] == 0) run.done_ms[c] = now;
    run.end_ms = now;
    return true;
  };
  for (int64_t now = 0; now < 3600000; now += 10) {
    while (!answers.empty() && answers.front().due_ms <= now) {
      Answer a = std::move(answers.front());
      answers.pop_front();
      deliver(std::move(a), now);
    }
    bool busy = !answers.empty();
    for (size_t c = 0; c < clients.size(); ++c) {
      busy = busy || work[c] > 0;
      if (now < start_ms[c]) continue;
      while (work[c] > 0 && in_flight[c] < slots &&
             clients[c].EarliestStart(now, tokens) <= now) {
        clients[c].Started(++id, now, tokens);
        --work[c];
        ++in_flight[c];
        Answer a{c, id, now + latency_ms, 0, {}};
        a.response = server.Take(now, tokens, &a.retry_ms);
        if (latency_ms > 0) {
          answers.push_back(std::move(a));
        } else if (!deliver(std::move(a), now)) {
          break;
        }
      }
    }
    if (!busy) break;
  }
  return run;
}

}  // namespace

TEST_CASE("RateLimiter: clients sharing a key pace on its figures, not each "
          "on the whole limit") {
  // Four processes at 1,200,000 tokens per minute, 3,000,000 tokens in
  // requests of 30,000: the budget allows (3,000,000 - 1,200,000) / 20,000
  // per second = 90 s.
  SharedRun run = RunShared(1200000, 30000, {25, 25, 25, 25}, {0, 0, 0, 0});
  INFO("refused " << run.refused << " accepted " << run.accepted << " end "
                  << run.end_ms);
  CHECK(run.accepted == 100);
  CHECK(run.refused <= 5);
  CHECK(run.end_ms <= 94500);
}

TEST_CASE("RateLimiter: a client takes more of a shared key as others "
          "finish") {
  // One client has six times the work of each of the other three: once
  // they are done it must have the whole budget, or the run would end
  // late. Ideal: (3,600,000 - 1,200,000) / 20,000 per second = 120 s.
  SharedRun run = RunShared(1200000, 30000, {20, 20, 20, 60}, {0, 0, 0, 0});
  INFO("refused " << run.refused << " accepted " << run.accepted << " end "
                  << run.end_ms);
  CHECK(run.accepted == 120);
  CHECK(run.refused <= 6);
  CHECK(run.end_ms <= 126000);
  CHECK(run.done_ms[3] == run.end_ms);
}

TEST_CASE("RateLimiter: a client joining a key in use waits for room") {
  // Eight clients, each starting a second after the one before, against
  // a key the first ones already drain.
  SharedRun run = RunShared(1200000, 30000, std::vector<int>(8, 15),
                            {0, 1000, 2000, 3000, 4000, 5000, 6000, 7000});
  INFO("refused " << run.refused << " accepted " << run.accepted << " end "
                  << run.end_ms);
  CHECK(run.accepted == 120);
  CHECK(run.refused <= 6);
  CHECK(run.end_ms <= 126000);
}

TEST_CASE("RateLimiter: others' spending counts for less once the figures "
          "show them idle") {
  RateLimiter l(0, 0);  // 60,000 a minute, learned: 1,000 a second
  l.Started(1, 0, 1000);
  // Others spent 30,000 before our first answer.
  l.Finished(1, 0, TokenHeaders(200, 60000, 29000));
  // Twenty seconds on, the figure is just what we expect alone: they
  // spent nothing since, and may have finished.
  l.Started(2, 20000, 1000);
  l.Finished(2, 20000, TokenHeaders(200, 60000, 48000));
  // Counted whole for the minute, their 30,000 would leave us 28,000 of
  // the 48,000; forgotten by e every 10 s, nearly all of it is ours.
  CHECK(l.EarliestStart(20000, 40000) == 20000);
}

TEST_CASE("RateLimiter: eight clients on a key take all of it as they "
          "finish one by one") {
  // Eight processes whose shards differ in size, so that for most of the
  // run some have finished: a finished one's past spending must stop
  // holding back the rest within seconds. Ideal: 5,400,000 tokens, less
  // the full bucket, at 20,000 per second = 210 s.
  SharedRun run = RunShared(1200000, 30000, {5, 10, 15, 20, 25, 30, 35, 40},
                            std::vector<int64_t>(8, 0));
  INFO("refused " << run.refused << " accepted " << run.accepted << " end "
                  << run.end_ms);
  CHECK(run.accepted == 180);
  CHECK(run.refused <= 9);
  CHECK(run.end_ms <= 220500);
}

TEST_CASE("RateLimiter: eight clients started together on a key share it "
          "evenly") {
  // 3,000,000 tokens over eight: (3,000,000 - 1,200,000) / 20,000 = 90 s.
  // Answers here are instant, so the first clients finish from the full
  // bucket at once. Shares learned from past spending alone feed on
  // themselves: of the rest, the one that spent most takes most and the
  // others starve (and once it finishes, its spending keeps their shares
  // small for a minute while the budget idles). Shared evenly, those rest
  // all finish in the last part of the run.
  SharedRun run = RunShared(1200000, 18750, std::vector<int>(8, 20),
                            std::vector<int64_t>(8, 0));
  std::vector<int64_t> done = run.done_ms;
  std::sort(done.begin(), done.end());
  INFO("refused " << run.refused << " accepted " << run.accepted << " end "
                  << run.end_ms << " fifth done " << done[4]);
  CHECK(run.accepted == 160);
  CHECK(run.refused <= 8);
  CHECK(run.end_ms <= 95000);
  CHECK(done[4] >= run.end_ms * 3 / 4);
}

TEST_CASE("RateLimiter: eight clients started together, with requests in "
          "flight, are seldom refused") {
  // As eight shards start: five requests in flight each, answered 150 ms
  // after the server counted them, so every figure a client reads is
  // stale by what the others sent meanwhile. Ideal: (3,000,000 -
  // 1,200,000) / 20,000 per second = 90 s; each client's last answers
  // come late, and a client that finds the figures stale waits.
  SharedRun run = RunShared(1200000, 18750, std::vector<int>(8, 20),
                            std::vector<int64_t>(8, 0), 150, 5);
  INFO("refused " << run.refused << " accepted " << run.accepted << " end "
                  << run.end_ms);
  CHECK(run.accepted == 160);
  CHECK(run.refused <= 8);
  CHECK(run.end_ms <= 96000);
}
