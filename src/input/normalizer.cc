#include "input/normalizer.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <fmt/core.h>
#include <utf8proc.h>

#include "input/utf8.h"

namespace {

// The code point of the well-formed n-byte sequence at s[i].
char32_t CodePointAt(std::string_view s, size_t i, size_t n) {
  static constexpr unsigned char kLeadBits[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  char32_t code_point = static_cast<unsigned char>(s[i]) & kLeadBits[n];
  for (size_t k = 1; k < n; ++k)
    code_point =
        code_point << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return code_point;
}

// The Unicode White_Space property.
bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Removes leading and trailing White_Space from valid UTF-8.
void TrimWhiteSpace(std::string* text) {
  std::string_view s = *text;
  size_t begin = 0;
  while (begin < s.size()) {
    unsigned char lead = static_cast<unsigned char>(s[begin]);
    size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    if (!IsWhiteSpace(CodePointAt(s, begin, n))) break;
    begin += n;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while ((static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    if (!IsWhiteSpace(CodePointAt(s, start, end - start))) break;
    end = start;
  }
  text->erase(end);
  text->erase(0, begin);
}

// Puts the valid UTF-8 `piece` in NFC or NFKC, appending it to *out.
bool AppendNormalForm(NormalForm form, std::string_view piece, std::string* out,
                      std::string* reason) {
  int options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  if (form == NormalForm::kNfkc) options |= UTF8PROC_COMPAT;
  utf8proc_uint8_t* mapped = nullptr;
  utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(piece.data()),
                   static_cast<utf8proc_ssize_t>(piece.size()), &mapped,
                   static_cast<utf8proc_option_t>(options));
  if (length < 0) {
    std::string_view message = utf8proc_errmsg(length);
    if (message.ends_with('.')) message.remove_suffix(1);
    *reason = fmt::format("cannot normalize text: {}", message);
    return false;
  }
  out->append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length));
  std::free(mapped);
  return true;
}

// IsNormalizationBoundary for a code point at or above the form's
// threshold: a look-up in utf8proc's tables.
bool IsBoundaryByTable(char32_t c, NormalForm form) {
  // The conjoining jamo compose into Hangul syllables by rule, outside
  // utf8proc's composition table.
  if (c >= 0x1100 && c < 0x1200) return false;
  const utf8proc_property_t* property =
      utf8proc_get_property(static_cast<utf8proc_int32_t>(c));
  // No decomposition the form applies (decomp_type 0 is canonical; NFKC
  // applies the others too), combining class 0, and never the second of a
  // composition pair: utf8proc marks seconds with comb_index 0x8000 and up
  // (UINT16_MAX: in no pair). A first may be a boundary, as each stretch
  // handed to utf8proc starts at the boundary before it.
  bool decomposes = property->decomp_seqindex != UINT16_MAX &&
                    (form == NormalForm::kNfkc || property->decomp_type == 0);
  bool second = property->comb_index != UINT16_MAX &&
                property->comb_index >= 0x8000;
  return !decomposes && property->combining_class == 0 && !second;
}

// Below U+0300 (U+00A0 for NFKC) every code point is a boundary: no
// look-up, and inlined, for the common case.
[[gnu::always_inline]] inline bool IsBoundary(char32_t c, NormalForm form) {
  return c < (form == NormalForm::kNfkc ? 0xA0u : 0x300u) ||
         IsBoundaryByTable(c, form);
}

constexpr uint64_t kEveryByte = 0x0101010101010101;
constexpr uint64_t kHighBits = 0x8080808080808080;

// The 8 bytes at p, to test them together: text is mostly ASCII, and a byte
// at a time was most of Normalize's time.
uint64_t Word(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}

// Whether the 8 bytes of `word` are printable ASCII: not 0x80 or above,
// below 0x20 or 0x7F. (Each test is exact for the word as a whole, as a
// borrow only runs on from a byte that already matched.)
bool IsPrintableAscii(uint64_t word) {
  uint64_t below_space = (word - kEveryByte * 0x20) & ~word;
  uint64_t del = word ^ (kEveryByte * 0x7F);
  uint64_t is_del = (del - kEveryByte) & ~del;
  return ((word | below_space | is_del) & kHighBits) == 0;
}

// Puts valid UTF-8 in NFC or NFKC. Only each stretch from the last
// boundary code point (IsNormalizationBoundary) up to the next one needs
// utf8proc: most letters of Latin, Greek, Cyrillic, CJK, kana and Hangul,
// and emoji, then cost a table look-up (utf8proc on all of them was a
// sixteenth of the CPU time of a run over a multilingual corpus), combining
// marks as before.
bool ApplyNormalForm(NormalForm form, std::string* text, std::string* reason) {
  std::string_view s = *text;
  std::string out;
  out.reserve(s.size());  // the forms seldom change a text's length
  size_t copied = 0;          // s[0, copied) is in `out` or needs no change.
  size_t last_stable = 0;     // Where the latest boundary code point starts.
  size_t i = 0;
  while (i < s.size()) {
    if (i + 8 <= s.size() && (Word(s.data() + i) & kHighBits) == 0) {
      i += 8;  // ASCII: boundaries all.
      last_stable = i - 1;
      continue;
    }
    unsigned char lead = static_cast<unsigned char>(s[i]);
    size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    if (IsBoundary(CodePointAt(s, i, n), form)) {
      last_stable = i;
      i += n;
      continue;
    }
    // A stretch to normalize: from the boundary code point just before (it
    // may compose with what follows) to the next one.
    size_t begin = i == 0 ? 0 : last_stable;
    i += n;
    while (i < s.size()) {
      lead = static_cast<unsigned char>(s[i]);
      n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
      if (IsBoundary(CodePointAt(s, i, n), form)) break;
      i += n;
    }
    out.append(s, copied, begin - copied);
    if (!AppendNormalForm(form, s.substr(begin, i - begin), &out, reason))
      return false;
    copied = i;
  }
  if (copied == 0) return true;  // Boundaries only.
  out.append(s, copied, std::string_view::npos);
  *text = std::move(out);
  return true;
}

}  // namespace

bool IsNormalizationBoundary(char32_t c, NormalForm form) {
  return IsBoundary(c, form);
}

bool Normalize(std::string_view in, const NormalizeConfig& config,
               std::string* out, std::string* reason) {
  const bool clean = config.form != NormalForm::kNone;
  out->clear();
  // The text is held until its vector is written, and the read window
  // counts its size: appends that grew the capacity by doubling held up to
  // twice that (55 MB of texts at the peak of a run whose window allowed
  // 40 MB of texts and vectors together).
  out->reserve(in.size());
  // Rules 1, 2a and 2b in one pass. Bytes that stay as they are accumulate
  // in the run [run, i) and are appended together.
  bool needs_unicode = false;  // Non-ASCII characters remain.
  size_t run = 0;
  size_t i = 0;
  while (i < in.size()) {
    if (i + 8 <= in.size()) {
      uint64_t word = Word(in.data() + i);
      if (clean ? IsPrintableAscii(word) : (word & kHighBits) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      if (!clean || (c >= 0x20 && c != 0x7F) || c == '\t' || c == '\n') {
        ++i;
        continue;
      }
      out->append(in, run, i - run);
      if (c == '\r') {
        out->push_back('\n');
        if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
      }
      ++i;
      run = i;
      continue;
    }
    size_t subpart;
    size_t n = Utf8SequenceLength(in, i, &subpart);
    if (n == 0) {
      if (config.invalid_utf8 == InvalidUtf8::kReject) {
        out->clear();
        *reason = fmt::format("text is not valid UTF-8 at byte {}", i);
        return false;
      }
      out->append(in, run, i - run);
      out->append(kReplacementCharacter);
      i += subpart;
      run = i;
      continue;
    }
    // U+0080..U+009F, the C1 controls, are C2 80..C2 9F.
    if (clean && c == 0xC2 && static_cast<unsigned char>(in[i + 1]) < 0xA0) {
      out->append(in, run, i - run);
      i += 2;
      run = i;
      continue;
    }
    needs_unicode = true;
    i += n;
  }
  out->append(in, run, std::string_view::npos);

  if (clean) {
    // ASCII is already in NFC and NFKC, and U+FFFD has no decomposition.
    if (needs_unicode && !ApplyNormalForm(config.form, out, reason))
      return false;
    TrimWhiteSpace(out);
  }
  if (out->capacity() > out->size() + out->size() / 8) out->shrink_to_fit();
  if (out->empty()) {
    *reason = "text is empty after normalization";
    return false;
  }
  return true;
}
