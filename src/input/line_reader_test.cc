#include "input/line_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

namespace {

// Closes a descriptor at scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    REQUIRE(n > 0);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// An unlinked temporary file holding `content`, positioned at its start.
int TempFileWith(std::string_view content) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/line_reader_XXXXXX";
  int fd = mkstemp(path.data());
  REQUIRE(fd >= 0);
  unlink(path.c_str());
  WriteAll(fd, content);
  REQUIRE(lseek(fd, 0, SEEK_SET) == 0);
  return fd;
}

using Lines = std::vector<std::pair<std::string, uint64_t>>;

// Drains `reader` to end of input the way the event loop does: lines first,
// then one Fill.
Lines ReadAll(LineReader* reader) {
  Lines lines;
  std::string err;
  for (;;) {
    std::string_view line;
    uint64_t number;
    while (reader->NextLine(&line, &number))
      lines.emplace_back(std::string(line), number);
    LineReader::ReadStatus status = reader->Fill(&err);
    if (status == LineReader::ReadStatus::kEof) break;
    // One check per Fill would make the byte-at-a-time cases slow.
    if (status != LineReader::ReadStatus::kData)
      FAIL("Fill returned ", static_cast<int>(status), ": ", err);
  }
  std::string_view line;
  uint64_t number;
  while (reader->NextLine(&line, &number))
    lines.emplace_back(std::string(line), number);
  return lines;
}

Lines ReadAllOf(std::string_view content, size_t read_size) {
  Fd file{TempFileWith(content)};
  LineReader reader(file.fd, read_size);
  return ReadAll(&reader);
}

}  // namespace

TEST_CASE("LineReader splits lines and numbers them from 1") {
  Lines expected = {{"a", 1}, {"", 2}, {"bc", 3}, {"d\re", 4}, {"last", 5}};
  for (size_t read_size : {1, 2, 3, 5, 64}) {
    CAPTURE(read_size);
    CHECK(ReadAllOf("a\n\nbc\r\nd\re\nlast", read_size) == expected);
  }
}

TEST_CASE("LineReader edge cases at the end of input") {
  CHECK(ReadAllOf("", 16).empty());
  CHECK(ReadAllOf("\n", 16) == Lines{{"", 1}});
  CHECK(ReadAllOf("x\n", 16) == Lines{{"x", 1}});
  CHECK(ReadAllOf("x\r\n", 16) == Lines{{"x", 1}});
  CHECK(ReadAllOf("x\r", 16) == Lines{{"x", 1}});
  CHECK(ReadAllOf("\r\n\r\n", 16) == Lines{{"", 1}, {"", 2}});
  CHECK(ReadAllOf("x\r\r\n", 16) == Lines{{"x\r", 1}});
  CHECK(ReadAllOf(std::string("a\0b\n", 4), 16) ==
        Lines{{std::string("a\0b", 3), 1}});
}

TEST_CASE("LineReader drops a byte order mark only at the start") {
  CHECK(ReadAllOf("\xEF\xBB\xBF{}\n\xEF\xBB\xBFx\n", 2) ==
        Lines{{"{}", 1}, {"\xEF\xBB\xBFx", 2}});
  CHECK(ReadAllOf("\xEF\xBB\xBF\r\n", 16) == Lines{{"", 1}});
  CHECK(ReadAllOf("\xEF\xBB", 16) == Lines{{"\xEF\xBB", 1}});
}

TEST_CASE("LineReader hands out a line only once it is complete") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  Fd read_end{fds[0]};
  Fd write_end{fds[1]};
  LineReader reader(read_end.fd);
  CHECK(reader.fd() == read_end.fd);
  std::string err;
  std::string_view line;
  uint64_t number = 0;

  CHECK_FALSE(reader.NextLine(&line, &number));
  WriteAll(write_end.fd, "abc");
  CHECK(reader.Fill(&err) == LineReader::ReadStatus::kData);
  CHECK_FALSE(reader.NextLine(&line, &number));

  WriteAll(write_end.fd, "def\ngh");
  CHECK(reader.Fill(&err) == LineReader::ReadStatus::kData);
  REQUIRE(reader.NextLine(&line, &number));
  CHECK(line == "abcdef");
  CHECK(number == 1);
  CHECK_FALSE(reader.NextLine(&line, &number));

  close(write_end.fd);
  write_end.fd = -1;
  CHECK(reader.Fill(&err) == LineReader::ReadStatus::kEof);
  REQUIRE(reader.NextLine(&line, &number));
  CHECK(line == "gh");
  CHECK(number == 2);
  CHECK_FALSE(reader.NextLine(&line, &number));
  CHECK(reader.Fill(&err) == LineReader::ReadStatus::kEof);
  CHECK_FALSE(reader.NextLine(&line, &number));
}

TEST_CASE("LineReader views from one Fill stay valid together") {
  Fd file{TempFileWith("one\ntwo\nthree\n")};
  LineReader reader(file.fd);
  std::string err;
  REQUIRE(reader.Fill(&err) == LineReader::ReadStatus::kData);
  std::vector<std::string_view> views;
  std::string_view line;
  uint64_t number;
  while (reader.NextLine(&line, &number)) views.push_back(line);
  CHECK(views == std::vector<std::string_view>{"one", "two", "three"});
}

TEST_CASE("LineReader returns kAgain on an empty non-blocking pipe") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  Fd read_end{fds[0]};
  Fd write_end{fds[1]};
  REQUIRE(fcntl(read_end.fd, F_SETFL, O_NONBLOCK) == 0);
  LineReader reader(read_end.fd);
  std::string err;
  CHECK(reader.Fill(&err) == LineReader::ReadStatus::kAgain);
  WriteAll(write_end.fd, "x\n");
  CHECK(reader.Fill(&err) == LineReader::ReadStatus::kData);
  std::string_view line;
  uint64_t number;
  REQUIRE(reader.NextLine(&line, &number));
  CHECK(line == "x");
  CHECK(reader.Fill(&err) == LineReader::ReadStatus::kAgain);
}

TEST_CASE("LineReader reports read errors with the system's message") {
  Fd dir{open(".", O_RDONLY | O_DIRECTORY)};
  REQUIRE(dir.fd >= 0);
  LineReader reader(dir.fd);
  std::string err;
  CHECK(reader.Fill(&err) == LineReader::ReadStatus::kError);
  CHECK(err == "Is a directory");
}

TEST_CASE("LineReader matches a reference split on random input") {
  std::mt19937 rng(7);
  std::string content;
  Lines expected;
  size_t longest = 0;
  for (uint64_t n = 1; n <= 2000; ++n) {
    // Mostly short lines, a few long ones.
    size_t length = rng() % 10 == 0 ? rng() % 3000 : rng() % 40;
    std::string line;
    for (size_t i = 0; i < length; ++i)
      line += static_cast<char>('a' + rng() % 26);
    longest = std::max(longest, length);
    content += line;
    content += rng() % 4 == 0 ? "\r\n" : "\n";
    expected.emplace_back(line, n);
  }
  for (size_t read_size : {1, 7, 100, 4096, 100000}) {
    CAPTURE(read_size);
    Fd file{TempFileWith(content)};
    LineReader reader(file.fd, read_size);
    CHECK(ReadAll(&reader) == expected);
    CHECK(reader.capacity() <= longest * 3 / 2 + 4 * read_size + 16);
  }
}

TEST_CASE("LineReader handles a huge line in memory close to its size") {
  const size_t kHuge = 48 * 1024 * 1024;
  std::string content(kHuge, 'x');
  content[kHuge / 2] = 'y';
  content += "\nshort\n";
  Fd file{TempFileWith(content)};
  content.clear();
  content.shrink_to_fit();
  LineReader reader(file.fd);
  std::string err;
  std::string_view line;
  uint64_t number;
  size_t got = 0;
  for (;;) {
    while (reader.NextLine(&line, &number)) {
      ++got;
      if (number == 1) {
        CHECK(line.size() == kHuge);
        CHECK(line[kHuge / 2] == 'y');
        CHECK(line.find('y') == kHuge / 2);
      } else {
        CHECK(line == "short");
      }
    }
    LineReader::ReadStatus status = reader.Fill(&err);
    REQUIRE(status != LineReader::ReadStatus::kError);
    if (status == LineReader::ReadStatus::kEof) break;
  }
  CHECK_FALSE(reader.NextLine(&line, &number));
  CHECK(got == 2);
  CHECK(reader.capacity() <= kHuge * 3 / 2 + 4 * LineReader::kDefaultReadSize);
}

TEST_CASE("LineReader reads many short lines") {
  std::string content;
  for (int i = 0; i < 500000; ++i) content += "k\n";
  Lines lines = ReadAllOf(content, 1000);
  REQUIRE(lines.size() == 500000);
  CHECK(lines.back() == std::pair<std::string, uint64_t>("k", 500000));
}

TEST_CASE("LineReader skips a line over the limit without holding it") {
  // Limit 100 bytes; reads of 7 bytes, so the long lines arrive in pieces.
  std::string long_line(1000, 'x');
  std::string content = "a\n" + long_line + "\n" + std::string(100, 'y') +
                        "\nb\n" + long_line;  // The last one has no '\n'.
  Fd file{TempFileWith(content)};
  LineReader reader(file.fd, 7, 100);
  std::vector<std::pair<std::string, bool>> got;
  std::vector<uint64_t> numbers;
  std::string err;
  std::string_view line;
  uint64_t number;
  for (bool eof = false; !eof;) {
    eof = reader.Fill(&err) == LineReader::ReadStatus::kEof;
    while (reader.NextLine(&line, &number)) {
      got.emplace_back(std::string(line), reader.too_long());
      numbers.push_back(number);
    }
    // Never more than the limit and a few reads, though lines are 1000.
    CHECK(reader.capacity() <= 100 * 3 / 2 + 4 * 7 + 16);
  }
  using Got = std::vector<std::pair<std::string, bool>>;
  CHECK(got == Got{{"a", false}, {"", true}, {std::string(100, 'y'), false},
                   {"b", false}, {"", true}});
  CHECK(numbers == std::vector<uint64_t>{1, 2, 3, 4, 5});
}

TEST_CASE("LineReader skips an over-long line that arrives in one read") {
  Fd file{TempFileWith(std::string(50, 'z') + "\nok\n")};
  LineReader reader(file.fd, LineReader::kDefaultReadSize, 10);
  Lines lines = ReadAll(&reader);
  CHECK(lines == Lines{{"", 1}, {"ok", 2}});
}
