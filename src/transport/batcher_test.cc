#include "transport/batcher.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

Record MakeRecord(uint64_t seq, uint32_t tokens, size_t bytes) {
  Record r;
  r.seq = seq;
  r.tokens = tokens;
  r.text.assign(bytes, 'x');
  return r;
}

// Feeds every record and returns the batches' sizes in order.
std::vector<size_t> Pack(BatchLimits limits, const std::vector<Record>& in) {
  Batcher batcher(limits);
  std::vector<size_t> sizes;
  Batch batch;
  uint64_t expected_number = 0;
  for (const Record& r : in) {
    if (batcher.Add(r, &batch)) {
      CHECK(batch.number == expected_number++);
      sizes.push_back(batch.records.size());
    }
  }
  if (batcher.Flush(&batch)) sizes.push_back(batch.records.size());
  return sizes;
}

}  // namespace

TEST_CASE("Batcher closes at the input cap") {
  std::vector<Record> in;
  for (int i = 0; i < 7; ++i) in.push_back(MakeRecord(i, 1, 4));
  CHECK(Pack({3, 1000}, in) == std::vector<size_t>{3, 3, 1});
}

TEST_CASE("Batcher closes a batch as soon as it holds the input cap") {
  // A streaming input (`tail -f log | embedpipe`) may send no next record
  // for a while: a full batch must not wait for one.
  Batcher batcher({2, 1000});
  Batch closed;
  CHECK_FALSE(batcher.Add(MakeRecord(0, 1, 4), &closed));
  REQUIRE(batcher.Add(MakeRecord(1, 1, 4), &closed));
  CHECK(closed.records.size() == 2);
  CHECK(batcher.open_size() == 0);
  CHECK_FALSE(batcher.Add(MakeRecord(2, 1, 4), &closed));
  CHECK(batcher.open_size() == 1);
}

TEST_CASE("Batcher closes before the exact token sum passes the cap") {
  std::vector<Record> in = {MakeRecord(0, 40, 4), MakeRecord(1, 60, 4),
                            MakeRecord(2, 1, 4)};
  // 40 + 60 = 100 fits exactly; the third would pass it.
  CHECK(Pack({10, 100}, in) == std::vector<size_t>{2, 1});
}

TEST_CASE("Batcher respects the bytes/4 estimate when it exceeds the count") {
  // 1 token each but 200 bytes each: estimate 50 per record.
  std::vector<Record> in;
  for (int i = 0; i < 5; ++i) in.push_back(MakeRecord(i, 1, 200));
  CHECK(Pack({10, 100}, in) == std::vector<size_t>{2, 2, 1});
}

TEST_CASE("Batcher rounds the estimate up per record") {
  CHECK(EstimatedTokens(0) == 0);
  CHECK(EstimatedTokens(1) == 1);
  CHECK(EstimatedTokens(4) == 1);
  CHECK(EstimatedTokens(5) == 2);
}

TEST_CASE("Batcher gives an oversized record a batch of its own") {
  std::vector<Record> in = {MakeRecord(0, 5, 4), MakeRecord(1, 500, 4),
                            MakeRecord(2, 5, 4)};
  CHECK(Pack({10, 100}, in) == std::vector<size_t>{1, 1, 1});
}

TEST_CASE("Batcher keeps input order and sums") {
  Batcher batcher({2, 1000});
  Batch batch;
  CHECK_FALSE(batcher.Add(MakeRecord(7, 3, 10), &batch));
  CHECK(batcher.Add(MakeRecord(9, 4, 20), &batch));
  REQUIRE(batch.records.size() == 2);
  CHECK(batch.records[0].seq == 7);
  CHECK(batch.records[1].seq == 9);
  CHECK(batch.tokens == 7);
  CHECK(batch.bytes == 30);
  CHECK_FALSE(batcher.Add(MakeRecord(11, 5, 30), &batch));
  CHECK(batcher.open_size() == 1);
  CHECK(batcher.Flush(&batch));
  CHECK(batch.records[0].seq == 11);
  CHECK_FALSE(batcher.Flush(&batch));
}
