// Reading and hashing short byte strings a machine word at a time, shared by
// the vocabulary's table and the piece count cache, which both key on a
// string's first 8 bytes and its hash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace byte_hash {

/// The 8 bytes at p as one native-order word.
inline uint64_t Load64(const unsigned char* p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/// The 4 bytes at p as one native-order word, widened for shifting.
inline uint64_t Load32(const unsigned char* p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/// The first up to 8 of the n bytes at p, zero-padded, read without touching
/// a byte past p + n.
inline uint64_t Head(const unsigned char* p, size_t n) {
  if (n >= 8) return Load64(p);
  if (n >= 4) return Load32(p) | Load32(p + n - 4) << (8 * (n - 4));
  if (n == 0) return 0;
  return uint64_t{p[0]} | uint64_t{p[n / 2]} << (8 * (n / 2)) |
         uint64_t{p[n - 1]} << (8 * (n - 1));
}

/// Folded 128-bit product: a fast mixer with good high and low bits.
inline uint64_t Mix(uint64_t a, uint64_t b) {
  unsigned __int128 r = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}

/// A hash of the n bytes at p, whose Head() is `head`, good in its high and
/// its low bits. Most tokens are short: up to 16 bytes take one
/// multiplication.
inline uint64_t Hash(const unsigned char* p, size_t n, uint64_t head) {
  constexpr uint64_t kK0 = 0xa0761d6478bd642full;
  constexpr uint64_t kK1 = 0xe7037ed1a0b428dbull;
  constexpr uint64_t kK2 = 0x8ebc6af09c88c6e3ull;
  if (n <= 8) return Mix(head ^ kK1, n ^ kK2);
  uint64_t seed = kK0 ^ n;
  uint64_t a, b;
  if (n <= 16) {
    a = head;
    b = Load64(p + n - 8);
  } else {
    size_t left = n;
    while (left > 16) {
      seed = Mix(Load64(p) ^ kK1, Load64(p + 8) ^ seed);
      p += 16;
      left -= 16;
    }
    a = Load64(p + left - 16);
    b = Load64(p + left - 8);
  }
  return Mix(a ^ kK1, b ^ seed ^ kK2);
}

}  // namespace byte_hash
