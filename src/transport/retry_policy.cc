#include "transport/retry_policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <string>

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ParseInt(std::string_view s, int64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && *out >= 0;
}

// A non-negative decimal number ("3", "0.25"), as some servers send in
// retry-after-ms and retry-after.
bool ParseNumber(std::string_view s, double* out) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0])))
    return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out,
                                   std::chars_format::fixed);
  return ec == std::errc() && end == s.data() + s.size() &&
         std::isfinite(*out) && *out >= 0;
}

// A header value shown in a message: printable ASCII only (the server
// chose the bytes; a terminal must not interpret them), at most `max`.
std::string Printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max))
    out += c >= 0x20 && c < 0x7f ? c : '?';
  if (s.size() > max) out += "...";
  return out;
}

// Reads the decimal digits (at most 9) at the start of `s` into *out;
// returns how many it took, 0 if none.
size_t ParseLeadingInt(std::string_view s, int64_t* out) {
  size_t n = 0;
  while (n < s.size() && n < 9 &&
         std::isdigit(static_cast<unsigned char>(s[n])))
    ++n;
  return n > 0 && ParseInt(s.substr(0, n), out) ? n : 0;
}

int64_t CeilToMs(double ms) {
  // Anything over a day is as good as "never" and must not overflow.
  return static_cast<int64_t>(std::ceil(std::min(ms, 86400000.0)));
}

// Parses the Go duration at the start of `s`; returns how many characters
// it took (0 if none starts there) and sets *ms.
size_t ParseDurationPrefix(std::string_view s, int64_t* ms) {
  struct Unit {
    std::string_view name;
    uint64_t ns;
  };
  // Longest names first, so "ms" is not read as "m".
  static constexpr Unit kUnits[] = {
      {"ns", 1},          {"us", 1000},        {"\xC2\xB5s", 1000},
      {"\xCE\xBCs", 1000}, {"ms", 1000000},     {"s", 1000000000},
      {"m", 60000000000}, {"h", 3600000000000},
  };
  // A ceiling that keeps the sum far from overflow: a day, in ns.
  constexpr unsigned __int128 kMaxNs = 86400ull * 1000000000ull;
  unsigned __int128 total = 0;
  size_t i = 0;
  size_t parsed = 0;  // End of the last complete number+unit.
  while (i < s.size()) {
    size_t start = i;
    unsigned __int128 whole = 0, frac = 0, scale = 1;
    size_t digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (whole < kMaxNs)
        whole = whole * 10 + static_cast<unsigned>(s[i] - '0');
      ++i, ++digits;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        if (scale < 1000000000000ull) {  // finer digits change nothing
          frac = frac * 10 + static_cast<unsigned>(s[i] - '0');
          scale *= 10;
        }
        ++i, ++digits;
      }
    }
    if (digits == 0) break;
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (s.substr(i, u.name.size()) == u.name) {
        unit = &u;
        break;
      }
    }
    if (!unit) {
      i = start;
      break;
    }
    i += unit->name.size();
    total += whole * unit->ns + (frac * unit->ns + scale - 1) / scale;
    if (total > kMaxNs) total = kMaxNs;
    parsed = i;
  }
  if (parsed == 0) return 0;
  *ms = static_cast<int64_t>((total + 999999) / 1000000);
  return parsed;
}

}  // namespace

Outcome Classify(const HttpResponse& response, std::string_view error_code,
                 std::string_view error_message) {
  long s = response.status;
  if (s == 0) return Outcome::kRetry;  // no response: connection, timeout
  if (s >= 200 && s < 300) return Outcome::kOk;
  if (s == 429 && error_code == "insufficient_quota") return Outcome::kFatal;
  if (s == 401 || s == 403 || s == 404) return Outcome::kFatal;
  // Google answers a bad key with a 400 whose reason says so.
  if (s == 400 && error_code == "API_KEY_INVALID") return Outcome::kFatal;
  // Following a redirect would send the key wherever the server says.
  if (s >= 300 && s < 400) return Outcome::kFatal;
  // OpenAI's answer to a single request bigger than the tokens-per-minute
  // limit: the same request would be refused forever.
  if (s == 429 && error_message.substr(0, 17) == "Request too large")
    return Outcome::kTooLarge;
  Outcome base = (s == 408 || s == 409 || s == 429 || s >= 500)
                     ? Outcome::kRetry
                     : Outcome::kRejected;
  if (const std::string* should = response.Header("x-should-retry")) {
    if (EqualsIgnoreCase(*should, "true")) return Outcome::kRetry;
    if (EqualsIgnoreCase(*should, "false") && base == Outcome::kRetry)
      return Outcome::kGiveUp;
  }
  return base;
}

bool ParseContextRefusal(std::string_view error_code,
                         std::string_view error_message, ContextRefusal* out) {
  constexpr std::string_view kLimit = "maximum context length is ";
  size_t at = error_message.find(kLimit);
  if (error_code != "context_length_exceeded" && at == std::string_view::npos)
    return false;
  *out = ContextRefusal();
  if (at != std::string_view::npos &&
      ParseLeadingInt(error_message.substr(at + kLimit.size()),
                      &out->max_tokens) == 0)
    out->max_tokens = -1;
  constexpr std::string_view kInput = "input[";
  if (size_t in = error_message.find(kInput); in != std::string_view::npos) {
    std::string_view rest = error_message.substr(in + kInput.size());
    size_t n = ParseLeadingInt(rest, &out->index);
    if (n == 0 || rest.substr(n, 1) != "]") out->index = -1;
  }
  return true;
}

std::string RedirectMessage(const HttpResponse& response) {
  const std::string* location = response.Header("location");
  std::string to = location && !location->empty()
                       ? "to \"" + Printable(*location, 200) + "\""
                       : std::string("without a Location");
  return "the server redirects " + to +
         "; redirects are not followed, so that the API key goes only to "
         "--base-url: set --base-url to the API's address";
}

bool ParseDurationMs(std::string_view s, int64_t* ms) {
  if (s == "0") {  // Go writes a zero duration as "0s", but accepts "0"
    *ms = 0;
    return true;
  }
  int64_t v;
  if (ParseDurationPrefix(s, &v) != s.size() || s.empty()) return false;
  *ms = v;
  return true;
}

int64_t ServerDelayMs(const HttpResponse& response, int64_t now_unix_s) {
  double v;
  if (const std::string* ms = response.Header("retry-after-ms");
      ms && ParseNumber(*ms, &v))
    return CeilToMs(v);
  const std::string* ra = response.Header("retry-after");
  if (!ra) return -1;
  if (ParseNumber(*ra, &v)) return CeilToMs(v * 1000);
  // An HTTP date, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  std::tm tm{};
  const char* end = strptime(ra->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return -1;
  int64_t at = timegm(&tm);
  return std::max<int64_t>(0, at - now_unix_s) * 1000;
}

int64_t BodyHintMs(std::string_view body) {
  constexpr std::string_view kTryAgain = "try again in ";
  if (size_t at = body.find(kTryAgain); at != std::string_view::npos) {
    int64_t ms;
    if (ParseDurationPrefix(body.substr(at + kTryAgain.size()), &ms) > 0)
      return ms;
  }
  constexpr std::string_view kRetryAfter = "retry after ";
  if (size_t at = body.find(kRetryAfter); at != std::string_view::npos) {
    std::string_view rest = body.substr(at + kRetryAfter.size());
    int64_t seconds;
    size_t n = ParseLeadingInt(rest, &seconds);
    if (n > 0 && rest.substr(n, 7) == " second") return seconds * 1000;
  }
  return -1;
}

int64_t RateLimitResetMs(const HttpResponse& response) {
  auto reset = [&](std::string_view budget, bool* exhausted) -> int64_t {
    std::string name = "x-ratelimit-remaining-" + std::string(budget);
    int64_t remaining = -1;
    if (const std::string* r = response.Header(name)) ParseInt(*r, &remaining);
    *exhausted = remaining == 0;
    name = "x-ratelimit-reset-" + std::string(budget);
    int64_t ms;
    const std::string* v = response.Header(name);
    return v && ParseDurationMs(*v, &ms) ? ms : -1;
  };
  bool requests_out, tokens_out;
  int64_t requests = reset("requests", &requests_out);
  int64_t tokens = reset("tokens", &tokens_out);
  int64_t best = -1;
  if (requests_out) best = std::max(best, requests);
  if (tokens_out) best = std::max(best, tokens);
  return best >= 0 ? best : tokens;
}

int64_t HintedDelayMs(const HttpResponse& response, int64_t now_unix_s) {
  int64_t hint = ServerDelayMs(response, now_unix_s);
  if (hint >= 0 || response.status != 429) return hint;
  hint = BodyHintMs(response.body);
  if (hint >= 0) return hint;
  return RateLimitResetMs(response);
}

int64_t RetryDelayMs(const HttpResponse& response, int attempts,
                     const BackoffConfig& config, uint64_t random,
                     int64_t now_unix_s) {
  int64_t hint = HintedDelayMs(response, now_unix_s);
  if (hint >= 0) return std::min(hint, config.max_wait_ms);
  int shift = std::clamp(attempts - 1, 0, 30);
  int64_t ceiling = std::min(config.base_ms << shift, config.max_wait_ms);
  return static_cast<int64_t>(random % static_cast<uint64_t>(ceiling + 1));
}
