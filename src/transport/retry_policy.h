// Pure decisions about a finished request: whether it succeeded, may be
// retried, rejected its records, or must stop the run; and how long to wait
// before the next attempt (the server's hints in a fixed order, else capped
// exponential backoff with full jitter).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "transport/http.h"

enum class Outcome {
  kOk,        ///< 2xx: decode it.
  kRetry,     ///< Transient: network error, timeout, 408, 409, 429, 5xx,
              ///< or any status with "x-should-retry: true" (but kFatal's).
  kRejected,  ///< The request itself is refused (other 4xx): not retried;
              ///< a batch of several records is bisected.
  kTooLarge,  ///< 429 "Request too large": more tokens than the whole
              ///< per-minute budget, so waiting never helps; split it.
  kGiveUp,    ///< Would be retried, but the server sent
              ///< "x-should-retry: false": the batch fails now.
  kFatal,     ///< No request can succeed: 401, 403, 404, a 429 with
              ///< code insufficient_quota, a 400 with API_KEY_INVALID, and
              ///< any redirect (3xx), which is never followed (see
              ///< RedirectMessage).
};

/// Classifies a finished transfer. `error_code` and `error_message` are the
/// provider's, read from the body (e.g. "insufficient_quota"), empty if none.
/// An "x-should-retry" header overrides the status, except that a fatal
/// status stays fatal: a bad key or an exhausted quota does not heal within
/// a run, and stopping at once is the documented contract.
Outcome Classify(const HttpResponse& response, std::string_view error_code,
                 std::string_view error_message);

/// A server's refusal of one input as longer than its model's window.
struct ContextRefusal {
  int64_t index = -1;       ///< The input it names ("input[3]"), or -1.
  int64_t max_tokens = -1;  ///< The limit it states, or -1.
};

/// True when an error says an input is over the model's context length:
/// code context_length_exceeded, or a message holding "maximum context
/// length is N tokens" (OpenAI's "Invalid 'input[3]': maximum context length
/// is 8192 tokens.", and the older "This model's maximum context length is
/// 8192 tokens, however you requested ..." that Azure and OpenAI-compatible
/// servers still send). Fills *out with what the message names.
bool ParseContextRefusal(std::string_view error_code,
                         std::string_view error_message, ContextRefusal* out);

/// What a redirect (3xx) means to the user: the server moved the API to the
/// Location it names, which embedpipe does not follow, so that the key is
/// only ever sent to the base URL the user gave.
std::string RedirectMessage(const HttpResponse& response);

struct BackoffConfig {
  int64_t base_ms = 500;       ///< Upper bound of the first backoff.
  int64_t max_wait_ms = 60000; ///< No single wait is longer, hint or not.
};

/// Parses a Go-style duration as OpenAI writes them ("20ms", "1.2s", "6m0s",
/// "1h2m3.5s"; units h, m, s, ms, us, µs, ns) into milliseconds, rounded up
/// so a wait is never shorter than asked. False if `s` is not exactly one.
bool ParseDurationMs(std::string_view s, int64_t* ms);

/// The server's requested delay in milliseconds, or -1 if it gave none:
/// retry-after-ms, then retry-after (seconds, possibly fractional, or an
/// HTTP date relative to `now_unix_s`).
int64_t ServerDelayMs(const HttpResponse& response, int64_t now_unix_s);

/// The wait named in an error body's text, or -1: OpenAI's "Please try
/// again in 1.2s." (any Go duration), or Azure's "retry after 2 seconds".
int64_t BodyHintMs(std::string_view body);

/// The wait implied by the x-ratelimit-reset-requests/-tokens headers, or
/// -1: the reset of each budget whose x-ratelimit-remaining-* is 0 (the
/// longest if both are), else of the token budget, which is what runs out
/// for embeddings. A reset is the time until the budget is full again, so
/// this is a generous wait; it comes last among the hints for that reason.
int64_t RateLimitResetMs(const HttpResponse& response);

/// The wait the server asks for, or -1 if none, in this order: retry-after-ms,
/// retry-after; then, for a 429 only, the body's "try again in" hint and the
/// x-ratelimit-reset-* headers (on other statuses those headers describe the
/// budgets, not this failure).
int64_t HintedDelayMs(const HttpResponse& response, int64_t now_unix_s);

/// Delay before the next attempt after `attempts` failed ones (>= 1): the
/// server's hint (HintedDelayMs) if any, else a uniformly random wait in
/// [0, base * 2^(attempts-1)] ("full jitter") drawn from `random`; both
/// capped at max_wait_ms.
int64_t RetryDelayMs(const HttpResponse& response, int attempts,
                     const BackoffConfig& config, uint64_t random,
                     int64_t now_unix_s);
