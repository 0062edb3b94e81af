// Fuzz target: retry-header parsing. The input is split into header values
// (retry-after-ms, retry-after, x-ratelimit-*) and an error body; whatever
// they say, the wait is -1 or within [0, max_wait], and durations parse
// without overflow.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "transport/retry_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const kNames[] = {
      "retry-after-ms",
      "retry-after",
      "x-ratelimit-reset-requests",
      "x-ratelimit-reset-tokens",
      "x-ratelimit-remaining-requests",
      "x-ratelimit-remaining-tokens",
      "x-should-retry",
  };
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  HttpResponse response;
  response.status = data[0] & 1 ? 429 : 500 + data[0] % 8;
  // Fields are separated by '\n': one per header, then the body.
  size_t field = 0;
  while (field < std::size(kNames)) {
    size_t nl = in.find('\n');
    if (nl == std::string_view::npos) break;
    response.headers.emplace_back(kNames[field++], std::string(in.substr(0, nl)));
    in.remove_prefix(nl + 1);
  }
  response.body = std::string(in);

  int64_t ms = 0;
  if (ParseDurationMs(response.body, &ms) && ms < 0) std::abort();
  int64_t now = 1700000000;
  int64_t d = ServerDelayMs(response, now);
  if (d < -1) std::abort();
  if (BodyHintMs(response.body) < -1) std::abort();
  if (RateLimitResetMs(response) < -1) std::abort();
  if (HintedDelayMs(response, now) < -1) std::abort();
  BackoffConfig config;
  int attempts = 1 + data[0] % 40;
  int64_t wait = RetryDelayMs(response, attempts, config, 0xfeedfacecafebeefull, now);
  if (wait < 0 || wait > config.max_wait_ms) std::abort();
  Outcome o = Classify(response, response.body, response.body);
  (void)o;
  return 0;
}
