#include "input/normalizer.h"

#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <utf8proc.h>

namespace {

const NormalizeConfig kNfc = {NormalForm::kNfc, InvalidUtf8::kReplace};
const NormalizeConfig kNfkc = {NormalForm::kNfkc, InvalidUtf8::kReplace};
const NormalizeConfig kNone = {NormalForm::kNone, InvalidUtf8::kReplace};
const NormalizeConfig kNfcReject = {NormalForm::kNfc, InvalidUtf8::kReject};

// The normalized text, or "error: <reason>".
std::string Norm(std::string_view in, const NormalizeConfig& config = kNfc) {
  std::string out, reason;
  if (!Normalize(in, config, &out, &reason)) return "error: " + reason;
  CHECK(reason.empty());
  return out;
}

constexpr const char* kEmpty = "error: text is empty after normalization";
#define FFFD "\xEF\xBF\xBD"

}  // namespace

TEST_CASE("Normalize leaves plain ASCII alone") {
  CHECK(Norm("hello world") == "hello world");
  CHECK(Norm("a  b\tc\nd\n\ne") == "a  b\tc\nd\n\ne");
  CHECK(Norm("{\"x\": [1, 2]} ~") == "{\"x\": [1, 2]} ~");
  CHECK(Norm("x", kNone) == "x");
}

TEST_CASE("Normalize turns CR LF and lone CR into LF") {
  CHECK(Norm("a\r\nb\rc\r\r\nd\n\re") == "a\nb\nc\n\nd\n\ne");
  CHECK(Norm("a\r\nb", kNfkc) == "a\nb");
  CHECK(Norm("a\r\nb\rc", kNone) == "a\r\nb\rc");
}

TEST_CASE("Normalize removes control characters except TAB and LF") {
  CHECK(Norm(std::string("g\0h\x01i\x08\x0B\x0C\x0E\x1B\x1F\x7Fj", 13)) ==
        "ghij");
  CHECK(Norm("g\xC2\x80h\xC2\x85i\xC2\x9Fj") == "ghij");
  CHECK(Norm("a\tb\nc") == "a\tb\nc");
  // U+00A0 and U+00AD are not controls.
  CHECK(Norm("g\xC2\xA0h\xC2\xADi") == "g\xC2\xA0h\xC2\xADi");
  // Removal comes before composition.
  CHECK(Norm(std::string("e\0\xCC\x81", 4)) == "\xC3\xA9");
  CHECK(Norm(std::string("a\0\x1B\xC2\x85", 5), kNone) ==
        std::string("a\0\x1B\xC2\x85", 5));
}

TEST_CASE("Normalize applies NFC or NFKC") {
  // e + COMBINING ACUTE ACCENT composes under both.
  CHECK(Norm("e\xCC\x81") == "\xC3\xA9");
  CHECK(Norm("e\xCC\x81", kNfkc) == "\xC3\xA9");
  CHECK(Norm("e\xCC\x81", kNone) == "e\xCC\x81");
  // LATIN SMALL LIGATURE FI is a compatibility character.
  CHECK(Norm("\xEF\xAC\x81") == "\xEF\xAC\x81");
  CHECK(Norm("\xEF\xAC\x81", kNfkc) == "fi");
  // ANGSTROM SIGN is canonically A WITH RING ABOVE.
  CHECK(Norm("\xE2\x84\xAB") == "\xC3\x85");
  // Hangul jamo compose into a syllable.
  CHECK(Norm("\xE1\x84\x80\xE1\x85\xA1") == "\xEA\xB0\x80");
  // FULLWIDTH LATIN CAPITAL LETTER A and SUPERSCRIPT TWO.
  CHECK(Norm("\xEF\xBC\xA1\xC2\xB2") == "\xEF\xBC\xA1\xC2\xB2");
  CHECK(Norm("\xEF\xBC\xA1\xC2\xB2", kNfkc) == "A2");
  // Canonical reordering of combining marks: dot below (ccc 220) goes
  // before dot above (ccc 230), then both compose with s.
  CHECK(Norm("s\xCC\x87\xCC\xA3") == "\xE1\xB9\xA9");
  // Case and other foldings are not applied.
  CHECK(Norm("ABC \xC3\x9F") == "ABC \xC3\x9F");
  // Nor are default-ignorable characters removed.
  CHECK(Norm("g\xE2\x80\x8Bh\xEF\xBB\xBF") == "g\xE2\x80\x8Bh\xEF\xBB\xBF");
}

TEST_CASE("Normalize finds what it changes at any offset in a long text") {
  // Normalize passes over plain ASCII 8 bytes at a time: each character it
  // changes or keeps must be found in any position of such a word.
  struct Case {
    std::string_view insert, want;
  };
  const Case kCases[] = {
      {"\x01", ""}, {"\x1F", ""}, {"\x7F", ""}, {"\r", "\n"},
      {"\t", "\t"}, {"\n", "\n"}, {" ", " "}, {"~", "~"},
      {"\xC2\x85", ""},                      // NEL, a C1 control
      {"\xC3\xA9", "\xC3\xA9"},              // e WITH ACUTE
      {"\xCC\x81", "\xC3\xA1"},              // COMBINING ACUTE after an a
      {"\xFF", FFFD},                         // invalid UTF-8
  };
  for (const Case& c : kCases) {
    for (size_t at = 1; at < 24; ++at) {
      std::string text(24, 'a');
      text.insert(at, c.insert);
      std::string want(24, 'a');
      if (c.insert == "\xCC\x81")
        want.replace(at - 1, 1, c.want);
      else
        want.insert(at, c.want);
      // With no form, only invalid UTF-8 changes.
      std::string want_none = text;
      if (c.insert == "\xFF") want_none = want;
      INFO("inserted ", c.insert.size(), " bytes at ", at);
      CHECK(Norm(text) == want);
      CHECK(Norm(text, kNone) == want_none);
    }
  }
}

TEST_CASE("Normalize applies the form stretch by stretch as utf8proc does on the whole") {
  // Normalize hands utf8proc only the stretches around code points at or
  // above U+0300 (NFKC: U+00A0), each with the code point before it. On
  // random mixes of pieces that compose across that boundary, reorder and
  // decompose, the result must be utf8proc's on the whole text.
  const std::string_view kPieces[] = {
      "a", "e", "u", "s", "A", " ", ".",
      "\xC2\xA0",          // NO-BREAK SPACE (NFKC: space)
      "\xC2\xBD",          // VULGAR FRACTION ONE HALF (NFKC: 1/2)
      "\xC3\xBC",          // u WITH DIAERESIS, composes on with a macron
      "\xCA\xB0",          // MODIFIER LETTER SMALL H (NFKC: h)
      "\xCC\x81",          // COMBINING ACUTE ACCENT
      "\xCC\x84",          // COMBINING MACRON
      "\xCC\x87",          // COMBINING DOT ABOVE (ccc 230)
      "\xCC\xA3",          // COMBINING DOT BELOW (ccc 220)
      "\xCD\x80",          // COMBINING GRAVE TONE MARK (a singleton)
      "\xE2\x80\x94",      // EM DASH
      "\xE2\x84\xAB",      // ANGSTROM SIGN
      "\xEF\xAC\x81",      // LIGATURE FI
      "\xE1\x84\x80",      // HANGUL CHOSEONG KIYEOK
      "\xE1\x85\xA1",      // HANGUL JUNGSEONG A
      "\xE1\x86\xA8",      // HANGUL JONGSEONG KIYEOK
      "\xEA\xB0\x80",      // HANGUL SYLLABLE GA
      "\xE3\x81\x8B",      // HIRAGANA KA
      "\xE3\x82\x99",      // COMBINING KATAKANA-HIRAGANA VOICED SOUND MARK
      "\xE0\xAF\x86",      // TAMIL VOWEL SIGN E
      "\xE0\xAE\xBE",      // TAMIL VOWEL SIGN AA (composes, combining class 0)
      "\xE4\xB8\x80",      // CJK ONE
      "\xEF\xA4\x80",      // CJK COMPATIBILITY IDEOGRAPH-F900 (a singleton)
      "\xE0\xA4\x95",      // DEVANAGARI KA
      "\xE0\xA4\xBC",      // DEVANAGARI NUKTA (KA + NUKTA is excluded)
      "\xE0\xA5\x98",      // DEVANAGARI QA (a composition exclusion)
      "\xEF\xBD\xB6",      // HALFWIDTH KATAKANA KA (NFKC: KA)
      "\xEF\xBE\x9E",      // HALFWIDTH VOICED SOUND MARK (NFKC: U+3099)
      "\xD0\xB8",          // CYRILLIC I, composes with a breve
      "\xCC\x86",          // COMBINING BREVE
      "\xF0\x9F\x98\x80",  // an emoji
      "\xF0\x9F\x8F\xBD",  // EMOJI MODIFIER FITZPATRICK TYPE-4
      "\xEF\xB8\x8F",      // VARIATION SELECTOR-16
  };
  std::mt19937 random(7);
  for (const NormalizeConfig* config : {&kNfc, &kNfkc}) {
    int options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    if (config == &kNfkc) options |= UTF8PROC_COMPAT;
    for (int round = 0; round < 3000; ++round) {
      std::string text = "x";  // no outer white space to trim
      int pieces = 1 + static_cast<int>(random() % 12);
      for (int k = 0; k < pieces; ++k)
        text += kPieces[random() % std::size(kPieces)];
      text += "x";
      utf8proc_uint8_t* mapped = nullptr;
      utf8proc_ssize_t length = utf8proc_map(
          reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
          static_cast<utf8proc_ssize_t>(text.size()), &mapped,
          static_cast<utf8proc_option_t>(options));
      REQUIRE(length >= 0);
      std::string want(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length));
      std::free(mapped);
      INFO("text: ", text);
      CHECK(Norm(text, *config) == want);
    }
  }
}

TEST_CASE("IsNormalizationBoundary holds only where the forms cannot join") {
  // What a boundary must be, from utf8proc's public operations alone: a
  // code point the form maps to itself, with combining class 0, that is no
  // later part of the canonical decomposition of a code point NFC composes
  // back (the second of every composition pair is such a later part,
  // Hangul's vowels and trailing consonants among them).
  auto maps_to_itself = [](utf8proc_int32_t c, int options) {
    utf8proc_uint8_t text[4];
    utf8proc_ssize_t size = utf8proc_encode_char(c, text);
    utf8proc_uint8_t* mapped = nullptr;
    utf8proc_ssize_t length = utf8proc_map(
        text, size, &mapped, static_cast<utf8proc_option_t>(options));
    bool same = length == size &&
                std::memcmp(mapped, text, static_cast<size_t>(size)) == 0;
    std::free(mapped);
    return same;
  };
  const int kNfcOptions = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
  std::vector<bool> later_part(0x110000);
  for (utf8proc_int32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xD800 && c < 0xE000) continue;
    utf8proc_int32_t parts[8];
    int last_boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(
        c, parts, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
    REQUIRE(n >= 1);
    REQUIRE(n <= 8);
    if (n == 1 || !maps_to_itself(c, kNfcOptions)) continue;
    for (utf8proc_ssize_t k = 1; k < n; ++k) later_part[parts[k]] = true;
  }
  for (NormalForm form : {NormalForm::kNfc, NormalForm::kNfkc}) {
    int options = kNfcOptions;
    if (form == NormalForm::kNfkc) options |= UTF8PROC_COMPAT;
    int boundaries = 0;
    for (char32_t c = 0; c < 0x110000; ++c) {
      if ((c >= 0xD800 && c < 0xE000) || !IsNormalizationBoundary(c, form))
        continue;
      ++boundaries;
      INFO("code point ", static_cast<uint32_t>(c));
      REQUIRE_FALSE(later_part[c]);
      REQUIRE(utf8proc_get_property(static_cast<utf8proc_int32_t>(c))
                  ->combining_class == 0);
      REQUIRE(maps_to_itself(static_cast<utf8proc_int32_t>(c), options));
    }
    // Most of Unicode: the scripts that need no composing are left out of
    // utf8proc's way.
    CHECK(boundaries > 1000000);
    // Firsts of composition pairs too (KA takes a voiced mark, TAMIL VOWEL
    // SIGN E an AA).
    for (char32_t c :
         {0x41, 0x4E00, 0x3042, 0x304B, 0xBC6, 0xAC00, 0x1F600, 0xFE0F})
      CHECK(IsNormalizationBoundary(c, form));
    for (char32_t c : {0x301, 0xBBE, 0x1161, 0x11A8, 0xF900, 0x958, 0x439})
      CHECK_FALSE(IsNormalizationBoundary(c, form));
  }
  CHECK(IsNormalizationBoundary(0xE9, NormalForm::kNfc));  // below U+0300
  CHECK(IsNormalizationBoundary(0xFF76, NormalForm::kNfc));
  CHECK_FALSE(IsNormalizationBoundary(0xFF76, NormalForm::kNfkc));
}

TEST_CASE("Normalize trims outer White_Space only") {
  CHECK(Norm("  \t\n x y \n\t ") == "x y");
  CHECK(Norm("\xC2\xA0\xE1\x9A\x80\xE2\x80\x80\xE2\x80\x8A\xE2\x80\xA8x"
             "\xE2\x80\xA9\xE2\x80\xAF\xE2\x81\x9F\xE3\x80\x80") == "x");
  CHECK(Norm("g\xE3\x80\x80\xC2\xA0h") == "g\xE3\x80\x80\xC2\xA0h");
  // NFKC maps inner U+3000 to a space.
  CHECK(Norm(" g\xE3\x80\x80h ", kNfkc) == "g h");
  // ZERO WIDTH SPACE is not White_Space.
  CHECK(Norm("\xE2\x80\x8Bz ") == "\xE2\x80\x8Bz");
  // Trimming follows NFKC, which maps DIAERESIS to SPACE + COMBINING
  // DIAERESIS.
  CHECK(Norm("\xC2\xA8", kNfkc) == "\xCC\x88");
  CHECK(Norm("  x  ", kNone) == "  x  ");
}

TEST_CASE("Normalize rejects text that ends up empty") {
  for (std::string_view empty :
       {std::string_view(""), std::string_view(" "), std::string_view("\r\n"),
        std::string_view("\0\x01\x7F", 3), std::string_view("\xC2\x85"),
        std::string_view("\xE3\x80\x80\t\xE2\x80\xA8")}) {
    CAPTURE(empty);
    CHECK(Norm(empty) == kEmpty);
    CHECK(Norm(empty, kNfkc) == kEmpty);
  }
  CHECK(Norm("", kNone) == kEmpty);
  CHECK(Norm(" ", kNone) == " ");
}

TEST_CASE("Normalize replaces each maximal invalid subpart with U+FFFD") {
  struct Case {
    const char* name;
    std::string_view in;
    std::string_view replaced;
    size_t offset;  // Of the first invalid byte.
  };
  const Case kCases[] = {
      {"stray continuation", "g\x80h", "g" FFFD "h", 1},
      {"two stray continuations", "\x80\xBF", FFFD FFFD, 0},
      {"byte never valid", "a\xFF\xFE", "a" FFFD FFFD, 1},
      {"overlong C0", "\xC0\xAF", FFFD FFFD, 0},
      {"overlong C1", "x\xC1\xBF", "x" FFFD FFFD, 1},
      {"overlong E0", "\xE0\x80\xAF", FFFD FFFD FFFD, 0},
      {"overlong F0", "\xF0\x80\x80\xAF", FFFD FFFD FFFD FFFD, 0},
      {"surrogate high", "\xED\xA0\x80", FFFD FFFD FFFD, 0},
      {"surrogate low", "a\xED\xBF\xBF", "a" FFFD FFFD FFFD, 1},
      {"above U+10FFFF F4", "\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD, 0},
      {"above U+10FFFF F5", "\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD, 0},
      {"truncated 2 at end", "ab\xC3", "ab" FFFD, 2},
      {"truncated 3 at end", "ab\xE2\x82", "ab" FFFD, 2},
      {"truncated 4 at end", "\xF0\x9F\x98", FFFD, 0},
      {"truncated 3 mid", "\xE2\x82x", FFFD "x", 0},
      {"truncated 4 mid", "\xF0\x9F\x98\xF0\x9F\x98\x80",
       FFFD "\xF0\x9F\x98\x80", 0},
      // Unicode Standard, Table 3-8.
      {"table 3-8", "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
       "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d", 1},
  };
  for (const Case& c : kCases) {
    CAPTURE(c.name);
    CHECK(Norm(c.in) == c.replaced);
    CHECK(Norm(c.in, kNone) == c.replaced);
    CHECK(Norm(c.in, kNfcReject) ==
          "error: text is not valid UTF-8 at byte " + std::to_string(c.offset));
  }
  // The largest code points and the edges of the surrogate range are valid.
  for (std::string_view valid :
       {"\xF4\x8F\xBF\xBF", "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBD",
        "\xC2\x80x", "\xF0\x90\x80\x80"}) {
    CAPTURE(valid);
    std::string out, reason;
    CHECK(Normalize(valid, {NormalForm::kNone, InvalidUtf8::kReject}, &out,
                    &reason));
    CHECK(out == valid);
  }
  // Replacement comes first, so U+FFFD is never trimmed or removed.
  CHECK(Norm(" \xFF ") == FFFD);
}

namespace {

// Checks what every normalized text must satisfy.
void CheckInvariants(std::string_view in, const NormalizeConfig& config) {
  std::string out, reason;
  if (!Normalize(in, config, &out, &reason)) {
    CHECK((reason == "text is empty after normalization" ||
           (config.invalid_utf8 == InvalidUtf8::kReject &&
            reason.starts_with("text is not valid UTF-8 at byte "))));
    return;
  }
  // Idempotent.
  std::string again;
  REQUIRE(Normalize(out, config, &again, &reason));
  CHECK(again == out);
  // Valid UTF-8.
  CHECK(Normalize(out, {NormalForm::kNone, InvalidUtf8::kReject}, &again,
                  &reason));
  if (config.form == NormalForm::kNone) return;
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(out[i]);
    CHECK(((c >= 0x20 && c != 0x7F) || c == '\t' || c == '\n'));
    if (c == 0xC2) CHECK(static_cast<unsigned char>(out[i + 1]) >= 0xA0);
  }
  CHECK(out.front() != ' ');
  CHECK(out.back() != ' ');
  CHECK(out.back() != '\n');
}

}  // namespace

TEST_CASE("Normalize is idempotent on generated text") {
  // Pieces that interact: marks that reorder and compose, compatibility
  // characters, white space, controls, invalid bytes.
  using std::literals::operator""sv;
  const std::string_view kPieces[] = {
      "a",
      "e",
      "s",
      " ",
      "\t",
      "\r",
      "\n",
      "\0"sv,                      // NUL
      "\x1B",                      // ESC
      "\x7F",                      // DEL
      "\xC2\x85",                  // NEL
      "\xC2\xA0",                  // NO-BREAK SPACE
      "\xE3\x80\x80",              // IDEOGRAPHIC SPACE
      "\xE2\x80\xA8",              // LINE SEPARATOR
      "\xC2\xA8",                  // DIAERESIS (NFKC: space + mark)
      "\xCC\x81",                  // COMBINING ACUTE ACCENT
      "\xCC\x87",                  // COMBINING DOT ABOVE
      "\xCC\xA3",                  // COMBINING DOT BELOW
      "\xCC\x88",                  // COMBINING DIAERESIS
      "\xCD\x85",                  // COMBINING GREEK YPOGEGRAMMENI
      "\xC3\xA9",                  // e WITH ACUTE
      "\xEF\xAC\x81",              // LIGATURE FI
      "\xE2\x84\xAB",              // ANGSTROM SIGN
      "\xEF\xBC\xA1",              // FULLWIDTH A
      "\xE1\x84\x80",              // HANGUL CHOSEONG KIYEOK
      "\xE1\x85\xA1",              // HANGUL JUNGSEONG A
      "\xE1\x86\xA8",              // HANGUL JONGSEONG KIYEOK
      "\xEA\xB0\x80",              // HANGUL SYLLABLE GA
      "\xE3\x82\xAB",              // KATAKANA KA
      "\xEF\xBE\x9E",              // HALFWIDTH VOICED SOUND MARK
      "\xE0\xA4\xA8\xE0\xA4\xBC",  // DEVANAGARI NA + NUKTA
      "\xF0\x9F\x98\x80",          // an emoji
      "\x80",                      // stray continuation byte
      "\xFF",                      // never valid
      "\xE2\x82",                  // truncated
      "\xF0\x9F",                  // truncated
      "\xED\xA0\x80",              // encoded surrogate
      "\xC0\xAF",                  // overlong
  };
  const NormalizeConfig kConfigs[] = {
      kNfc,
      kNfkc,
      kNone,
      kNfcReject,
      {NormalForm::kNfkc, InvalidUtf8::kReject},
      {NormalForm::kNone, InvalidUtf8::kReject}};
  std::mt19937 rng(20240601);
  for (int n = 0; n < 3000; ++n) {
    std::string in;
    for (size_t k = rng() % 9; k > 0; --k)
      in += kPieces[rng() % std::size(kPieces)];
    CAPTURE(in);
    for (const NormalizeConfig& config : kConfigs) CheckInvariants(in, config);
  }
}

#undef FFFD

TEST_CASE("Normalize leaves the text little spare capacity") {
  // Pieces appended one by one (CRs dropped, stretches put in NFC, trimmed
  // ends) would grow the string by doubling: the text is held until its
  // vector is written, so its capacity is what the read window pays.
  for (int lines : {10, 100, 300, 1000, 3000}) {
    std::string in;
    for (int i = 0; i < lines; ++i) in += "line\r\nCafe\xCC\x81 \xE2\x80\x8B\x01";
    in += "   \xE3\x80\x80";
    for (const NormalizeConfig* config : {&kNfc, &kNfkc, &kNone}) {
      CAPTURE(lines);
      std::string out, reason;
      REQUIRE(Normalize(in, *config, &out, &reason));
      CHECK(out.size() <= in.size());
      CHECK(out.capacity() <= out.size() + out.size() / 8);
    }
  }
}
