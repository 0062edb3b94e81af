// The fake provider's own base64 (RFC 4648, with padding) for the
// embeddings API's encoding_format=base64, which carries raw little-endian
// float32 arrays. Written apart from src/providers/base64.cc on purpose: a bug shared
// by the client and its test server would cancel out in end-to-end tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fake_base64 {

inline constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The length of the encoding of `n` bytes.
inline constexpr size_t EncodedSize(size_t n) { return (n + 2) / 3 * 4; }

/// Writes the encoding of `n` bytes at `data` to `o`, which has room for
/// EncodedSize(n) chars; returns the end of what was written.
inline char* EncodeTo(const void* data, size_t n, char* o) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = kAlphabet[(v >> 6) & 63];
    *o++ = kAlphabet[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (i + 1 < n) v |= uint32_t{p[i + 1]} << 8;
    *o++ = kAlphabet[v >> 18];
    *o++ = kAlphabet[(v >> 12) & 63];
    *o++ = i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  return o;
}

/// Appends the encoding of `n` bytes at `data` to *out.
inline void Encode(const void* data, size_t n, std::string* out) {
  size_t start = out->size();
  out->resize(start + EncodedSize(n));
  EncodeTo(data, n, out->data() + start);
}

/// Decodes `in` (padding required, no whitespace) into *out. Returns false
/// on any character outside the alphabet or a bad length.
inline bool Decode(std::string_view in, std::string* out) {
  // Built once; a 256-entry reverse table keeps decoding branch-light.
  static const struct Table {
    int8_t v[256];
    Table() {
      for (int i = 0; i < 256; ++i) v[i] = -1;
      for (int i = 0; i < 64; ++i)
        v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
    }
  } kTable;
  const int8_t* table = kTable.v;
  if (in.size() % 4 != 0) return false;
  out->clear();
  out->reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int pad = 0;
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      unsigned char c = static_cast<unsigned char>(in[i + j]);
      if (c == '=' && i + 4 == in.size() && j >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      if (pad > 0 || table[c] < 0) return false;
      v = (v << 6) | static_cast<uint32_t>(table[c]);
    }
    out->push_back(static_cast<char>(v >> 16));
    if (pad < 2) out->push_back(static_cast<char>((v >> 8) & 255));
    if (pad < 1) out->push_back(static_cast<char>(v & 255));
  }
  return true;
}

}  // namespace fake_base64
