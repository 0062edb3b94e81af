// Fuzz target: the JSONL record reader. The input is a byte stream that the
// LineReader splits into lines, a few bytes a read, and the RecordParser
// parses each line, as the pipeline does with stdin. Whatever the bytes, a
// line is parsed or refused with a reason, and a line over the limit is
// handed out as too long, never in part.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "input/line_reader.h"
#include "input/record_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the read size and the configuration, so small
  // reads that split lines and multi-byte sequences are covered too.
  uint8_t mode = data[0];
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);

  int fd = memfd_create("fuzz", 0);
  if (fd < 0) std::abort();
  if (write(fd, stream.data(), stream.size()) !=
      static_cast<ssize_t>(stream.size()))
    std::abort();
  lseek(fd, 0, SEEK_SET);

  static RecordParser* parsers[2] = {nullptr, nullptr};
  if (!parsers[0]) {
    std::string err;
    parsers[0] = new RecordParser();
    parsers[1] = new RecordParser();
    RecordParserConfig nested;
    nested.id_field = "meta.id";
    nested.text_field = "body.text";
    nested.carry_fields = {"a", "meta.tags", "x.y.z"};
    nested.require_id = false;
    if (!parsers[1]->Init(nested, &err)) std::abort();
  }
  RecordParser& parser = *parsers[mode & 1];

  // Bit 7: a line limit of 40 bytes, so skipping over-long lines is
  // covered too.
  size_t max_line = mode & 0x80 ? 40 : LineReader::kMaxLineBytes;
  LineReader reader(fd, 1 + (mode >> 1) % 64, max_line);
  ParsedRecord record;
  std::string field, reason, err;
  std::string_view line;
  uint64_t number = 0, last = 0;
  for (;;) {
    LineReader::ReadStatus st = reader.Fill(&err);
    if (st == LineReader::ReadStatus::kError) std::abort();
    // After kEof the last line, even without its '\n', is handed out.
    while (reader.NextLine(&line, &number)) {
      if (number != last + 1) std::abort();  // Lines are counted one by one.
      last = number;
      if (line.size() > max_line || (reader.too_long() && !line.empty()))
        std::abort();
      if (reader.too_long()) continue;
      field.clear();
      reason.clear();
      if (parser.Parse(line, &record, &field, &reason) == ParseStatus::kError &&
          reason.empty())
        std::abort();
    }
    if (st == LineReader::ReadStatus::kEof) break;
  }
  close(fd);
  return 0;
}
