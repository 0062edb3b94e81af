#include "tokenize/pretokenizer.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <iterator>
#include <map>
#include <vector>

#include <utf8proc.h>

namespace {

// One bit per class of code point, so that each character set of the
// patterns is a mask. Every code point is in exactly one class.
enum : uint8_t {
  kUpper = 1 << 0,        // Lu, Lt
  kLower = 1 << 1,        // Ll
  kLetterOther = 1 << 2,  // Lm, Lo
  kMark = 1 << 3,         // Mn, Mc, Me
  kNumber = 1 << 4,       // Nd, Nl, No
  kSpace = 1 << 5,        // White_Space other than CR and LF
  kNewline = 1 << 6,      // CR, LF
  kOther = 1 << 7,        // the rest, and each byte of invalid UTF-8
};
constexpr uint8_t kLetter = kUpper | kLower | kLetterOther;  // \p{L}
constexpr uint8_t kWhite = kSpace | kNewline;                // \s
// [^\s\p{L}\p{N}]
constexpr uint8_t kPunct = kMark | kOther;
// [^\r\n\p{L}\p{N}]
constexpr uint8_t kLetterPrefix = kSpace | kMark | kOther;
// o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}], and
// the part they share.
constexpr uint8_t kCaseUpper = kUpper | kLetterOther | kMark;
constexpr uint8_t kCaseLower = kLower | kLetterOther | kMark;
constexpr uint8_t kCaseBoth = kLetterOther | kMark;

constexpr uint8_t AsciiClass(unsigned c) {
  if (c == '\r' || c == '\n') return kNewline;
  if ((c >= 0x09 && c <= 0x0D) || c == ' ') return kSpace;
  if (c >= 'A' && c <= 'Z') return kUpper;
  if (c >= 'a' && c <= 'z') return kLower;
  if (c >= '0' && c <= '9') return kNumber;
  return kOther;
}

constexpr std::array<uint8_t, 128> MakeAsciiClasses() {
  std::array<uint8_t, 128> classes{};
  for (unsigned c = 0; c < 128; ++c) classes[c] = AsciiClass(c);
  return classes;
}
constexpr std::array<uint8_t, 128> kAsciiClasses = MakeAsciiClasses();

// The regex crate's \s is Unicode White_Space, which utf8proc does not
// expose; it is a fixed list, and these are its non-ASCII members.
bool IsNonAsciiWhiteSpace(uint32_t cp) {
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// The classes of the code points that Unicode 15.1 and 16.0 assigned: the
// regex crate inside tiktoken has Unicode 16.0 tables, utf8proc 2.8 has
// Unicode 15.0 ones, where these are unassigned. Read off the tables of the
// reference build (tiktoken 1.0.22) and checked against a sweep of every
// code point through it. Sorted; all other unassigned code points are kOther.
struct AssignedRange {
  uint32_t first;
  uint32_t last;
  uint8_t cls;
};
constexpr AssignedRange kAssignedSinceUnicode15[] = {
    {0x0897, 0x0897, kMark}, {0x1C89, 0x1C89, kUpper},
    {0x1C8A, 0x1C8A, kLower}, {0xA7CB, 0xA7CC, kUpper},
    {0xA7CD, 0xA7CD, kLower}, {0xA7DA, 0xA7DA, kUpper},
    {0xA7DB, 0xA7DB, kLower}, {0xA7DC, 0xA7DC, kUpper},
    {0x105C0, 0x105F3, kLetterOther}, {0x10D40, 0x10D49, kNumber},
    {0x10D4A, 0x10D4F, kLetterOther}, {0x10D50, 0x10D65, kUpper},
    {0x10D69, 0x10D6D, kMark}, {0x10D6F, 0x10D6F, kLetterOther},
    {0x10D70, 0x10D85, kLower}, {0x10EC2, 0x10EC4, kLetterOther},
    {0x10EFC, 0x10EFC, kMark}, {0x11380, 0x11389, kLetterOther},
    {0x1138B, 0x1138B, kLetterOther}, {0x1138E, 0x1138E, kLetterOther},
    {0x11390, 0x113B5, kLetterOther}, {0x113B7, 0x113B7, kLetterOther},
    {0x113B8, 0x113C0, kMark}, {0x113C2, 0x113C2, kMark},
    {0x113C5, 0x113C5, kMark}, {0x113C7, 0x113CA, kMark},
    {0x113CC, 0x113D0, kMark}, {0x113D1, 0x113D1, kLetterOther},
    {0x113D2, 0x113D2, kMark}, {0x113D3, 0x113D3, kLetterOther},
    {0x113E1, 0x113E2, kMark}, {0x116D0, 0x116E3, kNumber},
    {0x11BC0, 0x11BE0, kLetterOther}, {0x11BF0, 0x11BF9, kNumber},
    {0x11F5A, 0x11F5A, kMark}, {0x13460, 0x143FA, kLetterOther},
    {0x16100, 0x1611D, kLetterOther}, {0x1611E, 0x1612F, kMark},
    {0x16130, 0x16139, kNumber}, {0x16D40, 0x16D6C, kLetterOther},
    {0x16D70, 0x16D79, kNumber}, {0x18CFF, 0x18CFF, kLetterOther},
    {0x1CCF0, 0x1CCF9, kNumber}, {0x1E5D0, 0x1E5ED, kLetterOther},
    {0x1E5EE, 0x1E5EF, kMark}, {0x1E5F0, 0x1E5F0, kLetterOther},
    {0x1E5F1, 0x1E5FA, kNumber}, {0x2EBF0, 0x2EE5D, kLetterOther},
};

uint8_t UnassignedClass(uint32_t cp) {
  const AssignedRange* after = std::upper_bound(
      std::begin(kAssignedSinceUnicode15), std::end(kAssignedSinceUnicode15),
      cp,
      [](uint32_t c, const AssignedRange& range) { return c < range.first; });
  if (after == std::begin(kAssignedSinceUnicode15) || cp > after[-1].last)
    return kOther;
  return after[-1].cls;
}

uint8_t NonAsciiClass(uint32_t cp) {
  if (IsNonAsciiWhiteSpace(cp)) return kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_CN:
      return UnassignedClass(cp);
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LT:
      return kUpper;
    case UTF8PROC_CATEGORY_LL:
      return kLower;
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return kLetterOther;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
      return kMark;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return kNumber;
    default:
      return kOther;
  }
}

// The classes of the code points below U+20000, the BMP and the SMP, where
// nearly all text is, built once (about 1.5 ms) from NonAsciiClass: asking
// utf8proc costs a call into the library and two dependent table reads per
// code point. Blocks of 256 code points with the same classes are stored
// once (the 82 blocks of CJK ideographs U+4E00-U+9FFF are one), so what a
// text touches stays cached.
class CodePointClasses {
 public:
  static constexpr uint32_t kLimit = 0x20000;

  CodePointClasses() {
    std::map<std::array<uint8_t, 256>, uint16_t> seen;
    for (uint32_t block = 0; block < kLimit >> 8; ++block) {
      std::array<uint8_t, 256> classes;
      for (uint32_t i = 0; i < 256; ++i) {
        uint32_t cp = block << 8 | i;
        classes[i] = cp < 0x80 ? kAsciiClasses[cp] : NonAsciiClass(cp);
      }
      auto [it, added] =
          seen.emplace(classes, static_cast<uint16_t>(seen.size()));
      if (added)
        classes_.insert(classes_.end(), classes.begin(), classes.end());
      block_[block] = it->second;
    }
  }

  /// The class of `cp` < kLimit.
  uint8_t operator[](uint32_t cp) const {
    return classes_[size_t{block_[cp >> 8]} << 8 | (cp & 0xFF)];
  }

 private:
  uint16_t block_[kLimit >> 8];
  std::vector<uint8_t> classes_;  // 256 per distinct block.
};

uint8_t ClassOf(uint32_t cp) {
  static const CodePointClasses classes;
  return cp < CodePointClasses::kLimit ? classes[cp] : NonAsciiClass(cp);
}

struct Char {
  uint8_t cls;
  uint8_t len;
};

Char DecodeNonAscii(const unsigned char* p, const unsigned char* end) {
  constexpr Char kInvalid = {kOther, 1};
  unsigned lead = p[0];
  uint32_t cp;
  int len;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    cp = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    cp = lead & 0x07;
  } else {
    return kInvalid;
  }
  if (end - p < len) return kInvalid;
  for (int i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return kInvalid;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF.
  if ((len == 3 && cp < 0x800) || (cp >= 0xD800 && cp <= 0xDFFF) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return kInvalid;
  return {ClassOf(cp), static_cast<uint8_t>(len)};
}

// The code point at p < end.
inline Char At(const unsigned char* p, const unsigned char* end) {
  if (*p < 0x80) return {kAsciiClasses[*p], 1};
  return DecodeNonAscii(p, end);
}

// The end of the run of code points in `mask` starting at p.
inline const unsigned char* SkipRun(const unsigned char* p,
                                    const unsigned char* end, uint8_t mask) {
  while (p < end) {
    Char c = At(p, end);
    if (!(c.cls & mask)) break;
    p += c.len;
  }
  return p;
}

// Bit 7 of each byte of the 8 bytes at p set where that byte is an ASCII
// letter, with no carries between bytes: folded to lower case and
// stripped of bit 7, a byte plus 0x1F reaches bit 7 from 'a' on, plus 0x05
// from past 'z' on.
inline uint64_t AsciiLetterBits(const unsigned char* p) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  uint64_t v;
  memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big)
    v = __builtin_bswap64(v);  // Byte i in bits 8i to 8i + 7.
  uint64_t folded = (v | 0x20 * kOnes) & 0x7F * kOnes;
  uint64_t from_a = folded + (0x80 - 'a') * kOnes;
  uint64_t past_z = folded + (0x80 - 'z' - 1) * kOnes;
  return from_a & ~past_z & ~v & 0x80 * kOnes;
}

// The end of the run of letters (\p{L}) starting at p. Letter runs are most
// of Latin-script text, and ASCII ones are taken 8 bytes at a time: ending
// a byte-by-byte run costs a mispredicted branch at nearly every word. The
// byte-by-byte SkipRun goes on from the first byte that is not an ASCII
// letter, through non-ASCII letters.
const unsigned char* LettersEnd(const unsigned char* p,
                                const unsigned char* end) {
  while (end - p >= 8) {
    uint64_t others = ~AsciiLetterBits(p) & 0x8080808080808080ull;
    if (others) {
      p += std::countr_zero(others) / 8;
      break;
    }
    p += 8;
  }
  return SkipRun(p, end, kLetter);
}

// The byte length of what follows an apostrophe at p in a contraction,
// (?i:s|t|re|ve|m|ll|d), or 0. Simple case folding adds U+017F (long s) to s.
int ContractionLength(const unsigned char* p, const unsigned char* end) {
  if (p == end) return 0;
  bool two = end - p >= 2;
  switch (*p | 0x20) {
    case 's':
    case 't':
    case 'm':
    case 'd':
      return 1;
    case 'r':
    case 'v':
      return two && (p[1] | 0x20) == 'e' ? 2 : 0;
    case 'l':
      return two && (p[1] | 0x20) == 'l' ? 2 : 0;
    default:
      return two && p[0] == 0xC5 && p[1] == 0xBF ? 2 : 0;
  }
}

}  // namespace

PreTokenizer::PreTokenizer(PiecePattern pattern, std::string_view text)
    : pattern_(pattern),
      pos_(reinterpret_cast<const unsigned char*>(text.data())),
      end_(pos_ + text.size()) {}

bool PreTokenizer::Next(std::string_view* piece) {
  if (pos_ == end_) return false;
  const unsigned char* e = pattern_ == PiecePattern::kCl100k
                               ? Cl100kPieceEnd(pos_)
                               : O200kPieceEnd(pos_);
  *piece = std::string_view(reinterpret_cast<const char*>(pos_), e - pos_);
  pos_ = e;
  return true;
}

// '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|
// ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s
const unsigned char* PreTokenizer::Cl100kPieceEnd(
    const unsigned char* p) const {
  if (*p == '\'') {
    if (int n = ContractionLength(p + 1, end_)) return p + 1 + n;
  }
  Char c = At(p, end_);
  const unsigned char* after = p + c.len;
  if (c.cls & kLetter) return LettersEnd(after, end_);
  if ((c.cls & kLetterPrefix) && after < end_ &&
      (At(after, end_).cls & kLetter))
    return LettersEnd(after, end_);
  if (c.cls & kNumber) return DigitsEnd(p);
  if (const unsigned char* e = PunctuationEnd(p, false)) return e;
  return WhitespaceEnd(p);
}

// [^\r\n\p{L}\p{N}]?[Up]*[Lo]+C?|[^\r\n\p{L}\p{N}]?[Up]+[Lo]*C?|\p{N}{1,3}|
// ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with Up = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], Lo = [\p{Ll}\p{Lm}\p{Lo}\p{M}]
// and C the contractions.
const unsigned char* PreTokenizer::O200kPieceEnd(
    const unsigned char* p) const {
  if (const unsigned char* e = O200kLetters(p)) {
    if (e < end_ && *e == '\'') {
      if (int n = ContractionLength(e + 1, end_)) return e + 1 + n;
    }
    return e;
  }
  if (At(p, end_).cls & kNumber) return DigitsEnd(p);
  if (const unsigned char* e = PunctuationEnd(p, true)) return e;
  return WhitespaceEnd(p);
}

// The end of o200k's two letter alternatives at p, without the contraction,
// or null if neither matches. Tried in the regex's order: the first
// alternative with and then without its prefix, then the second likewise.
const unsigned char* PreTokenizer::O200kLetters(const unsigned char* p) const {
  // [Up]*[Lo]+ from q. Up and Lo overlap, so when no Ll follows the Up run,
  // backtracking ends the match just after the run's last Lm, Lo or M.
  auto upper_then_lower =
      [this](const unsigned char* q) -> const unsigned char* {
    const unsigned char* last_both_end = nullptr;
    while (q < end_) {
      Char c = At(q, end_);
      if (!(c.cls & kCaseUpper)) break;
      q += c.len;
      if (c.cls & kCaseBoth) last_both_end = q;
    }
    if (q < end_ && (At(q, end_).cls & kLower))
      return SkipRun(q, end_, kCaseLower);
    return last_both_end;
  };
  // [Up]+[Lo]* from q.
  auto upper_run = [this](const unsigned char* q) -> const unsigned char* {
    const unsigned char* e = SkipRun(q, end_, kCaseUpper);
    return e == q ? nullptr : SkipRun(e, end_, kCaseLower);
  };

  Char c = At(p, end_);
  const unsigned char* after = p + c.len;
  bool prefixed = (c.cls & kLetterPrefix) && after < end_ &&
                  (At(after, end_).cls & (kLetter | kMark));
  if (!prefixed && !(c.cls & (kLetter | kMark))) return nullptr;
  const unsigned char* e = nullptr;
  if (prefixed) e = upper_then_lower(after);
  if (!e) e = upper_then_lower(p);
  if (!e && prefixed) e = upper_run(after);
  if (!e) e = upper_run(p);
  return e;
}

// \p{N}{1,3}
const unsigned char* PreTokenizer::DigitsEnd(const unsigned char* p) const {
  for (int i = 0; i < 3 && p < end_; ++i) {
    Char c = At(p, end_);
    if (!(c.cls & kNumber)) break;
    p += c.len;
  }
  return p;
}

// " ?[^\s\p{L}\p{N}]+" then [\r\n]* (cl100k) or [\r\n/]* (o200k); null if
// no punctuation starts at p or after a space there.
const unsigned char* PreTokenizer::PunctuationEnd(const unsigned char* p,
                                                  bool slash_in_tail) const {
  const unsigned char* q = p;
  if (*q == ' ') ++q;
  if (q == end_ || !(At(q, end_).cls & kPunct)) return nullptr;
  q = SkipRun(q, end_, kPunct);
  while (q < end_ && (*q == '\r' || *q == '\n' || (slash_in_tail && *q == '/')))
    ++q;
  return q;
}

// The whitespace alternatives, at a white space code point p:
// \s*[\r\n]+ ends after the run's last CR or LF; otherwise \s+(?!\S) takes
// the whole run at the end of the text, or else all of a longer run but its
// last code point; otherwise \s+ takes the single code point.
const unsigned char* PreTokenizer::WhitespaceEnd(const unsigned char* p) const {
  const unsigned char* first_start = p;
  const unsigned char* last_start = p;
  const unsigned char* last_newline_end = nullptr;
  while (p < end_) {
    Char c = At(p, end_);
    if (!(c.cls & kWhite)) break;
    last_start = p;
    p += c.len;
    if (c.cls & kNewline) last_newline_end = p;
  }
  if (last_newline_end) return last_newline_end;
  if (p == end_ || last_start == first_start) return p;
  return last_start;
}
