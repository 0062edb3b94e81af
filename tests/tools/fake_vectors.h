// The fake provider's embedding function: a deterministic vector for each
// (model, dimensions, text), shared by the server that sends it and the
// verifier that checks it, so end-to-end tests can prove every float arrived
// intact and in the right record.
//
// Definition (stable; tests in other languages may reimplement it):
//   1. seed = 64-bit FNV-1a (offset 0xcbf29ce484222325, prime 0x100000001b3)
//      over the bytes  model, 0x00, decimal(dims), 0x00, text.
//   2. For i = 0 .. dims-1, SplitMix64:  state += 0x9e3779b97f4a7c15;
//      z = state; z = (z ^ z>>30) * 0xbf58476d1ce4e5b9;
//      z = (z ^ z>>27) * 0x94d049bb133111eb; z ^= z>>31.
//      raw_i = float(int(z >> 40) - 2^23) / 2^23, exact in float32, in [-1,1).
//   3. sum = sum of raw_i * raw_i in double, in index order (each product is
//      exact in double, so FMA contraction cannot change the result).
//      scale = 1.0 / sqrt(sum) in double; out_i = float32(double(raw_i) * scale)
//      rounded to nearest. If sum == 0 (practically never), out = e_0.
// dims is the requested `dimensions`, or the model's native size when none.
// A token-id input is embedded as the text of its ids in decimal joined by
// single spaces ("[1,22,333]" -> "1 22 333").
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace fake_vectors {

/// Native output size of a known model, or 0 for an unknown one.
inline uint32_t NativeDims(std::string_view model) {
  if (model == "text-embedding-3-small") return 1536;
  if (model == "text-embedding-3-large") return 3072;
  if (model == "text-embedding-ada-002") return 1536;
  return 0;
}

/// True for models that accept the `dimensions` request field.
inline bool SupportsDimensions(std::string_view model) {
  return model.substr(0, 17) == "text-embedding-3-";
}

inline void Fnv1a(std::string_view bytes, uint64_t* h) {
  for (unsigned char c : bytes) {
    *h ^= c;
    *h *= 0x100000001b3ULL;
  }
}

/// Step 1 of the definition above.
inline uint64_t Seed(std::string_view model, uint32_t dims,
                     std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  const char zero = '\0';
  Fnv1a(model, &h);
  Fnv1a(std::string_view(&zero, 1), &h);
  Fnv1a(std::to_string(dims), &h);
  Fnv1a(std::string_view(&zero, 1), &h);
  Fnv1a(text, &h);
  return h;
}

/// One SplitMix64 step; advances *state.
inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Writes the `dims` floats of the vector for (model, dims, text) to out.
inline void Compute(std::string_view model, uint32_t dims,
                    std::string_view text, float* out) {
  uint64_t state = Seed(model, dims, text);
  double sum = 0;
  for (uint32_t i = 0; i < dims; ++i) {
    int32_t r = static_cast<int32_t>(SplitMix64(&state) >> 40) - (1 << 23);
    float raw = static_cast<float>(r) * (1.0f / 8388608.0f);
    out[i] = raw;
    sum += static_cast<double>(raw) * static_cast<double>(raw);
  }
  if (sum == 0) {
    if (dims > 0) out[0] = 1.0f;
    return;
  }
  double scale = 1.0 / std::sqrt(sum);
  for (uint32_t i = 0; i < dims; ++i)
    out[i] = static_cast<float>(static_cast<double>(out[i]) * scale);
}

}  // namespace fake_vectors
