#include "retry_policy.h"

#include <doctest/doctest.h>

namespace {

HttpResponse WithStatus(long status) {
  HttpResponse r;
  r.status = status;
  return r;
}

}  // namespace

TEST_CASE("Classify follows the API contract") {
  CHECK(Classify(WithStatus(200), "") == Outcome::kOk);
  CHECK(Classify(WithStatus(0), "") == Outcome::kRetry);
  for (long s : {408, 409, 429, 500, 502, 503, 504})
    CHECK(Classify(WithStatus(s), "") == Outcome::kRetry);
  CHECK(Classify(WithStatus(429), "rate_limit_exceeded") == Outcome::kRetry);
  CHECK(Classify(WithStatus(429), "insufficient_quota") == Outcome::kFatal);
  for (long s : {401, 403, 404})
    CHECK(Classify(WithStatus(s), "") == Outcome::kFatal);
  for (long s : {400, 413, 422})
    CHECK(Classify(WithStatus(s), "") == Outcome::kRejected);
}

TEST_CASE("ServerDelayMs prefers retry-after-ms, then retry-after") {
  HttpResponse r = WithStatus(429);
  CHECK(ServerDelayMs(r, 0) == -1);
  r.headers = {{"retry-after", "3"}};
  CHECK(ServerDelayMs(r, 0) == 3000);
  r.headers.push_back({"retry-after-ms", "250"});
  CHECK(ServerDelayMs(r, 0) == 250);
  r.headers = {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}};
  CHECK(ServerDelayMs(r, 1445412470) == 10000);  // 10 s before that date
  CHECK(ServerDelayMs(r, 1445412490) == 0);      // already past
  r.headers = {{"retry-after", "soon"}};
  CHECK(ServerDelayMs(r, 0) == -1);
  r.headers = {{"retry-after", "-5"}};
  CHECK(ServerDelayMs(r, 0) == -1);
}

TEST_CASE("RetryDelayMs caps hints and jitters the backoff") {
  BackoffConfig config{500, 4000};
  HttpResponse r = WithStatus(503);
  CHECK(RetryDelayMs(r, 1, config, 0, 0) == 0);
  CHECK(RetryDelayMs(r, 1, config, 500, 0) == 500);
  CHECK(RetryDelayMs(r, 1, config, 501, 0) == 0);     // wraps into [0, 500]
  CHECK(RetryDelayMs(r, 3, config, 1999, 0) == 1999); // ceiling 2000
  CHECK(RetryDelayMs(r, 9, config, 123456, 0) <= 4000);
  CHECK(RetryDelayMs(r, 60, config, ~0ull, 0) <= 4000);  // no overflow
  r.headers = {{"retry-after", "3600"}};
  CHECK(RetryDelayMs(r, 1, config, 0, 0) == 4000);
  r.headers = {{"retry-after-ms", "20"}};
  CHECK(RetryDelayMs(r, 5, config, 0, 0) == 20);
}
