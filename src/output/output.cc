#include "output/output.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>

bool FdOutput::Flush() {
  if (!error_.empty() || broken_pipe_) return false;
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) broken_pipe_ = true;
      else error_ = std::strerror(errno);
      buffer_.clear();
      return false;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
  return true;
}
