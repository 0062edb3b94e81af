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

/// The status of a run that went wrong in more than one way: the more
/// severe of a and b. Output not written (4) over the API stopping the run
/// (3) over an interrupt (130) over rejected records (2): the status names
/// what most needs the user, and a script that reruns on 130 or reads the
/// errors on 2 must not take a run with lost output for one of those.
inline int MoreSevere(int a, int b) {
  auto rank = [](int status) {
    switch (status) {
      case kExitSuccess: return 0;
      case kExitRejected: return 1;
      case kExitInterrupted: return 2;
      case kExitFatalApi: return 3;
      case kExitIoError: return 4;
      default: return 5;  // kExitUsage: nothing ran
    }
  };
  return rank(a) >= rank(b) ? a : b;
}
