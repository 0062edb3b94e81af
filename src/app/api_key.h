// Where the API key comes from: a file (--api-key-file) or an environment
// variable (--api-key-env), never the command line, where other users see
// it in ps. Reading it from the environment also wipes it from there.
#pragma once

#include <string>

/// Fills *key from `file` when it is not empty, else from the environment
/// variable `env_name`:
///  - from a file: its first line without surrounding white space; the file
///    must hold a key. *warning is set (else cleared) when group or others
///    may read the file.
///  - from the environment: the variable's value, or empty when it is unset.
///    The value's bytes are then overwritten with zeros in place and the
///    variable unset, so that /proc/PID/environ and the environment block
///    of a core dump no longer hold it (nothing embedpipe runs needs it).
/// Returns false and fills *err when the file cannot be read or is empty.
bool ReadApiKey(const std::string& file, const std::string& env_name,
                std::string* key, std::string* warning, std::string* err);
