#include "transport/retry_policy.h"

#include <doctest/doctest.h>

namespace {

HttpResponse WithStatus(long status) {
  HttpResponse r;
  r.status = status;
  return r;
}

HttpResponse WithHeaders(long status,
                         std::vector<std::pair<std::string, std::string>> h) {
  HttpResponse r = WithStatus(status);
  r.headers = std::move(h);
  return r;
}

int64_t Duration(std::string_view s) {
  int64_t ms = -2;
  return ParseDurationMs(s, &ms) ? ms : -1;
}

}  // namespace

TEST_CASE("ParseContextRefusal reads the input and the limit a refusal names") {
  ContextRefusal r;
  CHECK(ParseContextRefusal(
      "", "Invalid 'input[3]': maximum context length is 8192 tokens.", &r));
  CHECK(r.index == 3);
  CHECK(r.max_tokens == 8192);
  CHECK(ParseContextRefusal(
      "", "Invalid 'input': maximum context length is 512 tokens.", &r));
  CHECK(r.index == -1);
  CHECK(r.max_tokens == 512);
  CHECK(ParseContextRefusal("",
                            "This model's maximum context length is 8192 "
                            "tokens, however you requested 9001 tokens.",
                            &r));
  CHECK(r.index == -1);
  CHECK(r.max_tokens == 8192);
  CHECK(ParseContextRefusal("context_length_exceeded", "too long", &r));
  CHECK(r.index == -1);
  CHECK(r.max_tokens == -1);
  CHECK(ParseContextRefusal("", "input[x]: maximum context length is N", &r));
  CHECK(r.index == -1);
  CHECK(r.max_tokens == -1);
  CHECK_FALSE(ParseContextRefusal("", "'$.input' is invalid.", &r));
  CHECK_FALSE(ParseContextRefusal(
      "max_tokens_per_request",
      "Requested 400000 tokens, max 300000 tokens per request", &r));
}

TEST_CASE("Classify follows the API contract") {
  CHECK(Classify(WithStatus(200), "", "") == Outcome::kOk);
  CHECK(Classify(WithStatus(0), "", "") == Outcome::kRetry);
  for (long s : {408, 409, 429, 500, 502, 503, 504})
    CHECK(Classify(WithStatus(s), "", "") == Outcome::kRetry);
  CHECK(Classify(WithStatus(429), "rate_limit_exceeded",
                 "Rate limit reached") == Outcome::kRetry);
  CHECK(Classify(WithStatus(429), "insufficient_quota", "") == Outcome::kFatal);
  for (long s : {401, 403, 404})
    CHECK(Classify(WithStatus(s), "", "") == Outcome::kFatal);
  for (long s : {400, 413, 422})
    CHECK(Classify(WithStatus(s), "", "") == Outcome::kRejected);
}

TEST_CASE("Classify splits a request too large for the per-minute budget") {
  CHECK(
      Classify(WithStatus(429), "rate_limit_exceeded",
               "Request too large for text-embedding-3-small in organization "
               "org-x on tokens per min (TPM): Limit 1000, Requested 1500.") ==
      Outcome::kTooLarge);
  // Only a 429 says that; a 400 with the same words is an ordinary refusal.
  CHECK(Classify(WithStatus(400), "", "Request too large") ==
        Outcome::kRejected);
}

TEST_CASE("Classify lets x-should-retry override all but fatal statuses") {
  CHECK(Classify(WithHeaders(400, {{"x-should-retry", "true"}}), "", "") ==
        Outcome::kRetry);
  CHECK(Classify(WithHeaders(500, {{"x-should-retry", "false"}}), "", "") ==
        Outcome::kGiveUp);
  CHECK(Classify(WithHeaders(429, {{"x-should-retry", "FALSE"}}), "", "") ==
        Outcome::kGiveUp);
  CHECK(Classify(WithHeaders(400, {{"x-should-retry", "false"}}), "", "") ==
        Outcome::kRejected);
  CHECK(Classify(WithHeaders(503, {{"x-should-retry", "maybe"}}), "", "") ==
        Outcome::kRetry);
  CHECK(Classify(WithHeaders(401, {{"x-should-retry", "true"}}), "", "") ==
        Outcome::kFatal);
  CHECK(Classify(WithHeaders(429, {{"x-should-retry", "true"}}),
                 "insufficient_quota", "") == Outcome::kFatal);
}

TEST_CASE("ParseDurationMs reads Go durations and rounds up") {
  CHECK(Duration("20ms") == 20);
  CHECK(Duration("1s") == 1000);
  CHECK(Duration("1.2s") == 1200);
  CHECK(Duration("0.001s") == 1);
  CHECK(Duration("6m0s") == 360000);
  CHECK(Duration("1m30.5s") == 90500);
  CHECK(Duration("1h0m0s") == 3600000);
  CHECK(Duration("0s") == 0);
  CHECK(Duration("0") == 0);
  CHECK(Duration("1.5ms") == 2);        // never shorter than asked
  CHECK(Duration("250us") == 1);
  CHECK(Duration("250\xC2\xB5s") == 1);  // µs, as Go prints it
  CHECK(Duration("3ns") == 1);
  CHECK(Duration(".5s") == 500);
  CHECK(Duration("99999h") == 86400000);  // clamped to a day, no overflow
  for (const char* bad :
       {"", "5", "s", "1.2", "1x", "1s ", " 1s", "-1s", "1s2"})
    CHECK_MESSAGE(Duration(bad) == -1, bad);
}

TEST_CASE("ServerDelayMs prefers retry-after-ms, then retry-after") {
  HttpResponse r = WithStatus(429);
  CHECK(ServerDelayMs(r, 0) == -1);
  r.headers = {{"retry-after", "3"}};
  CHECK(ServerDelayMs(r, 0) == 3000);
  r.headers.push_back({"retry-after-ms", "250"});
  CHECK(ServerDelayMs(r, 0) == 250);
  r.headers = {{"retry-after-ms", "12.25"}};
  CHECK(ServerDelayMs(r, 0) == 13);
  r.headers = {{"retry-after", "1.5"}};
  CHECK(ServerDelayMs(r, 0) == 1500);
  r.headers = {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}};
  CHECK(ServerDelayMs(r, 1445412470) == 10000);  // 10 s before that date
  CHECK(ServerDelayMs(r, 1445412490) == 0);      // already past
  r.headers = {{"retry-after", "soon"}};
  CHECK(ServerDelayMs(r, 0) == -1);
  r.headers = {{"retry-after", "-5"}};
  CHECK(ServerDelayMs(r, 0) == -1);
  r.headers = {{"retry-after", "1e3"}};
  CHECK(ServerDelayMs(r, 0) == -1);
  r.headers = {{"retry-after-ms", "nan"}, {"retry-after", "2"}};
  CHECK(ServerDelayMs(r, 0) == 2000);  // an unreadable one falls through
}

TEST_CASE("BodyHintMs reads the wait out of an error message") {
  CHECK(BodyHintMs(R"({"error":{"message":"Rate limit reached for text-embedding-3-small in organization org-x on tokens per min (TPM): Limit 1000000, Used 999000, Requested 5000. Please try again in 240ms. Visit https://platform.openai.com/account/rate-limits to learn more."}})") ==
        240);
  CHECK(BodyHintMs("... Please try again in 1.2s. Visit ...") == 1200);
  CHECK(BodyHintMs("... Please try again in 6m0s. Visit ...") == 360000);
  CHECK(BodyHintMs("Please try again in 20ms.") == 20);
  CHECK(BodyHintMs("Requests to the Embeddings_Create Operation have exceeded "
                   "call rate limit. Please retry after 2 seconds.") == 2000);
  CHECK(BodyHintMs("Please retry after 1 second.") == 1000);
  CHECK(BodyHintMs("Please try again in a moment.") == -1);
  CHECK(BodyHintMs("Please retry after some time.") == -1);
  CHECK(BodyHintMs("") == -1);
}

TEST_CASE("RateLimitResetMs takes the reset of the budget that ran out") {
  CHECK(RateLimitResetMs(WithStatus(429)) == -1);
  HttpResponse r = WithHeaders(429, {{"x-ratelimit-remaining-requests", "0"},
                                     {"x-ratelimit-remaining-tokens", "5000"},
                                     {"x-ratelimit-reset-requests", "20ms"},
                                     {"x-ratelimit-reset-tokens", "6m0s"}});
  CHECK(RateLimitResetMs(r) == 20);
  r.headers[1].second = "0";
  CHECK(RateLimitResetMs(r) == 360000);  // both out: the longer
  r.headers[0].second = "3";
  r.headers[1].second = "12";
  // Neither at zero (a request bigger than what is left): tokens.
  CHECK(RateLimitResetMs(r) == 360000);
  r = WithHeaders(429, {{"x-ratelimit-reset-requests", "1s"}});
  CHECK(RateLimitResetMs(r) == -1);
  r = WithHeaders(429, {{"x-ratelimit-reset-tokens", "bogus"}});
  CHECK(RateLimitResetMs(r) == -1);
}

TEST_CASE("HintedDelayMs takes the hints in the documented order") {
  HttpResponse r = WithHeaders(429, {{"x-ratelimit-remaining-tokens", "0"},
                                     {"x-ratelimit-reset-tokens", "7s"}});
  CHECK(HintedDelayMs(r, 0) == 7000);
  r.body = "Please try again in 1.5s.";
  CHECK(HintedDelayMs(r, 0) == 1500);
  r.headers.push_back({"retry-after", "2"});
  CHECK(HintedDelayMs(r, 0) == 2000);
  r.headers.push_back({"retry-after-ms", "2500"});
  CHECK(HintedDelayMs(r, 0) == 2500);
  // On a 5xx the rate headers and body are not about this failure.
  HttpResponse e = WithHeaders(503, {{"x-ratelimit-remaining-tokens", "0"},
                                     {"x-ratelimit-reset-tokens", "7s"}});
  e.body = "Please try again in 1.5s.";
  CHECK(HintedDelayMs(e, 0) == -1);
  e.headers.push_back({"retry-after", "4"});
  CHECK(HintedDelayMs(e, 0) == 4000);
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
  HttpResponse limited = WithStatus(429);
  limited.body = "Please try again in 6m0s.";
  CHECK(RetryDelayMs(limited, 1, config, 0, 0) == 4000);  // capped
  limited.body = "Please try again in 1.2s.";
  CHECK(RetryDelayMs(limited, 1, config, 0, 0) == 1200);  // not jittered
}

TEST_CASE("A redirect is fatal and names where it points, printably") {
  HttpResponse r = WithHeaders(307, {{"location", "http://127.0.0.2/v1/\x1b[31m"}});
  CHECK(Classify(r, "", "") == Outcome::kFatal);
  CHECK(Classify(WithStatus(301), "", "") == Outcome::kFatal);
  CHECK(RedirectMessage(r) ==
        "the server redirects to \"http://127.0.0.2/v1/?[31m\"; redirects are not "
        "followed, so that the API key goes only to --base-url: set --base-url "
        "to the API's address");
  CHECK(RedirectMessage(WithStatus(302)).find("without a Location") !=
        std::string::npos);
}
