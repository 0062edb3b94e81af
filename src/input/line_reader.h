// Splits the byte stream of one file descriptor into lines, one read(2) at a
// time, so a single-threaded event loop can poll the descriptor and never
// block on it. A line longer than a limit (64 MiB) is skipped without being
// held in memory, so memory follows the longest line up to that limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

class LineReader {
 public:
  enum class ReadStatus {
    /// Bytes were read; complete lines may now be available.
    kData,
    /// A non-blocking descriptor had nothing yet (EAGAIN): poll again.
    kAgain,
    /// End of input; the last line, if unterminated, is now available.
    kEof,
    /// read(2) failed; *err holds the system's message.
    kError,
  };

  /// Reads `fd`, which the caller keeps owning and closes. `read_size` is the
  /// most one Fill() asks read(2) for (tests make it tiny); a line of more
  /// than `max_line` bytes (its terminator not counted) is dropped as it
  /// arrives and handed out as too_long().
  explicit LineReader(int fd, size_t read_size = kDefaultReadSize,
                      size_t max_line = kMaxLineBytes);

  /// The descriptor, for the caller's poll set.
  int fd() const { return fd_; }

  /// Performs exactly one read(2) (retrying only on EINTR), appending to the
  /// buffer. Call it when poll reports the descriptor readable, after
  /// NextLine() has returned false. Invalidates the views NextLine() handed
  /// out. Once it has returned kEof it returns kEof again without reading.
  /// On kError fills *err with strerror(errno).
  ReadStatus Fill(std::string* err);

  /// Hands out the next complete line, or returns false when the buffer holds
  /// none (Fill() for more). A line ends at '\n'; at end of input a final
  /// line without '\n' is a line too. The '\n' and one '\r' just before the
  /// line's end (CRLF files) are not part of *line. A UTF-8 byte order mark
  /// at the very start of the stream is dropped. *line_number is 1-based and
  /// counts every line, blank ones included. *line stays valid until the next
  /// Fill(). A line over the limit is handed out too, once it has ended,
  /// as an empty *line with too_long() true.
  bool NextLine(std::string_view* line, uint64_t* line_number);

  /// Whether the line NextLine() last handed out was longer than the limit
  /// (its bytes were dropped).
  bool too_long() const { return too_long_; }

  /// Bytes currently allocated for the buffer: about 1.5 times the longest
  /// line (at most the limit) plus a few reads, however long the input.
  size_t capacity() const { return capacity_; }

  static constexpr size_t kDefaultReadSize = 128 * 1024;
  /// A record this long is far beyond any text worth embedding (64 MiB is
  /// some 16 million tokens), and holding longer ones would let one line
  /// of a hostile or broken input take any amount of memory.
  static constexpr size_t kMaxLineBytes = 64u << 20;

 private:
  /// Makes at least read_size_ bytes free after end_; false if out of memory.
  bool MakeRoom();

  struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
  };

  int fd_;
  size_t read_size_;
  size_t max_line_;
  // realloc rather than new[], so that glibc can grow a huge (mmapped)
  // buffer with mremap instead of copying it.
  std::unique_ptr<char, FreeDeleter> buf_;
  size_t capacity_ = 0;
  size_t begin_ = 0;  // First byte not yet handed out.
  size_t scan_ = 0;   // [begin_, scan_) is known to hold no '\n'.
  size_t end_ = 0;    // End of the bytes read.
  bool eof_ = false;
  bool skipping_ = false;  // Dropping the bytes of a line over max_line_.
  bool too_long_ = false;
  uint64_t line_number_ = 0;
};
