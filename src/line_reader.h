// Splits the byte stream of one file descriptor into lines, one read(2) at a
// time, so a single-threaded event loop can poll the descriptor and never
// block on it. Lines may be of any length; memory follows the longest line.
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
  /// most one Fill() asks read(2) for (tests make it tiny).
  explicit LineReader(int fd, size_t read_size = kDefaultReadSize);

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
  /// Fill().
  bool NextLine(std::string_view* line, uint64_t* line_number);

  /// Bytes currently allocated for the buffer: about 1.5 times the longest
  /// line plus a few reads, however long the input.
  size_t capacity() const { return capacity_; }

  static constexpr size_t kDefaultReadSize = 128 * 1024;

 private:
  /// Makes at least read_size_ bytes free after end_; false if out of memory.
  bool MakeRoom();

  struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
  };

  int fd_;
  size_t read_size_;
  // realloc rather than new[], so that glibc can grow a huge (mmapped)
  // buffer with mremap instead of copying it.
  std::unique_ptr<char, FreeDeleter> buf_;
  size_t capacity_ = 0;
  size_t begin_ = 0;  // First byte not yet handed out.
  size_t scan_ = 0;   // [begin_, scan_) is known to hold no '\n'.
  size_t end_ = 0;    // End of the bytes read.
  bool eof_ = false;
  uint64_t line_number_ = 0;
};
