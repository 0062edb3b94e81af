// SIGINT and SIGTERM only set a flag that the event loop reads, so a run
// stops sending, lets requests in flight finish and writes what it has. A
// second signal kills at once. SIGPIPE is ignored: a closed stdout shows up
// as EPIPE from write(2), which ends output quietly.
#pragma once

/// Installs the handlers. Call once, early in main().
void InstallSignalHandlers();

/// The signal number received (SIGINT or SIGTERM), or 0.
int InterruptSignal();
