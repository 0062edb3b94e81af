// Pure decisions about a finished request: whether it succeeded, may be
// retried, rejected its records, or must stop the run; and how long to wait
// before the next attempt (the server's hint first, else capped exponential
// backoff with full jitter).
#pragma once

#include <cstdint>
#include <string_view>

#include "http.h"

enum class Outcome {
  kOk,        ///< 2xx: decode it.
  kRetry,     ///< Transient: network error, timeout, 408, 409, 429, 5xx.
  kRejected,  ///< The request itself is refused (other 4xx): not retried.
  kFatal,     ///< No request can succeed: 401, 403, 404, 429 insufficient_quota.
};

/// Classifies a finished transfer. `error_code` is the provider's error code
/// read from the body (e.g. "insufficient_quota"), empty if none.
Outcome Classify(const HttpResponse& response, std::string_view error_code);

struct BackoffConfig {
  int64_t base_ms = 500;       ///< Upper bound of the first backoff.
  int64_t max_wait_ms = 60000; ///< No single wait is longer, hint or not.
};

/// The server's requested delay in milliseconds, or -1 if it gave none:
/// retry-after-ms, then retry-after (seconds or HTTP date, relative to
/// `now_unix_s`).
int64_t ServerDelayMs(const HttpResponse& response, int64_t now_unix_s);

/// Delay before the next attempt after `attempts` failed ones (>= 1): the
/// server's hint if any, else a uniformly random wait in
/// [0, base * 2^(attempts-1)] ("full jitter") drawn from `random`; both
/// capped at max_wait_ms.
int64_t RetryDelayMs(const HttpResponse& response, int attempts,
                     const BackoffConfig& config, uint64_t random,
                     int64_t now_unix_s);
