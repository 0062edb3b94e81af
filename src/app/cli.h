// The command line: flags, their help text and validation, into Options.
// The only file that includes CLI11 (and catches its exceptions).
#pragma once

#include "app/options.h"

/// Parses argv into *options. Returns false when the process should exit
/// right away with *exit_code: after --help or --version (0), or after a
/// usage error, already reported on stderr (1).
bool ParseCommandLine(int argc, const char* const* argv, Options* options,
                      int* exit_code);
