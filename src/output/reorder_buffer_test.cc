#include "output/reorder_buffer.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

std::shared_ptr<BatchResult> Result(std::vector<uint64_t> seqs) {
  auto r = std::make_shared<BatchResult>();
  r->embeddings.dims = 1;
  for (uint64_t s : seqs) {
    Record rec;
    rec.seq = s;
    rec.id_json = std::to_string(s);
    r->batch.records.push_back(rec);
    r->embeddings.values.push_back(static_cast<float>(s) / 2);
  }
  return r;
}

std::string Drain(ReorderBuffer* buffer) {
  std::string out;
  buffer->Release([&out](const Released& item) {
    if (item.record)
      out += item.record->id_json + "=" + std::to_string(*item.vector) + " ";
    else if (item.error)
      out += "E" + std::to_string(item.error->seq) + " ";
    else
      out += "_ ";
    return true;
  });
  return out;
}

}  // namespace

TEST_CASE("ReorderBuffer releases in input order only") {
  ReorderBuffer buffer;
  buffer.Embed(Result({3, 5}));
  CHECK(Drain(&buffer) == "");
  CHECK(buffer.held() == 2);
  RecordError e;
  e.seq = 1;
  buffer.Reject(e);
  buffer.Skip(2);
  CHECK(Drain(&buffer) == "");
  buffer.Embed(Result({0}));
  CHECK(Drain(&buffer) == "0=0.000000 E1 _ 3=1.500000 ");
  CHECK(buffer.next_seq() == 4);
  buffer.Skip(4);
  CHECK(Drain(&buffer) == "_ 5=2.500000 ");
  CHECK(buffer.held() == 0);
}

TEST_CASE("ReorderBuffer stops where the sink refuses and resumes there") {
  ReorderBuffer buffer;
  buffer.Embed(Result({0, 1, 2}));
  int taken = 0;
  CHECK(buffer.Release([&taken](const Released&) { return ++taken <= 1; }) == 1);
  CHECK(buffer.next_seq() == 1);
  CHECK(Drain(&buffer) == "1=0.500000 2=1.000000 ");
}
