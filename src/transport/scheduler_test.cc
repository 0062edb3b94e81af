#include "transport/scheduler.h"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>

#include <fmt/core.h>
#include <rapidjson/document.h>

#include "providers/codec_test_util.h"
#include "providers/openai_codec.h"
#include "test_util.h"

namespace {

Batch MakeBatch(std::vector<std::string> texts, uint64_t first_seq = 0,
                uint32_t tokens_each = 0) {
  Batch b;
  for (std::string& t : texts) {
    Record r;
    r.seq = first_seq++;
    r.line = r.seq + 1;
    r.text = std::move(t);
    r.tokens = tokens_each;
    b.tokens += tokens_each;
    b.records.push_back(std::move(r));
  }
  return b;
}

HttpResponse Error(long status, const char* code, const char* message) {
  HttpResponse r;
  r.status = status;
  r.body = fmt::format(R"({{"error":{{"message":"{}","type":"x","code":"{}"}}}})",
                       message, code);
  return r;
}

SchedulerConfig Config(int concurrency) {
  SchedulerConfig c;
  c.concurrency = concurrency;
  c.max_attempts = 3;
  c.backoff = {100, 1000};
  c.seed = 42;
  return c;
}

// As Config, with --rpm and --tpm far above what a test reaches: every slot
// is open from the first request, with no wait for the first answer.
SchedulerConfig OpenConfig(int concurrency) {
  SchedulerConfig c = Config(concurrency);
  c.rpm = 1000000;
  c.tpm = 10000000000;
  return c;
}

HttpResponse WithHeaders(HttpResponse r,
                         std::vector<std::pair<std::string, std::string>> headers) {
  r.headers = std::move(headers);
  return r;
}

// Answers the first request with `first`, every later one with Embed().
FakeTransport::Responder FirstThenEmbed(HttpResponse first) {
  auto calls = std::make_shared<int>(0);
  return [calls, first](const HttpRequest& req) {
    return ++*calls == 1 ? first : Embed(req);
  };
}

std::vector<std::unique_ptr<OpenAiCodec>> Codecs(
    const std::vector<std::string>& urls) {
  std::vector<std::unique_ptr<OpenAiCodec>> codecs;
  for (const std::string& url : urls)
    codecs.push_back(std::make_unique<OpenAiCodec>(
        ConfigFor(url, "m", 0, false, "")));
  return codecs;
}

std::vector<SchedulerEndpoint> Endpoints(
    const std::vector<std::string>& urls,
    const std::vector<std::unique_ptr<OpenAiCodec>>& codecs) {
  std::vector<SchedulerEndpoint> endpoints;
  for (size_t i = 0; i < urls.size(); ++i)
    endpoints.push_back({urls[i], codecs[i].get()});
  return endpoints;
}

struct Harness {
  explicit Harness(FakeTransport::Responder respond, int concurrency = 2)
      : Harness(std::move(respond), Config(concurrency)) {}
  Harness(FakeTransport::Responder respond, SchedulerConfig config,
          std::vector<std::string> urls = {"http://127.0.0.1:1"})
      : transport(&clock, std::move(respond)),
        codecs(Codecs(urls)),
        scheduler(&transport, Endpoints(urls, codecs), &clock, config) {}

  std::vector<BatchResult> RunAll() {
    std::vector<BatchResult> out;
    for (int i = 0;
         i < 10000 && scheduler.outstanding() > 0 && !scheduler.fatal(); ++i) {
      bool ready;
      scheduler.Step(1000, -1, &ready);
      BatchResult r;
      while (scheduler.NextResult(&r)) out.push_back(std::move(r));
    }
    return out;
  }

  FakeClock clock;
  FakeTransport transport;
  std::vector<std::unique_ptr<OpenAiCodec>> codecs;  ///< One per endpoint.
  Scheduler scheduler;
};

}  // namespace

TEST_CASE("Scheduler keeps at most N requests in flight") {
  Harness h(Embed, 2);
  for (int i = 0; i < 5; ++i) h.scheduler.Submit(MakeBatch({"ab"}, i));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(results.size() == 5);
  CHECK(h.transport.sent.size() == 5);
  CHECK(h.transport.max_active == 2);
  for (const BatchResult& r : results) {
    CHECK(r.status == BatchResult::kEmbedded);
    CHECK(r.embeddings.values == std::vector<float>{2});
  }
}

TEST_CASE("Scheduler starts a batch as it is submitted; queued() counts the rest") {
  Harness h(FirstThenEmbed(WithHeaders(Error(500, "server_error", "oops"),
                                       {{"retry-after-ms", "700"}})),
            OpenConfig(2));
  h.scheduler.Submit(MakeBatch({"a"}, 0));
  h.scheduler.Submit(MakeBatch({"b"}, 1));
  CHECK(h.transport.sent.size() == 2);  // no Step() needed
  CHECK(h.scheduler.queued() == 0);
  h.scheduler.Submit(MakeBatch({"c"}, 2));
  h.scheduler.Submit(MakeBatch({"d"}, 3));
  CHECK(h.scheduler.queued() == 2);
  // "a" is answered 500 and waits 700 ms, "b" is answered: "c" and "d"
  // take the slots. A retry waiting out its delay is not queued.
  bool input_ready = false;
  h.scheduler.Step(0, -1, &input_ready);
  CHECK(h.transport.sent.size() == 4);
  CHECK(h.scheduler.outstanding() == 4);
  CHECK(h.scheduler.queued() == 0);
  CHECK(h.RunAll().size() == 4);
}

TEST_CASE("Scheduler retries after the server's delay, without sleeping") {
  Harness h(FirstThenEmbed(
      WithHeaders(Error(429, "rate_limit_exceeded", "slow down"),
                  {{"retry-after-ms", "700"}})));
  h.scheduler.Submit(MakeBatch({"abc"}));
  std::vector<BatchResult> results = h.RunAll();
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kEmbedded);
  CHECK(h.scheduler.stats().retries.rate_limited == 1);
  CHECK(h.scheduler.stats().retries.total() == 1);
  CHECK(h.scheduler.stats().rate_limited == 1);
  CHECK(h.clock.now_ms == 700);  // waited exactly the hint, by fake time
}

TEST_CASE("Scheduler treats an unusable 200 as retryable and gives up") {
  Harness h([](const HttpRequest&) {
    HttpResponse r;
    r.status = 200;
    r.body = R"({"data":[]})";
    return r;
  });
  h.scheduler.Submit(MakeBatch({"a"}));
  std::vector<BatchResult> results = h.RunAll();
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kFailed);
  CHECK(results[0].error ==
        "gave up after 3 attempts: unusable response: response has 0 "
        "embeddings for 1 inputs");
  CHECK(h.transport.sent.size() == 3);
  CHECK(h.scheduler.stats().retries.bad_response == 2);
  CHECK(h.scheduler.stats().retries.total() == 2);
}

TEST_CASE("Scheduler counts a retry after a failed connection as network") {
  Harness h(FirstThenEmbed([] {
    HttpResponse r;
    r.transport_error = "Connection refused";
    return r;
  }()));
  h.scheduler.Submit(MakeBatch({"a"}));
  std::vector<BatchResult> results = h.RunAll();
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kEmbedded);
  CHECK(h.scheduler.stats().retries.network == 1);
  CHECK(h.scheduler.stats().retries.total() == 1);
}

TEST_CASE("Scheduler bisects a rejected batch down to the bad record") {
  Harness h([](const HttpRequest& req) {
    for (const std::string& in : Inputs(req))
      if (in == "bad") return Error(400, "", "input is invalid");
    return Embed(req);
  });
  h.scheduler.Submit(MakeBatch({"a", "bb", "bad", "dddd", "e"}));
  std::vector<BatchResult> results = h.RunAll();
  size_t embedded = 0;
  std::vector<std::string> rejected;
  for (const BatchResult& r : results) {
    if (r.status == BatchResult::kEmbedded) embedded += r.batch.records.size();
    if (r.status == BatchResult::kRejected) {
      rejected.push_back(r.batch.records[0].text);
      CHECK(r.error == "rejected by the API (HTTP 400): input is invalid");
    }
  }
  CHECK(embedded == 4);
  CHECK(rejected == std::vector<std::string>{"bad"});
  CHECK(h.scheduler.outstanding() == 0);
}

TEST_CASE("Scheduler takes out the input a context-length refusal names") {
  // Issue 22, item 6: no bisection when the message says which input.
  Harness h([](const HttpRequest& req) {
    std::vector<std::string> in = Inputs(req);
    for (size_t i = 0; i < in.size(); ++i)
      if (in[i] == "long")
        return Error(400, "",
                     fmt::format("Invalid 'input[{}]': maximum context length "
                                 "is 5 tokens.", i).c_str());
    return Embed(req);
  });
  h.scheduler.Submit(MakeBatch({"a", "bb", "long", "dddd", "e"}));
  std::vector<BatchResult> results = h.RunAll();
  REQUIRE(h.transport.sent.size() == 2);
  CHECK(Inputs(h.transport.sent[1]) ==
        std::vector<std::string>{"a", "bb", "dddd", "e"});
  REQUIRE(results.size() == 2);
  CHECK(results[0].status == BatchResult::kTooLong);
  CHECK(results[0].server_max_tokens == 5);
  REQUIRE(results[0].batch.records.size() == 1);
  CHECK(results[0].batch.records[0].text == "long");
  CHECK(results[0].error == "rejected by the API (HTTP 400): Invalid "
                            "'input[2]': maximum context length is 5 tokens.");
  CHECK(results[1].status == BatchResult::kEmbedded);
  CHECK(results[1].batch.records.size() == 4);
  CHECK(h.scheduler.outstanding() == 0);
}

TEST_CASE("Scheduler bisects to a too-long input the refusal does not name") {
  Harness h([](const HttpRequest& req) {
    for (const std::string& in : Inputs(req))
      if (in == "long")
        return Error(400, "context_length_exceeded", "too long for the model");
    return Embed(req);
  });
  h.scheduler.Submit(MakeBatch({"a", "long", "c"}));
  std::vector<BatchResult> results = h.RunAll();
  size_t too_long = 0, embedded = 0;
  for (const BatchResult& r : results) {
    if (r.status == BatchResult::kEmbedded) embedded += r.batch.records.size();
    if (r.status != BatchResult::kTooLong) continue;
    ++too_long;
    CHECK(r.batch.records[0].text == "long");
    CHECK(r.server_max_tokens == -1);
  }
  CHECK(too_long == 1);
  CHECK(embedded == 2);
}

TEST_CASE("Scheduler stops on a fatal error and keeps the batch unanswered") {
  Harness h([](const HttpRequest&) {
    return Error(429, "insufficient_quota", "You exceeded your current quota");
  });
  h.scheduler.Submit(MakeBatch({"a"}));
  h.scheduler.Submit(MakeBatch({"b"}, 1));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(results.empty());
  CHECK(h.scheduler.fatal());
  CHECK(h.scheduler.fatal_message() ==
        "HTTP 429: You exceeded your current quota");
  CHECK(h.scheduler.outstanding() == 2);
}

namespace {

// The server's side of the per-minute budgets, as OpenAI and fake_provider
// keep them: buckets of a minute's worth, refilled continuously, starting
// full; a refused request takes nothing. Runs on the fake clock.
struct ServerLimits {
  ServerLimits(double rpm, double tpm)
      : rpm(rpm), tpm(tpm), requests(rpm), tokens(tpm) {}

  void Refill() {
    double ms = static_cast<double>(clock->now_ms - at_ms);
    at_ms = clock->now_ms;
    requests = std::min(rpm, requests + ms * rpm / 60000);
    tokens = std::min(tpm, tokens + ms * tpm / 60000);
  }

  // Takes a request of `t` tokens if both budgets allow; fills *r with the
  // headers, and a 429 (its only hint the message, as in OpenAI's bodies)
  // if not.
  bool Take(uint64_t t, HttpResponse* r) {
    Refill();
    bool ok = requests >= 1 && tokens >= static_cast<double>(t);
    if (ok) {
      requests -= 1;
      tokens -= static_cast<double>(t);
    } else {
      ++refused;
      double wait = std::max((1 - requests) * 60000 / rpm,
                             (static_cast<double>(t) - tokens) * 60000 / tpm);
      *r = Error(429, "rate_limit_exceeded",
                 fmt::format("Rate limit reached. Please try again in {}ms.",
                             static_cast<int64_t>(std::ceil(wait)))
                     .c_str());
    }
    r->headers.push_back(
        {"x-ratelimit-limit-requests", fmt::format("{}", rpm)});
    r->headers.push_back({"x-ratelimit-limit-tokens", fmt::format("{}", tpm)});
    r->headers.push_back({"x-ratelimit-remaining-requests",
                          fmt::format("{}", static_cast<int64_t>(requests))});
    r->headers.push_back({"x-ratelimit-remaining-tokens",
                          fmt::format("{}", static_cast<int64_t>(tokens))});
    return ok;
  }

  const FakeClock* clock = nullptr;  ///< Set once the harness exists.
  double rpm, tpm, requests, tokens;
  int64_t at_ms = 0;
  int refused = 0;
};

// Each input of "tN" names its own token count N, so the fake server and
// the scheduler agree on what a request costs.
uint64_t TokensOf(const HttpRequest& request) {
  uint64_t sum = 0;
  for (const std::string& in : Inputs(request)) sum += std::stoul(in.substr(1));
  return sum;
}

std::vector<std::string> Texts(int n, int tokens) {
  return std::vector<std::string>(n, fmt::format("t{}", tokens));
}

size_t Embedded(const std::vector<BatchResult>& results) {
  size_t n = 0;
  for (const BatchResult& r : results)
    if (r.status == BatchResult::kEmbedded) n += r.batch.records.size();
  return n;
}

}  // namespace

TEST_CASE("Scheduler: a 429 holds back every start, not just its batch") {
  Harness h(FirstThenEmbed(
      WithHeaders(Error(429, "rate_limit_exceeded", "slow down"),
                  {{"retry-after-ms", "700"}})),
      1);
  h.scheduler.Submit(MakeBatch({"a"}, 0));
  h.scheduler.Submit(MakeBatch({"b"}, 1));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 2);
  REQUIRE(h.transport.sent_ms.size() == 3);
  // With one slot free, "b" would have gone at once; it waited too.
  CHECK(h.transport.sent_ms[1] >= 700);
  CHECK(h.transport.sent_ms[2] >= 700);
}

TEST_CASE("Scheduler: a 5xx does not hold back the other batches") {
  Harness h(FirstThenEmbed(
      WithHeaders(Error(503, "", "overloaded"),
                  {{"retry-after-ms", "700"}})),
      1);
  h.scheduler.Submit(MakeBatch({"a"}, 0));
  h.scheduler.Submit(MakeBatch({"b"}, 1));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 2);
  REQUIRE(h.transport.sent_ms.size() == 3);
  CHECK(h.transport.sent_ms[1] == 0);
  CHECK(h.transport.sent_ms[2] == 700);
}

TEST_CASE("Scheduler paces to limits learned from headers, with no 429") {
  ServerLimits server(1000, 6000);  // 100 tokens a second
  Harness h(
      [&](const HttpRequest& req) {
        HttpResponse r = Embed(req);
        server.Take(TokensOf(req), &r);
        return r;
      },
      4);
  server.clock = &h.clock;
  // 40 batches of 100 tokens: 4000 tokens, 6000 at once, then 100 a second.
  for (int i = 0; i < 40; ++i)
    h.scheduler.Submit(MakeBatch(Texts(2, 50), i * 2, 50));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 80);
  CHECK(server.refused == 0);
  CHECK(h.scheduler.stats().rate_limited == 0);
  // Under the limit: no pacing was needed at all.
  CHECK(h.clock.now_ms == 0);

  // Twice as much as the burst allows: the second half is paced.
  for (int i = 0; i < 120; ++i)
    h.scheduler.Submit(MakeBatch(Texts(1, 100), 1000 + i, 100));
  results = h.RunAll();
  CHECK(Embedded(results) == 120);
  CHECK(server.refused == 0);
  // The ideal is 12000 tokens - 2000 left = 10000 at 100/s: 100 s; pacing
  // keeps a margin of a quarter second once, and rounds each wait up to a
  // millisecond.
  CHECK(h.clock.now_ms >= 100000);
  CHECK(h.clock.now_ms <= 100000 + 250 + 120);
  CHECK(h.scheduler.stats().paced > 0);
}

TEST_CASE("Scheduler sends one request before any limit is known") {
  // Issue 22, item 7: five slots and a key whose per-minute token budget is
  // below the first burst. The first request goes alone; its headers tell
  // the limit, and the rest are paced to it.
  ServerLimits server(1000, 250);
  Harness h(
      [&](const HttpRequest& req) {
        HttpResponse r = Embed(req);
        server.Take(TokensOf(req), &r);
        return r;
      },
      5);
  server.clock = &h.clock;
  for (int i = 0; i < 5; ++i)
    h.scheduler.Submit(MakeBatch(Texts(1, 100), i, 100));
  CHECK(h.transport.sent.size() == 1);
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 5);
  CHECK(server.refused == 0);
  CHECK(h.scheduler.stats().rate_limited == 0);
}

TEST_CASE("Scheduler cuts the first request small: other slots wait for it") {
  Harness h(Embed, 3);
  h.scheduler.Submit(MakeBatch(Texts(10, 4000), 0, 4000));
  h.scheduler.Submit(MakeBatch(Texts(10, 4000), 10, 4000));
  REQUIRE(h.transport.sent.size() == 1);
  CHECK(TokensOf(h.transport.sent[0]) == 8000);
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 20);
  REQUIRE(h.transport.sent.size() == 3);
  CHECK(TokensOf(h.transport.sent[1]) == 32000);  // the rest of the first
  CHECK(TokensOf(h.transport.sent[2]) == 40000);
}

TEST_CASE("Scheduler opens every slot once the first answer lacks rate headers") {
  Harness h(Embed, 5);
  for (int i = 0; i < 5; ++i) h.scheduler.Submit(MakeBatch({"ab"}, i));
  CHECK(h.transport.sent.size() == 1);
  bool ready = false;
  h.scheduler.Step(0, -1, &ready);
  CHECK(h.transport.sent.size() == 5);
  CHECK(h.transport.active() == 4);
}

TEST_CASE("Scheduler: a failed connection does not open the other slots") {
  // No answer says nothing about the server's limits.
  Harness h(FirstThenEmbed(HttpResponse{}), 5);
  for (int i = 0; i < 5; ++i) h.scheduler.Submit(MakeBatch({"ab"}, i));
  bool ready = false;
  h.scheduler.Step(0, -1, &ready);
  CHECK(h.transport.sent.size() == 2);
  CHECK(h.transport.active() == 1);
}

TEST_CASE("Scheduler paces to --rpm and --tpm flags from the first request") {
  ServerLimits server(60, 1000000);
  SchedulerConfig config = Config(8);
  config.rpm = 60;
  config.tpm = 1000000;
  Harness h(
      [&](const HttpRequest& req) {
        HttpResponse r = Embed(req);
        server.Take(TokensOf(req), &r);
        r.headers.clear();  // a server that sends no rate headers
        return r;
      },
      config);
  server.clock = &h.clock;
  for (int i = 0; i < 70; ++i)
    h.scheduler.Submit(MakeBatch(Texts(1, 1), i, 1));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 70);
  CHECK(server.refused == 0);
  CHECK(h.clock.now_ms >= 10000);
  CHECK(h.clock.now_ms <= 11000);
}

TEST_CASE("Scheduler recovers from 429s when it does not know the limit") {
  // No headers, no flags: only the 429 bodies' hints and the hold after
  // each keep the run going; nothing is lost.
  ServerLimits server(1000, 600);  // 10 tokens a second
  SchedulerConfig config = Config(4);
  config.max_attempts = 100;
  Harness h(
      [&](const HttpRequest& req) {
        HttpResponse r = Embed(req);
        server.Take(TokensOf(req), &r);
        r.headers.clear();
        return r;
      },
      config);
  server.clock = &h.clock;
  for (int i = 0; i < 20; ++i)
    h.scheduler.Submit(MakeBatch(Texts(1, 100), i, 100));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 20);
  CHECK(server.refused > 0);
  CHECK(h.scheduler.stats().rate_limited ==
        static_cast<uint64_t>(server.refused));
}

TEST_CASE("Scheduler splits a batch over the --tpm limit before sending") {
  SchedulerConfig config = Config(2);
  config.tpm = 250;
  Harness h(Embed, config);
  h.scheduler.Submit(MakeBatch({"t100", "t100", "t100", "t100"}, 0, 100));
  h.scheduler.Submit(MakeBatch({"t300"}, 4, 300));  // alone over the limit
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 4);
  for (const HttpRequest& req : h.transport.sent)
    CHECK(Inputs(req).size() == 2);
  CHECK(h.transport.sent.size() == 2);
  CHECK(h.scheduler.stats().splits == 1);
  std::vector<std::string> rejected;
  for (const BatchResult& r : results)
    if (r.status == BatchResult::kRejected) {
      rejected.push_back(r.batch.records[0].text);
      CHECK(r.error ==
            "text has 300 tokens, more than the whole tokens-per-minute limit "
            "of 250");
    }
  CHECK(rejected == std::vector<std::string>{"t300"});
  CHECK(h.scheduler.outstanding() == 0);
}

TEST_CASE("Scheduler splits on \"Request too large\", never retries it") {
  Harness h([](const HttpRequest& req) {
    if (TokensOf(req) > 250)
      return Error(429, "rate_limit_exceeded",
                   "Request too large for m in organization org-x on tokens "
                   "per min (TPM): Limit 250, Requested 400.");
    return Embed(req);
  });
  h.scheduler.Submit(MakeBatch({"t100", "t100", "t100", "t100"}, 0, 100));
  h.scheduler.Submit(MakeBatch({"t300"}, 4, 300));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 4);
  CHECK(h.scheduler.stats().retries.total() == 0);
  CHECK(h.scheduler.stats().splits == 1);
  CHECK(h.scheduler.stats().rate_limited == 2);
  CHECK(h.transport.sent.size() == 4);  // 400, 2 x 200, and the 300 once
  size_t rejected = 0;
  for (const BatchResult& r : results)
    if (r.status == BatchResult::kRejected) {
      ++rejected;
      CHECK(r.batch.records[0].text == "t300");
      CHECK(r.error.rfind("rejected by the API (HTTP 429): Request too large",
                          0) == 0);
    }
  CHECK(rejected == 1);
}

TEST_CASE("Scheduler fails a batch at once on x-should-retry: false") {
  Harness h([](const HttpRequest&) {
    HttpResponse r = Error(500, "", "broken for good");
    r.headers = {{"x-should-retry", "false"}};
    return r;
  });
  h.scheduler.Submit(MakeBatch({"a", "b"}));
  std::vector<BatchResult> results = h.RunAll();
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kFailed);
  CHECK(results[0].error ==
        "HTTP 500: broken for good (the server said not to retry: "
        "x-should-retry)");
  CHECK(h.transport.sent.size() == 1);
  CHECK(h.scheduler.stats().gave_up == 1);
}

TEST_CASE("Scheduler retries a 400 the server marks x-should-retry: true") {
  Harness h(FirstThenEmbed(
      WithHeaders(Error(400, "", "try that again"),
                  {{"x-should-retry", "true"}})));
  h.scheduler.Submit(MakeBatch({"a", "b"}));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 2);
  CHECK(h.scheduler.stats().splits == 0);
  CHECK(h.scheduler.stats().retries.total() == 1);
  CHECK(h.scheduler.stats().retries.server == 1);
}

TEST_CASE("Scheduler gives up when a retry would pass the retry time cap") {
  SchedulerConfig config = Config(1);
  config.max_attempts = 100;
  config.max_retry_time_ms = 1000;
  Harness h(
      [](const HttpRequest&) {
        HttpResponse r = Error(503, "", "overloaded");
        r.headers = {{"retry-after-ms", "400"}};
        return r;
      },
      config);
  h.scheduler.Submit(MakeBatch({"a"}));
  std::vector<BatchResult> results = h.RunAll();
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kFailed);
  // Tries at 0, 400 and 800 ms; one at 1200 would be past the cap.
  CHECK(h.transport.sent_ms == std::vector<int64_t>{0, 400, 800});
  CHECK(results[0].error ==
        "gave up after 3 attempts in 0.8 s (the retry time limit is 1 s): "
        "HTTP 503: overloaded");
}

TEST_CASE("Scheduler caps a long server hint at the longest single wait") {
  SchedulerConfig config = Config(1);
  config.backoff.max_wait_ms = 2000;
  Harness h(FirstThenEmbed(Error(429, "rate_limit_exceeded",
                                 "Please try again in 6m0s.")),
      config);
  h.scheduler.Submit(MakeBatch({"a"}));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 1);
  CHECK(h.transport.sent_ms == std::vector<int64_t>{0, 2000});
}

TEST_CASE("Scheduler spreads batches over endpoints and sets a dead one aside") {
  SchedulerConfig config = Config(2);
  config.max_attempts = 5;
  auto per_url = std::make_shared<std::map<std::string, int>>();
  Harness h(
      [per_url](const HttpRequest& req) {
        ++(*per_url)[req.url];
        if (req.url.starts_with("http://127.0.0.2:1/")) {
          HttpResponse refused;
          refused.transport_error = "Connection refused";
          return refused;
        }
        return Embed(req);
      },
      config, {"http://127.0.0.1:1/v1/", "http://127.0.0.2:1/v1", "http://127.0.0.3:1"});
  for (int i = 0; i < 30; ++i)
    h.scheduler.Submit(MakeBatch({"text " + std::to_string(i)}));
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 30);
  const EndpointPool& pool = h.scheduler.endpoints();
  CHECK(pool.counts(1).set_aside >= 1);
  CHECK(pool.counts(1).failures == pool.counts(1).requests);
  // The dead endpoint got its first few requests, then little: the live
  // ones took the rest, about evenly.
  CHECK(pool.counts(1).requests < 10);
  CHECK(pool.counts(0).requests >= 13);
  CHECK(pool.counts(2).requests >= 13);
  // Each request was built for the endpoint it was counted on, rooted at
  // that endpoint's URL however it ends.
  auto requests = [&](size_t i) { return static_cast<int>(pool.counts(i).requests); };
  CHECK(*per_url == std::map<std::string, int>{
                        {"http://127.0.0.1:1/v1/embeddings", requests(0)},
                        {"http://127.0.0.2:1/v1/embeddings", requests(1)},
                        {"http://127.0.0.3:1/embeddings", requests(2)}});
}

namespace {

// A server that answers each request base_ms + ms_per_ktok per 1,000 tokens
// after it starts, in fake time; a record's tokens are its text's length.
class LatencyTransport : public FinishedQueueTransport {
 public:
  LatencyTransport(FakeClock* clock, int64_t base_ms, int64_t ms_per_ktok)
      : clock_(clock), base_ms_(base_ms), ms_per_ktok_(ms_per_ktok) {}

  void Start(uint64_t tag, HttpRequest request) override {
    int64_t tokens = 0;
    for (const std::string& text : Inputs(request))
      tokens += static_cast<int64_t>(text.size());
    tokens_sent.push_back(tokens);
    due_.push_back(
        {clock_->now_ms + base_ms_ + tokens * ms_per_ktok_ / 1000, tag,
         Embed(request)});
  }
  void Wait(int timeout_ms, int, bool* fd_ready) override {
    *fd_ready = false;
    int64_t until = clock_->now_ms + timeout_ms;
    for (const Due& d : due_) until = std::min(until, d.at_ms);
    clock_->now_ms = std::max(clock_->now_ms, until);
    for (auto it = due_.begin(); it != due_.end();) {
      if (it->at_ms > clock_->now_ms) {
        ++it;
        continue;
      }
      finished_.emplace_back(it->tag, std::move(it->response));
      last_answer_ms = clock_->now_ms;
      it = due_.erase(it);
    }
  }
  size_t active() const override { return due_.size() + finished_.size(); }
  void CancelAll() override {
    due_.clear();
    finished_.clear();
  }

  std::vector<int64_t> tokens_sent;  ///< Per request, in start order.
  int64_t last_answer_ms = 0;

 private:
  struct Due {
    int64_t at_ms;
    uint64_t tag;
    HttpResponse response;
  };
  FakeClock* clock_;
  int64_t base_ms_, ms_per_ktok_;
  std::vector<Due> due_;
};

// Seven batches of 300 records of 1,000 tokens for 5 slots, on a server
// answering in 250 ms + 20 ms per 1,000 tokens (a full batch: 6.25 s).
struct TailRun {
  explicit TailRun(bool end_input) : transport(&clock, 250, 20) {
    std::vector<std::unique_ptr<OpenAiCodec>> codecs =
        Codecs({"http://127.0.0.1:1"});
    Scheduler scheduler(&transport, Endpoints({"http://127.0.0.1:1"}, codecs),
                        &clock, OpenConfig(5));
    for (uint64_t b = 0; b < 7; ++b)
      scheduler.Submit(MakeBatch(std::vector<std::string>(300, std::string(1000, 'x')),
                                 b * 300, 1000));
    if (end_input) scheduler.EndInput();
    for (int i = 0; i < 1000 && scheduler.outstanding() > 0; ++i) {
      bool ready;
      scheduler.Step(1000, -1, &ready);
      BatchResult r;
      while (scheduler.NextResult(&r)) {
        CHECK(r.status == BatchResult::kEmbedded);
        for (const Record& record : r.batch.records) seqs.push_back(record.seq);
      }
    }
    std::sort(seqs.begin(), seqs.end());
  }
  FakeClock clock;
  LatencyTransport transport;
  std::vector<uint64_t> seqs;  ///< Of every record answered, sorted.
};

std::vector<uint64_t> Iota(uint64_t n) {
  std::vector<uint64_t> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

TEST_CASE("Scheduler: after the input ends the last work is spread over all slots") {
  TailRun run(true);
  CHECK(run.seqs == Iota(2100));
  // The first round goes whole (each is under its share, 2.1M / 5). The two
  // batches left become the slots' shares of 600,000 / 5 tokens, cut from
  // the front of each; a batch's remnant goes as it is.
  CHECK(run.transport.tokens_sent ==
        std::vector<int64_t>{300000, 300000, 300000, 300000, 300000, 120000,
                             120000, 60000, 120000, 120000, 60000});
  // 9.15 s against 12.5 s uncut; the bound is (7 x 250 ms + 2.1M tokens x
  // 20 ms / 1,000) / 5 = 8.75 s.
  CHECK(run.transport.last_answer_ms == 9150);
}

TEST_CASE("Scheduler: while input may still come, batches go as formed") {
  TailRun run(false);
  CHECK(run.seqs == Iota(2100));
  CHECK(run.transport.tokens_sent == std::vector<int64_t>(7, 300000));
  CHECK(run.transport.last_answer_ms == 2 * 6250);
}

TEST_CASE("Scheduler cuts requests to a slice of a learned token limit") {
  // Issue 23: a request of a fifth of the minute's budget cannot be shared
  // finely with other processes on the key. Once the limit is known
  // (640,000 a minute), a request carries at most 1/64 of it, 10,000.
  ServerLimits server(1000, 640000);
  Harness h(
      [&](const HttpRequest& req) {
        HttpResponse r = Embed(req);
        server.Take(TokensOf(req), &r);
        return r;
      },
      2);
  server.clock = &h.clock;
  h.scheduler.Submit(MakeBatch(Texts(4, 2000), 0, 2000));      // the probe
  h.scheduler.Submit(MakeBatch(Texts(60, 2000), 4, 2000));     // 120,000
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 64);
  CHECK(server.refused == 0);
  REQUIRE(h.transport.sent.size() == 13);
  for (size_t i = 1; i < h.transport.sent.size(); ++i)
    CHECK(TokensOf(h.transport.sent[i]) == 10000);
}

TEST_CASE("Scheduler: the slice never makes the request limit bind first") {
  // 640,000 tokens but 16 requests a minute: slices of 1/64 would need 64
  // requests for a minute's tokens, so a request may carry twice the
  // tokens per request the limits allow together, 80,000.
  ServerLimits server(16, 640000);
  Harness h(
      [&](const HttpRequest& req) {
        HttpResponse r = Embed(req);
        server.Take(TokensOf(req), &r);
        return r;
      },
      2);
  server.clock = &h.clock;
  h.scheduler.Submit(MakeBatch(Texts(4, 2000), 0, 2000));
  h.scheduler.Submit(MakeBatch(Texts(80, 2000), 4, 2000));  // 160,000
  std::vector<BatchResult> results = h.RunAll();
  CHECK(Embedded(results) == 84);
  REQUIRE(h.transport.sent.size() == 3);
  CHECK(TokensOf(h.transport.sent[1]) == 80000);
  CHECK(TokensOf(h.transport.sent[2]) == 80000);
}
