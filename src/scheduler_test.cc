#include "scheduler.h"

#include <doctest/doctest.h>

#include <string>

#include <fmt/core.h>
#include <rapidjson/document.h>

#include "openai_codec.h"
#include "test_util.h"

namespace {

Batch MakeBatch(std::vector<std::string> texts, uint64_t first_seq = 0) {
  Batch b;
  for (std::string& t : texts) {
    Record r;
    r.seq = first_seq++;
    r.line = r.seq + 1;
    r.text = std::move(t);
    b.records.push_back(std::move(r));
  }
  return b;
}

std::vector<std::string> Inputs(const HttpRequest& request) {
  rapidjson::Document doc;
  doc.Parse(request.body.c_str());
  std::vector<std::string> out;
  for (const auto& v : doc["input"].GetArray()) out.push_back(v.GetString());
  return out;
}

// A server that embeds each text as [length] in float format.
HttpResponse Embed(const HttpRequest& request) {
  std::string body = R"({"data":[)";
  std::vector<std::string> inputs = Inputs(request);
  for (size_t i = 0; i < inputs.size(); ++i)
    body += fmt::format(R"({}{{"index":{},"embedding":[{}]}})", i ? "," : "", i,
                        inputs[i].size());
  body += "]}";
  HttpResponse r;
  r.status = 200;
  r.body = body;
  return r;
}

HttpResponse Error(long status, const char* code, const char* message) {
  HttpResponse r;
  r.status = status;
  r.body = fmt::format(R"({{"error":{{"message":"{}","type":"x","code":"{}"}}}})",
                       message, code);
  return r;
}

struct Harness {
  explicit Harness(FakeTransport::Responder respond, int concurrency = 2)
      : transport(&clock, std::move(respond)),
        codec({"http://127.0.0.1:1", "m", 0, false, ""}),
        scheduler(&transport, &codec, &clock,
                  {concurrency, 3, {100, 1000}, 42}) {}

  std::vector<BatchResult> RunAll() {
    std::vector<BatchResult> out;
    for (int i = 0; i < 100 && scheduler.outstanding() > 0 && !scheduler.fatal();
         ++i) {
      bool ready;
      scheduler.Step(1000, -1, &ready);
      BatchResult r;
      while (scheduler.NextResult(&r)) out.push_back(std::move(r));
    }
    return out;
  }

  FakeClock clock;
  FakeTransport transport;
  OpenAiCodec codec;
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

TEST_CASE("Scheduler retries after the server's delay, without sleeping") {
  int calls = 0;
  Harness h([&](const HttpRequest& req) {
    if (++calls == 1) {
      HttpResponse r = Error(429, "rate_limit_exceeded", "slow down");
      r.headers = {{"retry-after-ms", "700"}};
      return r;
    }
    return Embed(req);
  });
  h.scheduler.Submit(MakeBatch({"abc"}));
  std::vector<BatchResult> results = h.RunAll();
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kEmbedded);
  CHECK(h.scheduler.stats().retries == 1);
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
