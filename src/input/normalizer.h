// Turns a record's raw text into the text that is embedded: valid UTF-8,
// Unicode-normalized, control characters and outer white space removed, by
// the rules documented on Normalize().
#pragma once

#include <string>
#include <string_view>

enum class NormalForm { kNfc, kNfkc, kNone };
enum class InvalidUtf8 { kReplace, kReject };

struct NormalizeConfig {
  NormalForm form = NormalForm::kNfc;
  InvalidUtf8 invalid_utf8 = InvalidUtf8::kReplace;
};

/// Normalizes `in` into *out by these rules, in this order:
///
/// 1. Invalid UTF-8 (a stray continuation byte, a truncated sequence, an
///    overlong encoding, an encoded surrogate U+D800..U+DFFF, a code point
///    above U+10FFFF, the bytes C0, C1, F5..FF): with invalid_utf8 = replace,
///    each maximal subpart of an ill-formed sequence becomes one U+FFFD, as
///    the Unicode Standard recommends (chapter 3, "U+FFFD Substitution of
///    Maximal Subparts") and as Python's and the WHATWG decoders do; with
///    invalid_utf8 = reject, the text is rejected with the reason
///    "text is not valid UTF-8 at byte N" (N counts from 0 and is the offset
///    of the first invalid byte in the text value).
/// 2. Unless form is none, in this order:
///    a. CR LF and a lone CR become LF.
///    b. Every other character of general category Cc except TAB and LF is
///       removed: U+0000..U+0008, U+000B, U+000C, U+000E..U+001F, U+007F
///       and U+0080..U+009F (so NUL, ESC, DEL and NEL among them).
///    c. The text is put in Unicode normalization form NFC, or NFKC when
///       form is NFKC (utf8proc, Unicode 15.0). Nothing else is folded.
///    d. Leading and trailing White_Space is removed: U+0009..U+000D, U+0020,
///       U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F,
///       U+205F, U+3000. White space inside the text is kept as it is.
/// 3. A text that is now empty is rejected with the reason
///    "text is empty after normalization".
///
/// Returns false and fills *reason when the text is rejected. The result is
/// idempotent: normalizing *out again yields *out. Pure ASCII text is handled
/// without calling into utf8proc.
bool Normalize(std::string_view in, const NormalizeConfig& config,
               std::string* out, std::string* reason);

/// True when code point `c` is a boundary for `form`: the form leaves it as
/// it is, and nothing before it composes with it or reorders past it, so
/// the text on each side of it can be normalized apart.
bool IsNormalizationBoundary(char32_t c, NormalForm form);
