// Splits text into the pieces that tiktoken's pre-tokenizer regex matches
// for cl100k_base and o200k_base, written out by hand on Unicode general
// categories (utf8proc) instead of running a regex engine.
#pragma once

#include <cstdint>
#include <string_view>

/// The two regex patterns: cl100k_base's and o200k_base's.
enum class PiecePattern { kCl100k, kO200k };

/// Walks `text` piece by piece, left to right, exactly as the pattern's
/// leftmost-first find_iter does. The pieces are never empty and concatenate
/// to `text`. Text should be valid UTF-8; each byte of an invalid sequence is
/// taken as one code point of no letter, number or space class, so the
/// pieces still cover every byte.
class PreTokenizer {
 public:
  /// `text` must outlive this object and the pieces it returns.
  PreTokenizer(PiecePattern pattern, std::string_view text);

  /// Sets *piece to the next piece and returns true; returns false at the end.
  bool Next(std::string_view* piece);

 private:
  const unsigned char* Cl100kPieceEnd(const unsigned char* p) const;
  const unsigned char* O200kPieceEnd(const unsigned char* p) const;
  const unsigned char* O200kLetters(const unsigned char* p) const;
  const unsigned char* DigitsEnd(const unsigned char* p) const;
  const unsigned char* PunctuationEnd(const unsigned char* p,
                                      bool slash_in_tail) const;
  const unsigned char* WhitespaceEnd(const unsigned char* p) const;

  PiecePattern pattern_;
  const unsigned char* pos_;
  const unsigned char* end_;
};
