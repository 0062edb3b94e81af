#include "input/shard.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

Shard Make(const std::string& spec) {
  Shard s;
  std::string err;
  REQUIRE_MESSAGE(Shard::Parse(spec, &s, &err), err);
  return s;
}

}  // namespace

TEST_CASE("Shard::Parse takes K/N and refuses the rest") {
  Shard s = Make("2/4");
  CHECK(s.index() == 1);
  CHECK(s.count() == 4);
  CHECK(Make("1/1").all());
  std::string err;
  for (const char* bad : {"", "2", "0/4", "5/4", "2/0", "a/4", "2/4x", "-1/4",
                          " 2/4", "2/", "/4", "1/65537"}) {
    CAPTURE(bad);
    CHECK_FALSE(Shard::Parse(bad, &s, &err));
  }
  CHECK(err == "--shard must be K/N with 1 <= K <= N <= 65536, e.g. 2/4; got "
               "'1/65537'");
}

TEST_CASE("Shard: every id is in exactly one shard, about evenly") {
  const uint32_t n = 4;
  std::vector<Shard> shards;
  for (uint32_t k = 1; k <= n; ++k)
    shards.push_back(Make(std::to_string(k) + "/" + std::to_string(n)));
  std::vector<int> sizes(n);
  for (int i = 0; i < 40000; ++i) {
    std::string id = "\"doc-" + std::to_string(i) + "\"";
    int owners = 0;
    for (uint32_t k = 0; k < n; ++k) {
      if (shards[k].OwnsId(id)) {
        ++owners;
        ++sizes[k];
      }
    }
    REQUIRE(owners == 1);
  }
  for (int size : sizes) CHECK(size == doctest::Approx(10000).epsilon(0.03));
}

TEST_CASE("Shard: the partition is fixed (SHA-256 of the id as written)") {
  // Computed independently: int.from_bytes(sha256(id).digest()[:8], "big").
  CHECK(Make("4/4").OwnsId("\"doc-1\""));
  CHECK(Make("7/7").OwnsId("\"doc-1\""));
  CHECK(Make("2/4").OwnsId("42"));
  CHECK(Make("3/7").OwnsId("42"));
  CHECK(Make("1/4").OwnsId("\"\xc3\xa9\""));
  CHECK(Make("6/7").OwnsId("\"\xc3\xa9\""));
  CHECK_FALSE(Make("1/4").OwnsId("42"));
}

TEST_CASE("Shard: lines without an id go round-robin; one shard takes all") {
  Shard s = Make("2/3");
  CHECK_FALSE(s.OwnsLine(0));
  CHECK(s.OwnsLine(1));
  CHECK(s.OwnsLine(4));
  Shard all;
  CHECK(all.all());
  CHECK(all.OwnsId("anything"));
  CHECK(all.OwnsLine(7));
}
