// Process exit codes; the same values as the EXIT STATUS section of
// man/embedpipe.1 and the README.
#pragma once

enum ExitStatus {
  kExitSuccess = 0,      ///< Every record embedded and written.
  kExitUsage = 1,        ///< Bad flags, configuration, or an unreadable input file.
  kExitRejected = 2,     ///< Finished, but some records were rejected (errors output).
  kExitFatalApi = 3,     ///< Stopped by an error no request can get past
                         ///< (authentication, quota, unknown model).
  kExitIoError = 4,      ///< Output could not be written (disk full, ...).
  kExitInterrupted = 130 ///< SIGINT or SIGTERM; finished work was written.
};
