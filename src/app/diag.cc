#include "app/diag.h"

#include <cstdio>
#include <string>
#include <sys/ioctl.h>
#include <unistd.h>

namespace diag {
namespace {

bool quiet = false;
bool color = false;
bool status_shown = false;

// Carriage return, then erase to the end of the line: where the status
// line was is blank, and the cursor at its start.
constexpr std::string_view kEraseLine = "\r\x1b[K";

void Write(const std::string& text) {
  // One fwrite per message keeps lines whole when stderr is shared.
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

void Emit(std::string_view kind, std::string_view color_code,
          std::string_view message) {
  std::string line;
  if (status_shown) line += kEraseLine;
  status_shown = false;
  line += "embedpipe: ";
  if (color && !kind.empty()) {
    line += color_code;
    line += kind;
    line += "\x1b[0m";
  } else {
    line += kind;
  }
  line += message;
  line += '\n';
  Write(line);
}

size_t TerminalWidth() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

}  // namespace

void Error(std::string_view message) { Emit("error: ", "\x1b[1;31m", message); }
void Warning(std::string_view message) {
  Emit("warning: ", "\x1b[1;33m", message);
}
void Info(std::string_view message) {
  if (!quiet) Emit("", "", message);
}
void SetQuiet(bool q) { quiet = q; }
void SetColor(bool c) { color = c; }

void Status(std::string_view text) {
  std::string line(kEraseLine);
  line += "embedpipe: ";
  line += text;
  // The line is ASCII; one column short of the width, or the cursor would
  // wrap to a new line and the next redraw would not cover this one.
  size_t width = TerminalWidth();
  if (line.size() - kEraseLine.size() >= width)
    line.resize(kEraseLine.size() + width - 1);
  Write(line);
  status_shown = true;
}

void ClearStatus() {
  if (!status_shown) return;
  Write(std::string(kEraseLine));
  status_shown = false;
}

}  // namespace diag
