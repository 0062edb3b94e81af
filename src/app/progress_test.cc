#include "app/progress.h"

#include <doctest/doctest.h>

TEST_CASE("ParseProgressMode: auto follows the terminal") {
  ProgressMode m = ProgressMode::kNone;
  REQUIRE(ParseProgressMode("auto", true, &m));
  CHECK(m == ProgressMode::kBar);
  REQUIRE(ParseProgressMode("auto", false, &m));
  CHECK(m == ProgressMode::kLog);
  REQUIRE(ParseProgressMode("bar", false, &m));
  CHECK(m == ProgressMode::kBar);
  REQUIRE(ParseProgressMode("none", true, &m));
  CHECK(m == ProgressMode::kNone);
  CHECK_FALSE(ParseProgressMode("fancy", true, &m));
}

TEST_CASE("ProgressMeter: log lines every interval, the first after one") {
  ProgressMeter p(ProgressMode::kLog, 30000);
  CHECK_FALSE(p.Due(0));
  CHECK_FALSE(p.Due(29999));
  CHECK(p.Due(30000));
  CHECK_FALSE(p.Due(30001));
  CHECK_FALSE(p.Due(59999));
  CHECK(p.Due(60500));
  CHECK_FALSE(p.Due(90000));  // the interval counts from the last line
  CHECK(p.Due(90500));
}

TEST_CASE("ProgressMeter: a bar draws at once, then a few times a second") {
  ProgressMeter p(ProgressMode::kBar, 30000);
  CHECK(p.Due(0));
  CHECK_FALSE(p.Due(100));
  CHECK(p.Due(250));
}

TEST_CASE("ProgressMeter: none never draws") {
  ProgressMeter p(ProgressMode::kNone, 1);
  CHECK_FALSE(p.Due(0));
  CHECK_FALSE(p.Due(1000000));
}

TEST_CASE("ProgressMeter line: share of expected records, rate, time left") {
  ProgressMeter p(ProgressMode::kBar, 0);
  RunStats s;
  s.input_bytes_total = 1000;
  s.input_bytes_done = 250;  // 500 read of 2000 expected
  s.read = 500;
  s.embedded = 90;
  s.rejected = 10;
  s.tokens_sent = 52345;
  s.in_flight = 5;
  s.elapsed_ms = 10000;
  CHECK(p.Line(s) ==
        "[0:10] [#...................] 5% 100/~2,000 records, 52.3k tokens, "
        "5 in flight, 10 rejected");
  s.elapsed_ms = 20000;
  s.input_bytes_done = 1000;  // all read: 1900 records, exactly
  s.read = 1900;
  s.embedded = 390;  // 300 more in 10 s: 30/s, 1500 left take 50 s
  s.retries.rate_limited = 2;
  s.retries.network = 1;
  CHECK(p.Line(s) ==
        "[0:20] [####................] 21% 400/1,900 records, 52.3k tokens, "
        "5 in flight, 30 records/s, 3 retries (2 rate-limited), 10 rejected, "
        "0:50 left");
}

TEST_CASE("ProgressMeter line: log mode has no bar; unknown size no share") {
  ProgressMeter log(ProgressMode::kLog, 1000);
  RunStats s;
  s.input_bytes_total = 200;
  s.input_bytes_done = 200;
  s.read = 40;
  s.embedded = 10;
  s.elapsed_ms = 65000;
  CHECK(log.Line(s) == "[1:05] 25% 10/40 records, 0 tokens, 0 in flight");
  ProgressMeter pipe(ProgressMode::kLog, 1000);
  s.input_bytes_total = 0;
  CHECK(pipe.Line(s) == "[1:05] 10 records, 0 tokens, 0 in flight");
}

TEST_CASE("ProgressMeter line: Batch API jobs as the API reports them") {
  ProgressMeter log(ProgressMode::kLog, 1000);
  RunStats s;
  s.read = 40;
  s.elapsed_ms = 65000;
  s.batch_jobs.jobs = 1;
  s.batch_jobs.states = {{"in_progress", 1}};
  s.batch_jobs.total = 40;
  s.batch_jobs.completed = 25;
  CHECK(log.Line(s) ==
        "[1:05] 0 records, 0 tokens, 0 in flight; 1 batch job (1 "
        "in_progress), 25 of 40 requests completed, 0 failed");
}

TEST_CASE("ShortCount and FormatDuration") {
  CHECK(ShortCount(0) == "0");
  CHECK(ShortCount(9999) == "9999");
  CHECK(ShortCount(10000) == "10.0k");
  CHECK(ShortCount(5234567) == "5.2M");
  CHECK(ShortCount(999999) == "1.0M");
  CHECK(ShortCount(123456789) == "123M");
  CHECK(FormatDuration(0) == "0:00");
  CHECK(FormatDuration(65) == "1:05");
  CHECK(FormatDuration(3725) == "1:02:05");
}
