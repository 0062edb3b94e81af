#include "tokenize/pretokenizer.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <utf8proc.h>

namespace {

using Pieces = std::vector<std::string>;

Pieces Split(PiecePattern pattern, std::string_view text) {
  Pieces pieces;
  PreTokenizer pretokenizer(pattern, text);
  std::string_view piece;
  while (pretokenizer.Next(&piece)) pieces.emplace_back(piece);
  return pieces;
}

Pieces Cl100k(std::string_view text) {
  return Split(PiecePattern::kCl100k, text);
}

Pieces O200k(std::string_view text) {
  return Split(PiecePattern::kO200k, text);
}

}  // namespace

TEST_CASE("PreTokenizer splits cl100k contractions first") {
  CHECK(Cl100k("'sheep") == Pieces{"'s", "heep"});
  CHECK(Cl100k("DON'T") == Pieces{"DON", "'T"});
  CHECK(Cl100k("we'Re") == Pieces{"we", "'Re"});
  CHECK(Cl100k("it'S") == Pieces{"it", "'S"});
  CHECK(Cl100k("it'\xC5\xBF") == Pieces{"it", "'\xC5\xBF"});  // long s
  CHECK(Cl100k("'x") == Pieces{"'x"});
  CHECK(Cl100k("don\xE2\x80\x99t") == Pieces{"don", "\xE2\x80\x99t"});
}

TEST_CASE("PreTokenizer takes letters with one prefix, digits by three") {
  CHECK(Cl100k("hello world") == Pieces{"hello", " world"});
  CHECK(Cl100k("\tx \xC2\xA0y") == Pieces{"\tx", " ", "\xC2\xA0y"});
  CHECK(Cl100k("\n\nabc") == Pieces{"\n\n", "abc"});
  CHECK(Cl100k("12345") == Pieces{"123", "45"});
  CHECK(Cl100k("abc123") == Pieces{"abc", "123"});
  CHECK(Cl100k(" 42") == Pieces{" ", "42"});
}

TEST_CASE("PreTokenizer ends long letter runs where a non-letter starts") {
  // ASCII letters are taken 8 bytes at a time: runs longer than 8, ending
  // at the bytes just outside A-Z and a-z, at any offset, and going on
  // through non-ASCII letters.
  for (std::string_view stop : {"@", "[", "`", "{", "0", " ", "\x7F", "\xFF",
                                "\xC2\xA0", "\xE2\x80\x99"}) {
    for (size_t n = 1; n <= 20; ++n) {
      CAPTURE(stop);
      CAPTURE(n);
      std::string word(n, 'x');
      word[0] = 'A';
      word[n - 1] = 'z';
      std::string text = word + std::string(stop) + "Zebra";
      Pieces pieces = Cl100k(text);
      REQUIRE(!pieces.empty());
      CHECK(pieces[0] == word);
    }
  }
  std::string accented = "abcdefgh\xC3\xA9ijklmnop\xC3\x9Fqrstuvw";  // é ß
  CHECK(Cl100k(accented + ".") == Pieces{accented, "."});
  CHECK(Cl100k(" " + accented) == Pieces{" " + accented});
}

TEST_CASE("PreTokenizer takes punctuation with its newlines") {
  CHECK(Cl100k(".\n\n") == Pieces{".\n\n"});
  CHECK(Cl100k("\t.") == Pieces{"\t", "."});
  CHECK(Cl100k(" ...x") == Pieces{" ...", "x"});
  CHECK(Cl100k("..abc") == Pieces{"..", "abc"});
  CHECK(Cl100k("a/\n/b") == Pieces{"a", "/\n", "/b"});
  CHECK(O200k("a/\n/b") == Pieces{"a", "/\n/", "b"});
}

TEST_CASE("PreTokenizer splits whitespace runs as the lookahead does") {
  CHECK(Cl100k("  \n\n  y") == Pieces{"  \n\n", " ", " y"});
  CHECK(Cl100k("x   ") == Pieces{"x", "   "});
  CHECK(Cl100k("x   y") == Pieces{"x", "  ", " y"});
  CHECK(Cl100k("x \n y") == Pieces{"x", " \n", " y"});
  CHECK(Cl100k("a\r\n\r\nb") == Pieces{"a", "\r\n\r\n", "b"});
  CHECK(Cl100k("a \xC2\x85 b") == Pieces{"a", " \xC2\x85", " b"});
  CHECK(Cl100k("  .") == Pieces{" ", " ."});
  CHECK(Cl100k("\xE3\x80\x80\xE3\x80\x80x") ==
        Pieces{"\xE3\x80\x80", "\xE3\x80\x80x"});
}

TEST_CASE("PreTokenizer follows o200k's case classes") {
  CHECK(O200k("HelloWorld") == Pieces{"Hello", "World"});
  CHECK(O200k("\xE4\xB8\xAD\xE6\x96\x87" "ABC") ==
        Pieces{"\xE4\xB8\xAD\xE6\x96\x87", "ABC"});
  CHECK(O200k("ABCdef") == Pieces{"ABCdef"});
  CHECK(O200k("helloWORLD") == Pieces{"hello", "WORLD"});
  CHECK(O200k(" ABC.") == Pieces{" ABC", "."});
  // A mark is both a prefix and a letter: alone, it is its own piece.
  CHECK(O200k("\xCC\x81" "ABC ") == Pieces{"\xCC\x81", "ABC", " "});
  CHECK(O200k("E\xCC\x81X") == Pieces{"E\xCC\x81", "X"});
}

TEST_CASE("PreTokenizer puts o200k contractions at the end of words") {
  CHECK(O200k("'sheep") == Pieces{"'sheep"});
  CHECK(O200k("don't") == Pieces{"don't"});
  CHECK(O200k("DON'T stop") == Pieces{"DON'T", " stop"});
  CHECK(O200k("it'\xC5\xBF") == Pieces{"it'\xC5\xBF"});
  CHECK(O200k("x'll've") == Pieces{"x'll", "'ve"});
}

TEST_CASE("PreTokenizer covers invalid UTF-8 byte by byte") {
  CHECK(Cl100k("a\xFF\xFE b") == Pieces{"a", "\xFF\xFE", " b"});
  CHECK(Cl100k("\xE4\xB8") == Pieces{"\xE4\xB8"});
  CHECK(Cl100k("") == Pieces{});
}

TEST_CASE("PreTokenizer knows the code points of Unicode 15.1 and 16.0") {
  // The table of later assignments starts where utf8proc 2.8's data ends;
  // a newer utf8proc would class Unicode 17.0 code points, which the
  // reference does not know, and needs the table reviewed.
  CHECK(std::string(utf8proc_unicode_version()) == "15.0.0");
  const std::string upper = "\xE1\xB2\x89";      // U+1C89, Lu
  const std::string digit = "\xF0\x9C\xB3\xB0";  // U+1CCF0, Nd
  CHECK(Cl100k("a" + upper + "b") == Pieces{"a" + upper + "b"});
  CHECK(Cl100k(digit + digit + digit + digit) ==
        Pieces{digit + digit + digit, digit});
  CHECK(O200k("x\xE0\xA2\x97") == Pieces{"x\xE0\xA2\x97"});  // U+0897 Mn
  // U+323B0, assigned in Unicode 17.0, is still unassigned here.
  CHECK(Cl100k("a\xF0\xB2\x8E\xB0" "b") == Pieces{"a", "\xF0\xB2\x8E\xB0" "b"});
}
