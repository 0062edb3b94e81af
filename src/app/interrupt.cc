#include "app/interrupt.h"

#include <csignal>

namespace {

volatile sig_atomic_t received = 0;

void OnSignal(int sig) { received = sig; }

}  // namespace

void InstallSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  // The handler runs once; the default action is back for the next signal.
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int InterruptSignal() { return received; }
