// Files beside the checkpoint that hold the input's texts or their vectors
// (the Batch API's upload, result and spill files, its job-id sidecar): made
// as the journal is, readable by the user alone, and written in full.
#pragma once

#include <string>
#include <string_view>

/// Opens `path` for writing, emptied, with mode 0600 even when it existed
/// with another (O_TRUNC keeps a stale file's mode); never through a
/// symbolic link. -1, with errno, on failure.
int OpenPrivateFile(const std::string& path);

/// Writes all of `data` to `fd`, going on after EINTR and short writes.
/// False, with errno (ENOSPC for a write that wrote nothing), on failure.
bool WriteAll(int fd, std::string_view data);
