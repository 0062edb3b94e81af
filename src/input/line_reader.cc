#include "input/line_reader.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

LineReader::LineReader(int fd, size_t read_size, size_t max_line)
    : fd_(fd), read_size_(std::max<size_t>(read_size, 1)), max_line_(max_line) {}

bool LineReader::MakeRoom() {
  if (capacity_ - end_ >= read_size_) return true;
  size_t live = end_ - begin_;
  if (begin_ > 0) {
    memmove(buf_.get(), buf_.get() + begin_, live);
    scan_ -= begin_;
    end_ = live;
    begin_ = 0;
  }
  // Leaving free space of at least half the live bytes puts the next call
  // that moves or copies anything at least that many bytes of input away, so
  // the total work stays linear in the input even for one huge line.
  size_t want = live + std::max(live / 2, 2 * read_size_);
  if (capacity_ >= want) return true;
  char* grown = static_cast<char*>(realloc(buf_.get(), want));
  if (grown == nullptr) return false;
  buf_.release();
  buf_.reset(grown);
  capacity_ = want;
  return true;
}

LineReader::ReadStatus LineReader::Fill(std::string* err) {
  if (eof_) return ReadStatus::kEof;
  if (!MakeRoom()) {
    *err = strerror(ENOMEM);
    return ReadStatus::kError;
  }
  ssize_t n;
  do {
    n = read(fd_, buf_.get() + end_, read_size_);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return ReadStatus::kAgain;
    *err = strerror(errno);
    return ReadStatus::kError;
  }
  if (n == 0) {
    eof_ = true;
    return ReadStatus::kEof;
  }
  end_ += static_cast<size_t>(n);
  return ReadStatus::kData;
}

bool LineReader::NextLine(std::string_view* line, uint64_t* line_number) {
  too_long_ = false;
  // A line being skipped still ends at end of input, buffered bytes or not.
  if (begin_ == end_ && !(skipping_ && eof_)) return false;
  const char* base = buf_.get();
  size_t stop;  // Where the line's terminator is, or end_ at end of input.
  const void* newline =
      begin_ < end_ ? memchr(base + scan_, '\n', end_ - scan_) : nullptr;
  if (newline) {
    stop = static_cast<size_t>(static_cast<const char*>(newline) - base);
    scan_ = stop + 1;
  } else {
    scan_ = end_;
    if (!eof_) {
      if (end_ - begin_ > max_line_) {
        // Over the limit and not ended yet: drop what is buffered; the
        // rest of the line is dropped as it arrives, up to its '\n'.
        skipping_ = true;
        begin_ = end_;
      }
      return false;
    }
    stop = end_;
  }
  size_t start = begin_;
  begin_ = scan_;
  if (skipping_ || stop - start > max_line_) {
    skipping_ = false;
    too_long_ = true;
    *line = std::string_view();
    *line_number = ++line_number_;
    return true;
  }
  if (line_number_ == 0 && stop - start >= 3 &&
      memcmp(base + start, "\xEF\xBB\xBF", 3) == 0)
    start += 3;
  if (stop > start && base[stop - 1] == '\r') --stop;
  *line = std::string_view(base + start, stop - start);
  *line_number = ++line_number_;
  return true;
}
