#include "journal/crc32c.h"

#include <cstring>
#include <string>

#include <doctest/doctest.h>

TEST_CASE("Crc32c matches the check value and RFC 3720 B.4 vectors") {
  CHECK(Crc32c("123456789", 9) == 0xE3069283u);
  CHECK(Crc32c("", 0) == 0u);

  unsigned char buf[32];
  std::memset(buf, 0, sizeof buf);
  CHECK(Crc32c(buf, 32) == 0x8A9136AAu);
  std::memset(buf, 0xFF, sizeof buf);
  CHECK(Crc32c(buf, 32) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
  CHECK(Crc32c(buf, 32) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
  CHECK(Crc32c(buf, 32) == 0x113FDB5Cu);
}

TEST_CASE("Crc32cExtend over any split equals the one-shot value") {
  std::string data;
  for (int i = 0; i < 1000; ++i)
    data.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
  uint32_t whole = Crc32c(data.data(), data.size());
  // Exercises the 8-byte loop, the byte tail and unaligned starts.
  for (size_t split = 0; split <= 40; ++split) {
    uint32_t crc = Crc32cExtend(0, data.data(), split);
    crc = Crc32cExtend(crc, data.data() + split, data.size() - split);
    CHECK(crc == whole);
  }
  // A one-bit change is detected.
  data[500] ^= 0x10;
  CHECK(Crc32c(data.data(), data.size()) != whole);
}
