// The interface through which the scheduler runs HTTP transfers
// concurrently; curl_transport.cc implements it with libcurl's multi
// interface, tests with a scripted fake.
#pragma once

#include <cstdint>

#include "transport/http.h"

class Transport {
 public:
  virtual ~Transport() = default;

  /// Starts `request`. `tag` comes back with its response.
  virtual void Start(uint64_t tag, HttpRequest request) = 0;

  /// Drives the transfers for at most `timeout_ms`, returning early when a
  /// transfer finishes or when `watch_fd` (if >= 0) becomes readable, which
  /// is reported in *fd_ready.
  virtual void Wait(int timeout_ms, int watch_fd, bool* fd_ready) = 0;

  /// Moves one finished transfer to *tag and *response. Returns false when
  /// none is waiting.
  virtual bool NextFinished(uint64_t* tag, HttpResponse* response) = 0;

  /// Transfers started and not yet handed out by NextFinished.
  virtual size_t active() const = 0;

  /// Abandons every transfer in progress; they are not reported.
  virtual void CancelAll() = 0;
};
