#include "diag.h"

#include <cstdio>
#include <string>

namespace diag {
namespace {

bool quiet = false;

void Emit(std::string_view kind, std::string_view message) {
  std::string line = "embedpipe: ";
  line += kind;
  line += message;
  line += '\n';
  // One fwrite per message keeps lines whole when stderr is shared.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

void Error(std::string_view message) { Emit("error: ", message); }
void Warning(std::string_view message) { Emit("warning: ", message); }
void Info(std::string_view message) {
  if (!quiet) Emit("", message);
}
void SetQuiet(bool q) { quiet = q; }

}  // namespace diag
