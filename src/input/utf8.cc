#include "input/utf8.h"

size_t Utf8SequenceLength(std::string_view s, size_t i, size_t* subpart) {
  unsigned char lead = static_cast<unsigned char>(s[i]);
  if (lead < 0x80) return 1;
  size_t continuations;
  // The range of the second byte, which excludes overlong forms,
  // surrogates and code points above U+10FFFF.
  unsigned char low = 0x80, high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuations = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    continuations = 2;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    continuations = 3;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    *subpart = 1;
    return 0;
  }
  for (size_t k = 1; k <= continuations; ++k) {
    unsigned char byte =
        i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
    if (byte < low || byte > high) {
      *subpart = k;
      return 0;
    }
    low = 0x80;
    high = 0xBF;
  }
  return continuations + 1;
}

