#include "retry_policy.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <string>

Outcome Classify(const HttpResponse& response, std::string_view error_code) {
  long s = response.status;
  if (s == 0) return Outcome::kRetry;  // no response: connection, timeout
  if (s >= 200 && s < 300) return Outcome::kOk;
  if (s == 429) {
    return error_code == "insufficient_quota" ? Outcome::kFatal
                                              : Outcome::kRetry;
  }
  if (s == 408 || s == 409 || s >= 500) return Outcome::kRetry;
  if (s == 401 || s == 403 || s == 404) return Outcome::kFatal;
  return Outcome::kRejected;
}

namespace {

bool ParseInt(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && *out >= 0;
}

}  // namespace

int64_t ServerDelayMs(const HttpResponse& response, int64_t now_unix_s) {
  int64_t v;
  if (const std::string* ms = response.Header("retry-after-ms");
      ms && ParseInt(*ms, &v))
    return v;
  const std::string* ra = response.Header("retry-after");
  if (!ra) return -1;
  if (ParseInt(*ra, &v)) return v * 1000;
  // An HTTP date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  const char* end = strptime(ra->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return -1;
  int64_t at = timegm(&tm);
  return std::max<int64_t>(0, at - now_unix_s) * 1000;
}

int64_t RetryDelayMs(const HttpResponse& response, int attempts,
                     const BackoffConfig& config, uint64_t random,
                     int64_t now_unix_s) {
  int64_t hint = ServerDelayMs(response, now_unix_s);
  if (hint >= 0) return std::min(hint, config.max_wait_ms);
  int shift = std::clamp(attempts - 1, 0, 30);
  int64_t ceiling = std::min(config.base_ms << shift, config.max_wait_ms);
  return static_cast<int64_t>(random % static_cast<uint64_t>(ceiling + 1));
}
