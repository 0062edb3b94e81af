// Buffered output to a file descriptor. A reader that goes away (EPIPE) is a
// normal end of output, not an error: `embedpipe | head` ends quietly.
#pragma once

#include <string>

class FdOutput {
 public:
  explicit FdOutput(int fd) : fd_(fd) {}

  /// The buffer to append whole lines to; call MaybeFlush() after.
  std::string& buffer() { return buffer_; }

  /// Writes the buffer out once it is large. False on a write error.
  bool MaybeFlush() { return buffer_.size() < kFlushBytes || Flush(); }

  /// Writes everything buffered. False on a write error (broken_pipe()
  /// tells whether it was EPIPE); *err is not used for EPIPE.
  bool Flush();

  bool broken_pipe() const { return broken_pipe_; }
  const std::string& error() const { return error_; }

 private:
  static constexpr size_t kFlushBytes = 1 << 18;
  int fd_;
  std::string buffer_;
  bool broken_pipe_ = false;
  std::string error_;
};
