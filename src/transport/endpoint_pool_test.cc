#include "transport/endpoint_pool.h"

#include <doctest/doctest.h>

namespace {

HttpResponse Status(long status) {
  HttpResponse r;
  r.status = status;
  return r;
}

// Limits given by flags, far above what a test reaches: every slot is open
// from the first request.
constexpr int64_t kRpm = 1000000;
constexpr int64_t kTpm = 10000000000;

}  // namespace

TEST_CASE("EndpointPool takes one request until the endpoint has answered") {
  EndpointPool pool({"http://a", "http://b"}, 3, 0, 0);
  int64_t earliest = 0;
  pool.Started(0, 0, 0, 1);
  pool.Started(1, 1, 0, 1);
  CHECK_FALSE(pool.HasFreeSlot(0));
  CHECK(pool.Pick(0, 1, -1, &earliest) == -1);
  pool.Finished(0, 0, 5, Status(0));  // no answer: still one at a time
  pool.Started(0, 2, 5, 1);
  CHECK_FALSE(pool.HasFreeSlot(5));
  pool.Finished(0, 2, 9, Status(429));  // any answer opens the slots
  CHECK(pool.Pick(9, 1, -1, &earliest) == 0);
  pool.Started(0, 3, 9, 1);
  pool.Started(0, 4, 9, 1);
  CHECK(pool.Pick(9, 1, -1, &earliest) == 0);
  EndpointPool given({"http://a"}, 3, 60, 1000);  // --rpm and --tpm
  given.Started(0, 0, 0, 1);
  CHECK(given.HasFreeSlot(0));
}

TEST_CASE("EndpointPool picks the least busy endpoint with a free slot") {
  EndpointPool pool({"http://a", "http://b", "http://c"}, 2, kRpm, kTpm);
  int64_t earliest = 0;
  uint64_t tag = 0;
  std::vector<int> picks;
  for (int n = 0; n < 6; ++n) {
    int i = pool.Pick(0, 100, -1, &earliest);
    REQUIRE(i >= 0);
    picks.push_back(i);
    pool.Started(static_cast<size_t>(i), tag++, 0, 100);
  }
  CHECK(picks == std::vector<int>{0, 1, 2, 0, 1, 2});
  CHECK(pool.Pick(0, 100, -1, &earliest) == -1);  // every slot busy
  CHECK(earliest == -1);                          // a finish frees one
  CHECK_FALSE(pool.HasFreeSlot(0));
  pool.Finished(1, 1, 10, Status(200));
  CHECK(pool.Pick(10, 100, -1, &earliest) == 1);
  CHECK(pool.counts(0).requests == 2);
}

TEST_CASE("EndpointPool avoids the endpoint a retry failed on, if it can") {
  EndpointPool pool({"http://a", "http://b"}, 4, kRpm, kTpm);
  int64_t earliest = 0;
  CHECK(pool.Pick(0, 1, 0, &earliest) == 1);
  CHECK(pool.Pick(0, 1, 1, &earliest) == 0);
  pool.Started(0, 0, 0, 1);
  pool.Started(0, 1, 0, 1);
  CHECK(pool.Pick(0, 1, 1, &earliest) == 0);  // b is idle but avoided
  EndpointPool one({"http://a"}, 1, 0, 0);
  CHECK(one.Pick(0, 1, 0, &earliest) == 0);  // nowhere else to go
}

TEST_CASE("EndpointPool sets a failing endpoint aside, then tries it again") {
  EndpointPool pool({"http://a", "http://b"}, 4, 0, 0);
  int64_t earliest = 0;
  uint64_t tag = 0;
  // Two failures, then an answer: a blip, nothing set aside.
  for (long s : {0L, 503L, 200L}) {
    pool.Started(0, tag, 0, 1);
    pool.Finished(0, tag++, 0, Status(s));
  }
  CHECK(pool.counts(0).set_aside == 0);
  CHECK(pool.counts(0).failures == 2);
  // A 4xx is the request's fault, not the server's.
  for (int n = 0; n < 5; ++n) {
    pool.Started(0, tag, 0, 1);
    pool.Finished(0, tag++, 0, Status(400));
  }
  CHECK(pool.counts(0).set_aside == 0);
  // Three in a row: set aside for 2 s.
  for (int n = 0; n < 3; ++n) {
    pool.Started(0, tag, 1000, 1);
    pool.Finished(0, tag++, 1000, Status(0));
  }
  CHECK(pool.counts(0).set_aside == 1);
  CHECK(pool.Pick(1000, 1, -1, &earliest) == 1);
  pool.Started(1, tag++, 1000, 1);
  pool.Started(1, tag++, 1000, 1);
  pool.Started(1, tag++, 1000, 1);
  pool.Started(1, tag++, 1000, 1);  // b is full now
  CHECK(pool.Pick(1000, 1, -1, &earliest) == -1);
  CHECK(earliest == 3000);  // when a comes back
  CHECK(pool.Pick(3000, 1, -1, &earliest) == 0);
  // It fails once more: aside again, for twice as long.
  pool.Started(0, tag, 3000, 1);
  pool.Finished(0, tag++, 3000, Status(502));
  CHECK(pool.counts(0).set_aside == 2);
  CHECK_FALSE(pool.Pick(6999, 1, -1, &earliest) == 0);
  CHECK(earliest == 7000);
  // Back and answering: the cooldown starts over.
  pool.Started(0, tag, 7000, 1);
  pool.Finished(0, tag++, 7000, Status(200));
  for (int n = 0; n < 3; ++n) {
    pool.Started(0, tag, 8000, 1);
    pool.Finished(0, tag++, 8000, Status(0));
  }
  CHECK(pool.counts(0).set_aside == 3);
  CHECK_FALSE(pool.Pick(9999, 1, -1, &earliest) == 0);
  CHECK(pool.Pick(10000, 1, -1, &earliest) == 0);
}

TEST_CASE("EndpointPool counts each endpoint under its URL without credentials") {
  // The counts are printed (summary, --stats).
  EndpointPool pool({"http://a/v1", "https://me:s3cret@b:8443/v1"}, 1, 0, 0);
  CHECK(pool.counts(0).url == "http://a/v1");
  CHECK(pool.counts(1).url == "https://b:8443/v1");
}

TEST_CASE("EndpointPool never sets its only endpoint aside") {
  EndpointPool pool({"http://a"}, 2, 0, 0);
  for (uint64_t tag = 0; tag < 10; ++tag) {
    pool.Started(0, tag, 0, 1);
    pool.Finished(0, tag, 0, Status(0));
  }
  int64_t earliest = 0;
  CHECK(pool.Pick(0, 1, -1, &earliest) == 0);
  CHECK(pool.counts(0).set_aside == 0);
}

TEST_CASE("EndpointPool paces each endpoint by its own limits") {
  EndpointPool pool({"http://a", "http://b"}, 10, 60, 0);  // 60 a minute each
  int64_t earliest = 0;
  uint64_t tag = 0;
  // Each endpoint takes about a minute's budget, then both wait.
  int started = 0;
  for (; started < 200; ++started) {
    int i = pool.Pick(0, 1, -1, &earliest);
    if (i < 0) break;
    pool.Started(static_cast<size_t>(i), tag, 0, 1);
    pool.Finished(static_cast<size_t>(i), tag++, 0, Status(200));
  }
  CHECK(started > 100);
  CHECK(started <= 120);
  CHECK(pool.counts(0).requests == pool.counts(1).requests);
  CHECK(earliest > 0);
  CHECK(earliest <= 1000);
  // A 429's hold on one endpoint leaves the other to take the next one.
  pool.Hold(0, 60000);
  CHECK(pool.Pick(2000, 1, -1, &earliest) == 1);
  CHECK_FALSE(pool.TooLarge(1));
}
