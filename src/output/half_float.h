// IEEE 754 half precision (binary16), the element type of pgvector's
// halfvec: the rounding from float32 that decides what a halfvec(N) column
// stores, and which floats it cannot store. COPY BINARY of a halfvec sends
// halves already rounded, and text COPY sends the float32 decimals for the
// server to round, so this must round exactly as pgvector does (to nearest,
// ties to even) or the two would load different values.
#pragma once

#include <cstdint>

/// The largest finite half.
inline constexpr float kHalfMax = 65504.0f;

/// Sets *half to the bits of the binary16 value nearest `value`, ties to
/// even (a value too small for the smallest subnormal, 2^-24, becomes a
/// zero of its sign). Returns false, leaving *half not a finite half, when
/// that nearest value is infinite or `value` is not finite: |value| >= 65520,
/// halfway from kHalfMax to 2^16, where the tie goes to the even side,
/// infinity. pgvector refuses such a value ("out of range for type halfvec").
bool FloatToHalf(float value, uint16_t* half);
