#include "journal/known_ids.h"

#include <cstdio>
#include <string>

#include <doctest/doctest.h>

#include "test_util.h"

namespace {

const std::string kKeyA(64, 'a');
const std::string kKeyB = std::string(63, 'b') + "0";

KnownIds::Key KeyOf(char digit) {
  KnownIds::Key key;
  int v = digit <= '9' ? digit - '0' : digit - 'a' + 10;
  key.fill(static_cast<uint8_t>(v << 4 | v));
  return key;
}

}  // namespace

TEST_CASE("DecodeCopyTextField undoes PostgreSQL's text COPY escapes") {
  std::string out;
  CHECK(DecodeCopyTextField("plain", &out));
  CHECK(out == "plain");
  CHECK(DecodeCopyTextField("a\\tb\\nc\\rd\\\\e\\bf\\fg\\vh", &out));
  CHECK(out == "a\tb\nc\rd\\e\bf\fg\vh");
  // Octal of one to three digits, hex of one or two; others stand for
  // themselves (\. \N inside a field are just . and N).
  CHECK(DecodeCopyTextField("\\101\\7\\0618\\x41\\x4g\\xz\\q\\.", &out));
  CHECK(out == std::string("A\x07") + "18" + "A\x04gxzq.");
  CHECK(DecodeCopyTextField("caf\xc3\xa9", &out));
  CHECK(out == "caf\xc3\xa9");
  CHECK_FALSE(DecodeCopyTextField("ends\\", &out));
}

TEST_CASE("KnownIds reads psql's export and finds ids as the output writes them") {
  KnownIds known;
  std::string err;
  std::string file = "plain\t" + kKeyA + "\n" +
                     "tab\\there\t" + kKeyB + "\n" +
                     "back\\\\slash\t" + kKeyA + "\n" +
                     "42\t\\N\n" +
                     "\t" + kKeyA;  // an empty id; no final newline
  REQUIRE(known.Parse(file, "known", &err));
  CHECK(known.size() == 5);
  CHECK(known.Find("plain") == 0);
  CHECK(known.Find("tab\there") == 1);
  CHECK(known.Find("back\\slash") == 2);
  CHECK(known.Find("42") == 3);
  CHECK(known.Find("") == 4);
  CHECK(known.Find("tab\\there") == KnownIds::kNotKnown);
  CHECK(known.Find("missing") == KnownIds::kNotKnown);
  CHECK(known.Id(1) == "tab\there");

  // The end-of-data marker ends the data.
  REQUIRE(known.Parse("a\t" + kKeyA + "\n\\.\nb\tjunk\n", "known", &err));
  CHECK(known.size() == 1);
}

TEST_CASE("KnownIds refuses a malformed line or a repeated id, naming the line") {
  KnownIds known;
  std::string err;
  struct Case {
    std::string file;
    std::string error;
  };
  for (const Case& c : {
           Case{"a\t" + kKeyA + "\nb\n", "f:2: expected two tab-separated columns, id and key"},
           Case{"a\t" + kKeyA + "\tx\n", "f:1: expected two tab-separated columns, id and key"},
           Case{"\\N\t" + kKeyA + "\n", "f:1: the id is NULL (\\N)"},
           Case{"a\\\t" + kKeyA + "\n", "f:1: the id ends in a lone backslash"},
           Case{"a\t" + kKeyA.substr(1) + "\n",
                "f:1: the key is not 64 hexadecimal digits (embedpipe's key column)"},
           Case{"a\t" + kKeyA.substr(1) + "g\n",
                "f:1: the key is not 64 hexadecimal digits (embedpipe's key column)"},
           Case{"a\t" + kKeyA + "\nb\t" + kKeyA + "\na\t" + kKeyB + "\n",
                "f:3: id a is given twice"},
           Case{"x\\ty\t" + kKeyA + "\nx\\011y\t" + kKeyA + "\n",
                "f:2: id x\ty is given twice"},
       }) {
    CAPTURE(c.file);
    CHECK_FALSE(known.Parse(c.file, "f", &err));
    CHECK(err == c.error);
  }
}

TEST_CASE("KnownIds: unchanged until a line of the id is written; seen ids stay") {
  KnownIds known;
  std::string err;
  REQUIRE(known.Parse("a\t" + kKeyA + "\nb\t" + kKeyA + "\nc\t\\N\nd\t" + kKeyA + "\n",
                      "known", &err));
  size_t a = known.Find("a"), b = known.Find("b"), c = known.Find("c");

  // Same key: left out, as often as it repeats.
  CHECK(known.Unchanged(a, KeyOf('a')));
  CHECK(known.Unchanged(a, KeyOf('a')));
  // A changed line is written, and from then on so is every line of the id,
  // the same key included, so that the input's last line is the one loaded.
  CHECK_FALSE(known.Unchanged(b, KeyOf('b')));
  CHECK_FALSE(known.Unchanged(b, KeyOf('a')));
  // A row without a key is always rewritten.
  CHECK_FALSE(known.Unchanged(c, KeyOf('a')));

  CHECK_FALSE(known.Seen(a));
  known.MarkSeen(a);
  known.MarkSeen(c);
  CHECK(known.Seen(a));
  CHECK(known.Seen(c));
  CHECK_FALSE(known.Seen(b));
  CHECK_FALSE(known.Seen(known.Find("d")));

  // A second pass decides as the first did; seen ids stay seen.
  known.ForgetWritten();
  CHECK(known.Unchanged(b, KeyOf('a')));
  CHECK(known.Seen(a));
}

TEST_CASE("KnownIds grows its index past the size the file promised") {
  // Lines with \N keys are shorter than Reserve assumes: the index grows.
  std::string file;
  for (int i = 0; i < 5000; ++i) file += std::to_string(i) + "\t\\N\n";
  KnownIds known;
  std::string err;
  REQUIRE(known.Parse(file, "known", &err));
  CHECK(known.size() == 5000);
  for (int i = 0; i < 5000; ++i) REQUIRE(known.Find(std::to_string(i)) == static_cast<size_t>(i));
  CHECK(known.Find("5000") == KnownIds::kNotKnown);
}

TEST_CASE("KnownIds::Load reads a file in chunks, lines across their borders") {
  std::string file;
  for (int i = 0; i < 3000; ++i)
    file += "id-" + std::to_string(i) + std::string(i % 97, 'x') + "\t" + kKeyA + "\n";
  file += "last\t" + kKeyB;  // no final newline
  TempDir dir;
  std::string path = dir.File("known.tsv");
  FILE* f = fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  REQUIRE(fwrite(file.data(), 1, file.size(), f) == file.size());
  fclose(f);
  KnownIds known;
  std::string err;
  REQUIRE(known.Load(path, &err));
  CHECK(known.size() == 3001);
  CHECK(known.Find("id-2999" + std::string(2999 % 97, 'x')) == 2999);
  CHECK(known.Find("last") == 3000);

  CHECK_FALSE(known.Load(dir.File("missing"), &err));
  CHECK(err == "cannot read " + dir.File("missing") + ": No such file or directory");
}
