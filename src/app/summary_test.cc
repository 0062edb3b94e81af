#include "app/summary.h"

#include <doctest/doctest.h>
#include <rapidjson/document.h>

namespace {

RunStats Sample() {
  RunStats s;
  s.model = "text-embedding-3-small";
  s.read = 19207;
  s.embedded = 19150;
  s.from_journal = 412;
  s.duplicates = 1;
  s.split = 12;
  s.rejected = 57;
  s.batches = 43;
  s.requests = 48;
  s.rate_limited = 3;
  s.retries.rate_limited = 3;
  s.retries.server = 2;
  s.tokens_sent = 8123456;
  s.usd_per_million = 0.02;
  s.elapsed_ms = 4000;
  return s;
}

}  // namespace

TEST_CASE("GroupThousands") {
  CHECK(GroupThousands(0) == "0");
  CHECK(GroupThousands(999) == "999");
  CHECK(GroupThousands(1000) == "1,000");
  CHECK(GroupThousands(19207) == "19,207");
  CHECK(GroupThousands(123456789) == "123,456,789");
}

TEST_CASE("CountNoun agrees with its count") {
  CHECK(CountNoun(1, "attempt", "attempts") == "1 attempt");
  CHECK(CountNoun(0, "attempt", "attempts") == "0 attempts");
  CHECK(CountNoun(1234, "record", "records") == "1,234 records");
}

TEST_CASE("FormatSummary names every outcome, cause and the cost") {
  std::vector<std::string> want = {
      "19,207 records: 19,150 embedded (412 from the checkpoint, 1 "
      "duplicate, 12 split), 57 rejected",
      "48 requests, 5 retries (3 rate-limited, 2 server error); 8,123,456 "
      "tokens; est. $0.16 at $0.02/M tokens",
      "4.0 s, 4,802 records/s, 2,030,864 tokens/s"};
  CHECK(FormatSummary(Sample()) == want);
}

TEST_CASE("FormatSummary gives the Batch API jobs by state and their counts") {
  RunStats s = Sample();
  s.batch_jobs.jobs = 3;
  s.batch_jobs.states = {{"completed", 2}, {"expired", 1}};
  s.batch_jobs.total = 48000;
  s.batch_jobs.completed = 47000;
  s.batch_jobs.failed = 12;
  std::vector<std::string> lines = FormatSummary(s);
  REQUIRE(lines.size() == 4);
  CHECK(lines[2] ==
        "3 batch jobs (2 completed, 1 expired), 47,000 of 48,000 requests "
        "completed, 12 failed");
}

TEST_CASE("FormatSummary names the lines left to other shards") {
  RunStats s = Sample();
  s.other_shards = 57621;
  CHECK(FormatSummary(s)[0] ==
        "19,207 records: 19,150 embedded (412 from the checkpoint, 1 "
        "duplicate, 12 split), 57 rejected; 57,621 lines left to other "
        "shards");
}

TEST_CASE("FormatSummary and FormatStatsJson list the endpoints of a pool") {
  RunStats s = Sample();
  s.endpoints = {{"http://a/v1", 30, 0, 0}, {"http://b/v1", 18, 4, 1}};
  std::vector<std::string> lines = FormatSummary(s);
  REQUIRE(lines.size() == 4);
  CHECK(lines[2] ==
        "endpoints: http://a/v1 30 requests; http://b/v1 18 requests (4 "
        "failed, set aside 1 time)");
  rapidjson::Document d;
  std::string json = FormatStatsJson(s, 0);
  d.Parse(json.data(), json.size());
  REQUIRE_FALSE(d.HasParseError());
  REQUIRE(d["endpoints"].Size() == 2);
  CHECK(std::string(d["endpoints"][1]["url"].GetString()) == "http://b/v1");
  CHECK(d["endpoints"][1]["failures"].GetUint64() == 4);
  CHECK(d["endpoints"][1]["set_aside"].GetUint64() == 1);
  std::string without = FormatStatsJson(Sample(), 0);
  CHECK_FALSE(rapidjson::Document()
                  .Parse(without.data(), without.size())
                  .HasMember("endpoints"));
}

TEST_CASE("FormatSummary prefers the tokens the server reported") {
  RunStats s = Sample();
  s.tokens_reported = 8000000;
  CHECK(FormatSummary(s)[1].find("8,000,000 tokens; est. $0.16 at") !=
        std::string::npos);
}

TEST_CASE("FormatSummary: small costs keep two significant digits") {
  RunStats s = Sample();
  s.tokens_sent = 123;
  CHECK(FormatSummary(s)[1] ==
        "48 requests, 5 retries (3 rate-limited, 2 server error); 123 tokens; "
        "est. $0.0000025 at $0.02/M tokens");
  s.requests = 1;
  s.retries = {};
  s.retries.network = 1;
  s.tokens_sent = 612345678;
  CHECK(FormatSummary(s)[1] ==
        "1 request, 1 retry (1 network); 612,345,678 tokens; est. $12.25 at "
        "$0.02/M tokens");
}

TEST_CASE("FormatSummary of a dry run says what would be sent") {
  RunStats s = Sample();
  s.dry_run = true;
  s.requests = 0;
  s.retries = {};
  s.usd_per_million = -1;
  s.model = "local-model";
  s.checkpoint = true;
  std::vector<std::string> lines = FormatSummary(s);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind("dry run: 19,207 records: 19,150 would be embedded (",
                       0) == 0);
  CHECK(lines[1] ==
        "dry run: 43 requests would send 8,123,456 tokens; cost unknown for "
        "local-model (see --price)");

  // Without a checkpoint, the count of repeats is only what a run with one
  // would save, and the summary says so.
  s.checkpoint = false;
  lines = FormatSummary(s);
  REQUIRE(lines.size() == 4);
  CHECK(lines[2] ==
        "dry run: 1 duplicate counted once each, as with --checkpoint; a run "
        "without one sends a repeat again once its first copy is answered");
  s.duplicates = 0;
  CHECK(FormatSummary(s).size() == 3);
}

TEST_CASE("FormatStatsJson holds the same numbers") {
  std::string json = FormatStatsJson(Sample(), 2);
  REQUIRE(json.back() == '\n');
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["exit_status"].GetInt() == 2);
  CHECK(d["dry_run"].GetBool() == false);
  CHECK(std::string(d["model"].GetString()) == "text-embedding-3-small");
  CHECK(d["records"]["read"].GetUint64() == 19207);
  CHECK(d["records"]["embedded"].GetUint64() == 19150);
  CHECK(d["records"]["from_checkpoint"].GetUint64() == 412);
  CHECK(d["records"]["rejected"].GetUint64() == 57);
  CHECK(d["requests"]["batches"].GetUint64() == 43);
  CHECK(d["requests"]["sent"].GetUint64() == 48);
  CHECK(d["requests"]["retries"]["total"].GetUint64() == 5);
  CHECK(d["requests"]["retries"]["server"].GetUint64() == 2);
  CHECK(d["tokens"]["billed"].GetUint64() == 8123456);
  CHECK(d["cost"]["usd"].GetDouble() == doctest::Approx(0.16246912));
  CHECK(d["seconds"].GetDouble() == doctest::Approx(4.0));
}

TEST_CASE("FormatStatsJson writes a null cost when the price is unknown") {
  RunStats s = Sample();
  s.usd_per_million = -1;
  rapidjson::Document d;
  std::string json = FormatStatsJson(s, 0);
  d.Parse(json.data(), json.size());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["cost"].IsNull());
}
