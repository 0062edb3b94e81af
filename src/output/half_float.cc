#include "output/half_float.h"

#include <bit>

namespace {

// value >> shift (0 < shift < 32), rounded to nearest, ties to even.
uint32_t ShiftRounded(uint32_t value, int shift) {
  uint32_t kept = value >> shift;
  uint32_t rest = value & ((1u << shift) - 1);
  uint32_t halfway = 1u << (shift - 1);
  return kept + (rest > halfway || (rest == halfway && (kept & 1)));
}

// float32's fields: 1 sign bit, 8 exponent bits (bias 127), 23 mantissa
// bits; binary16's: 1, 5 (bias 15), 10.
constexpr uint32_t kAbsMask = 0x7FFFFFFF;
constexpr uint32_t kImplicitBit = 0x00800000;
// 65520.0f: from here on the nearest half is infinity (this covers the
// float32 infinities and NaNs too).
constexpr uint32_t kFirstTooLarge = 0x477FF000;
// 2^-14.0f, the smallest normal half.
constexpr uint32_t kSmallestNormal = 0x38800000;

}  // namespace

bool FloatToHalf(float value, uint16_t* half) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  uint32_t sign = (bits >> 16) & 0x8000;
  uint32_t abs = bits & kAbsMask;
  if (abs >= kFirstTooLarge) {
    *half = static_cast<uint16_t>(sign | 0x7C00);
    return false;
  }
  uint32_t magnitude;
  if (abs >= kSmallestNormal) {
    // Rebiasing the exponent (127 to 15) is a subtraction on the whole
    // pattern; dropping 13 mantissa bits rounds, and a carry out of the
    // mantissa rightly moves the exponent on (below 65520, never to 31).
    magnitude = ShiftRounded(abs - ((127 - 15) << 23), 13);
  } else {
    // A subnormal half is m * 2^-24. The float is mantissa * 2^(e - 150)
    // with its implicit bit, so m = mantissa >> (126 - e), rounded; under
    // 2^-26 (e < 101) that is 0 whatever the mantissa. m may round up to
    // 1024, which is the smallest normal half's pattern.
    int exponent = static_cast<int>(abs >> 23);
    magnitude = exponent < 101
                    ? 0
                    : ShiftRounded((abs & (kImplicitBit - 1)) | kImplicitBit,
                                   126 - exponent);
  }
  *half = static_cast<uint16_t>(sign | magnitude);
  return true;
}
