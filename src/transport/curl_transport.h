// Transport on one libcurl multi handle: every transfer runs concurrently on
// a shared connection cache (HTTP/2 multiplexing where the server offers it,
// keep-alive otherwise), driven by poll, never by a thread per request.
#pragma once

#include <memory>
#include <string>

#include "transport/transport.h"

struct CurlTransportConfig {
  long connect_timeout_ms = 10000;
  long timeout_ms = 300000;        ///< Whole transfer.
  /// A transfer with no byte sent or received for this long (a hung or
  /// stalled connection, or a server silent that long before answering) is
  /// given up, and the scheduler retries it.
  long stall_timeout_s = 60;
  size_t max_connections = 8;      ///< Kept open between transfers.
  std::string user_agent;
  /// CA certificates (PEM) to verify servers with instead of the system's;
  /// empty: the system's.
  std::string ca_file;
};

/// Returns a transport, or null with *err set when libcurl cannot start.
std::unique_ptr<Transport> NewCurlTransport(const CurlTransportConfig& config,
                                            std::string* err);
