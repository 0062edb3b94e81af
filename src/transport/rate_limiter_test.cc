#include "transport/rate_limiter.h"

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
  // Another user of the key took 4000 more than we know of.
  l.Started(2, 1000, 1000);
  l.Finished(2, 1000, TokenHeaders(200, 6000, 900));
  CHECK(l.EarliestStart(1000, 875) == 1000);
  CHECK(l.EarliestStart(1000, 900) == 1250);
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
