#include "journal/sha256.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace {

// FIPS 180-4 section 4.2.2: the first 32 bits of the fractional parts of the
// cube roots of the first 64 primes.
constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// Section 6.2.2, for `count` consecutive 64-byte blocks.
void CompressPortable(uint32_t* state, const uint8_t* blocks, size_t count) {
  for (; count > 0; --count, blocks += 64) {
    uint32_t w[64];
    for (int t = 0; t < 16; ++t)
      w[t] = uint32_t{blocks[4 * t]} << 24 | uint32_t{blocks[4 * t + 1]} << 16 |
             uint32_t{blocks[4 * t + 2]} << 8 | uint32_t{blocks[4 * t + 3]};
    for (int t = 16; t < 64; ++t) {
      uint32_t s0 = Rotr(w[t - 15], 7) ^ Rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = Rotr(w[t - 2], 17) ^ Rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; ++t) {
      uint32_t big_s1 = Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = h + big_s1 + ch + kRound[t] + w[t];
      uint32_t big_s0 = Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22);
      uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = big_s0 + maj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

#if defined(__x86_64__)
// The same with the SHA extensions (Intel SDM vol. 2, SHA256RNDS2,
// SHA256MSG1, SHA256MSG2). They keep the eight working variables in two
// registers, ABEF and CDGH, each with its first letter in the top lane.
// Only this function is compiled for those instructions (and SSSE3's
// shuffles), so the rest of the program runs on any x86-64; callers must
// check Supported(kShaNi) first.
__attribute__((target("sha,ssse3")))
void CompressShaNi(uint32_t* state, const uint8_t* blocks, size_t count) {
  auto load = [](const void* p) {
    return _mm_loadu_si128(static_cast<const __m128i*>(p));
  };
  // Message words are big-endian: reverse the bytes in each 32-bit lane.
  const __m128i byte_swap =
      _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
  // Lanes are listed from lane 0: state loads as (a,b,c,d) and (e,f,g,h).
  __m128i dcba = _mm_shuffle_epi32(load(state), 0x1B);
  __m128i hgfe = _mm_shuffle_epi32(load(state + 4), 0x1B);
  __m128i abef = _mm_unpackhi_epi64(hgfe, dcba);  // (f,e,b,a)
  __m128i cdgh = _mm_unpacklo_epi64(hgfe, dcba);  // (h,g,d,c)
  for (; count > 0; --count, blocks += 64) {
    const __m128i abef_in = abef, cdgh_in = cdgh;
    // w0..w3 hold the 16 schedule words W[4i..4i+15] of step i.
    __m128i w0 = _mm_shuffle_epi8(load(blocks), byte_swap);
    __m128i w1 = _mm_shuffle_epi8(load(blocks + 16), byte_swap);
    __m128i w2 = _mm_shuffle_epi8(load(blocks + 32), byte_swap);
    __m128i w3 = _mm_shuffle_epi8(load(blocks + 48), byte_swap);
    // Step i does rounds 4i..4i+3.
    for (int i = 0; i < 16; ++i) {
      __m128i wk = _mm_add_epi32(w0, load(kRound + 4 * i));
      // SHA256RNDS2 does two rounds with the low two lanes of wk and
      // returns the new ABEF; the old ABEF is the new CDGH. So the two
      // registers swap roles, and the next two rounds swap them back.
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
      // The four words just used make way for W[t], t = 4i+16..4i+19 (the
      // last four steps need none): W[t] = s1(W[t-2]) + W[t-7] +
      // s0(W[t-15]) + W[t-16]. MSG1 adds s0 to W[t-16], alignr picks W[t-7],
      // and MSG2 adds s1 of W[t-2], for the last two a word it has just made.
      __m128i next = w0;
      if (i < 12) {
        next = _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1),
                             _mm_alignr_epi8(w3, w2, 4));
        next = _mm_sha256msg2_epu32(next, w3);
      }
      w0 = w1;
      w1 = w2;
      w2 = w3;
      w3 = next;
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }
  // Back to (a,b,c,d) and (e,f,g,h).
  __m128i abcd = _mm_shuffle_epi32(_mm_unpackhi_epi64(cdgh, abef), 0x1B);
  __m128i efgh = _mm_shuffle_epi32(_mm_unpacklo_epi64(cdgh, abef), 0x1B);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), abcd);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), efgh);
}
#endif  // __x86_64__

}  // namespace

bool Sha256::Supported(Impl impl) {
  if (impl == Impl::kPortable) return true;
#if defined(__x86_64__)
  // CPUID rather than __builtin_cpu_supports("sha"), which GCC 12 knows
  // but clang 14 (make fuzz) does not: leaf 1 ECX has SSSE3, leaf 7 EBX SHA.
  static const bool has_sha_ni = [] {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) &&
           __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
  }();
  return has_sha_ni;
#else
  return false;
#endif
}

Sha256::Sha256()
    : Sha256(Supported(Impl::kShaNi) ? Impl::kShaNi : Impl::kPortable) {}

Sha256::Sha256([[maybe_unused]] Impl impl) : compress_(CompressPortable) {
#if defined(__x86_64__)
  if (impl == Impl::kShaNi) compress_ = CompressShaNi;
#endif
  Reset();
}

void Sha256::Reset() {
  // Section 5.3.3: square roots of the first 8 primes.
  static constexpr uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                           0xa54ff53a, 0x510e527f, 0x9b05688c,
                                           0x1f83d9ab, 0x5be0cd19};
  std::memcpy(state_, kInitial, sizeof state_);
  length_ = 0;
  buffered_ = 0;
}

void Sha256::Update(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  length_ += n;
  if (buffered_ > 0) {
    size_t take = std::min(n, sizeof buffer_ - buffered_);
    std::memcpy(buffer_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    n -= take;
    if (buffered_ < sizeof buffer_) return;
    compress_(state_, buffer_, 1);
    buffered_ = 0;
  }
  // Whole blocks straight from the input, without copying, in one call.
  if (size_t blocks = n / 64; blocks > 0) {
    compress_(state_, p, blocks);
    p += 64 * blocks;
    n -= 64 * blocks;
  }
  if (n > 0) {
    std::memcpy(buffer_, p, n);
    buffered_ = n;
  }
}

Sha256::Digest Sha256::Final() {
  // Section 5.1.1: a 1 bit, zeros up to 56 mod 64 bytes, then the message
  // length in bits as a big-endian 64-bit number. That makes one last
  // block, or two when the 1 bit and the length do not fit beside the
  // buffered bytes.
  uint64_t bits = length_ * 8;
  uint8_t tail[128] = {};
  std::memcpy(tail, buffer_, buffered_);
  tail[buffered_] = 0x80;
  size_t size = buffered_ < 56 ? 64 : 128;
  for (int i = 0; i < 8; ++i)
    tail[size - 8 + i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
  compress_(state_, tail, size / 64);
  Digest out;
  for (int i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<uint8_t>(state_[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(state_[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(state_[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(state_[i]);
  }
  return out;
}

Sha256::Digest Sha256Of(std::string_view data) {
  Sha256 hash;
  hash.Update(data);
  return hash.Final();
}

std::string HexDigest(const Sha256::Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (uint8_t byte : digest) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xF]);
  }
  return out;
}
