// Diagnostics on stderr: one place that prefixes messages with the program
// name, so stdout stays data only, and that keeps the terminal's progress
// line (Status) from tangling with messages.
#pragma once

#include <string_view>

#include <fmt/core.h>

namespace diag {

/// Writes "embedpipe: error: <message>\n" to stderr.
void Error(std::string_view message);
/// Writes "embedpipe: warning: <message>\n" to stderr.
void Warning(std::string_view message);
/// Writes "embedpipe: <message>\n" to stderr unless quiet mode is on.
void Info(std::string_view message);

/// Quiet mode silences Info (errors and warnings still show).
void SetQuiet(bool quiet);

/// How stderr is shown. `color`: "error:" and "warning:" in color (the
/// caller decides: a terminal, and NO_COLOR unset).
void SetColor(bool color);

/// Shows "embedpipe: <line>" as the status line: redrawn in place, cut to
/// the terminal's width. Only for a terminal. A message written meanwhile
/// takes the line; the next Status() draws below it.
void Status(std::string_view line);

/// Erases the status line, if one is shown.
void ClearStatus();

}  // namespace diag
