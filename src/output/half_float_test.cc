#include "output/half_float.h"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>

namespace {

uint16_t Half(float value) {
  uint16_t half = 0xDEAD;
  REQUIRE_MESSAGE(FloatToHalf(value, &half), value);
  return half;
}

bool Fits(float value) {
  uint16_t half;
  return FloatToHalf(value, &half);
}

// The compiler's own conversion (IEEE 754 round to nearest, ties to even:
// what pgvector's Float4ToHalf does, in software or with F16C), as an
// independent reference.
uint16_t ReferenceHalf(float value) {
  _Float16 h = static_cast<_Float16>(value);
  uint16_t bits;
  std::memcpy(&bits, &h, sizeof bits);
  return bits;
}

// Checks one float against the reference: the same bits when the half is
// finite, refused when it is not.
void CheckAgainstReference(float value) {
  uint16_t want = ReferenceHalf(value);
  uint16_t got = 0;
  bool fits = FloatToHalf(value, &got);
  if ((want & 0x7C00) == 0x7C00) {
    CHECK_MESSAGE(!fits, std::bit_cast<uint32_t>(value));
  } else {
    CHECK_MESSAGE(fits, std::bit_cast<uint32_t>(value));
    CHECK_MESSAGE(got == want, std::bit_cast<uint32_t>(value));
  }
}

}  // namespace

TEST_CASE("FloatToHalf: exact values, zeros, subnormals") {
  CHECK(Half(0.0f) == 0x0000);
  CHECK(Half(-0.0f) == 0x8000);
  CHECK(Half(1.0f) == 0x3C00);
  CHECK(Half(-2.0f) == 0xC000);
  CHECK(Half(0.5f) == 0x3800);
  CHECK(Half(65504.0f) == 0x7BFF);  // the largest half
  CHECK(Half(std::ldexp(1.0f, -14)) == 0x0400);  // the smallest normal
  CHECK(Half(std::ldexp(1.0f, -24)) == 0x0001);  // the smallest subnormal
  CHECK(Half(std::ldexp(1023.0f, -24)) == 0x03FF);
  // Too small for any subnormal: a zero that keeps its sign.
  CHECK(Half(1e-30f) == 0x0000);
  CHECK(Half(-1e-30f) == 0x8000);
  CHECK(Half(std::numeric_limits<float>::denorm_min()) == 0x0000);
}

TEST_CASE("FloatToHalf rounds to nearest, ties to even") {
  // Between 1 and the next half (1 + 2^-10): halfway goes to the even one.
  CHECK(Half(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
  CHECK(Half(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)) == 0x3C01);
  CHECK(Half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3C02);
  CHECK(Half(std::nextafter(1.0f + 3 * std::ldexp(1.0f, -11), 0.0f)) == 0x3C01);
  // A carry out of the mantissa moves the exponent on.
  CHECK(Half(std::nextafter(2.0f, 0.0f)) == 0x4000);
  // Subnormals: half the smallest is a tie with zero (even), just above it
  // the smallest; the largest subnormal rounds up into the normals.
  CHECK(Half(std::ldexp(1.0f, -25)) == 0x0000);
  CHECK(Half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)) == 0x0001);
  CHECK(Half(3 * std::ldexp(1.0f, -25)) == 0x0002);
  CHECK(Half(std::nextafter(std::ldexp(1.0f, -14), 0.0f)) == 0x0400);
  CHECK(Half(-std::ldexp(1.0f, -25)) == 0x8000);
}

TEST_CASE("FloatToHalf refuses what a half cannot hold") {
  // 65520 is halfway between the largest half and 2^16, and a tie goes to
  // the even one: infinity. pgvector refuses it ("out of range").
  CHECK(Half(std::nextafter(65520.0f, 0.0f)) == 0x7BFF);
  CHECK(Half(-std::nextafter(65520.0f, 0.0f)) == 0xFBFF);
  CHECK(!Fits(65520.0f));
  CHECK(!Fits(-65520.0f));
  CHECK(!Fits(1e30f));
  CHECK(!Fits(std::numeric_limits<float>::max()));
  CHECK(!Fits(std::numeric_limits<float>::infinity()));
  CHECK(!Fits(-std::numeric_limits<float>::infinity()));
  CHECK(!Fits(std::numeric_limits<float>::quiet_NaN()));
}

TEST_CASE("FloatToHalf matches the compiler's binary16 at each rounding edge") {
  // For every finite half: the float32 values at, just below and just
  // above the midpoint to the next half up (where rounding decides), and
  // the half itself, both signs. Then a sweep over all float32 bits.
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    _Float16 lo, hi;
    uint16_t lo_bits = static_cast<uint16_t>(h), hi_bits = lo_bits + 1;
    std::memcpy(&lo, &lo_bits, 2);
    std::memcpy(&hi, &hi_bits, 2);
    // Exact in float32: two halves' mean has at most 12 significant bits.
    float mid = (static_cast<float>(lo) + static_cast<float>(hi)) / 2;
    for (float v : {static_cast<float>(lo), mid, std::nextafter(mid, 0.0f),
                    std::nextafter(mid, 1e9f)}) {
      CheckAgainstReference(v);
      CheckAgainstReference(-v);
    }
  }
  for (uint64_t bits = 0; bits <= 0xFFFFFFFF; bits += 4099)
    CheckAgainstReference(std::bit_cast<float>(static_cast<uint32_t>(bits)));
}
