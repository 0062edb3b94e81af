// Diagnostics on stderr: one place that prefixes messages with the program
// name, so stdout stays data only.
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

}  // namespace diag
