// build/fake_provider: the project's local stand-in for the OpenAI
// embeddings API (POST {base}/embeddings), used by every end-to-end test and
// benchmark. It enforces the real API's limits with the real error bodies
// and headers, rate-limits with OpenAI's semantics, answers with the
// deterministic vectors of fake_vectors.h (optionally shuffled), injects
// faults on request, and logs every request as one JSON line. It listens on
// 127.0.0.1 only. `fake_provider --help` lists the options.

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/compile.h>
#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "fake_base64.h"
#include "fake_dialects.h"
#include "fake_batches.h"
#include "fake_vectors.h"
#include "http_server.h"
#include "tokenize/token_counter.h"

namespace {

constexpr char kUsage[] = R"(usage: fake_provider [options]
A loopback fake of the OpenAI embeddings API: POST /v1/embeddings or /embeddings.
  --port N                  listen on 127.0.0.1:N (default 0: any free port)
  --port-file F             once listening, write the port to F (atomically)
  --log FILE                append one JSON line per /embeddings request
                            (n, model, inputs, tokens, max_input_tokens,
                            bytes of the body, text_bytes of the inputs,
                            encoding_format, dimensions, status, fault, auth)
  --log-texts               include the inputs as received ("texts") in --log
  --require-key KEY         accept only "Authorization: Bearer KEY"
                            (default: any non-empty bearer key)
  --echo-key full|masked    refuse a key other than --require-key, in any
                            dialect and whatever its header (Authorization,
                            api-key, x-goog-api-key), with OpenAI's 401
                            "Incorrect API key provided: KEY. ...", quoting
                            it whole or masked as OpenAI does (its first 8
                            and last 4 characters); OpenAI's own refusal
                            otherwise quotes it masked
  --shuffle                 return data[] in a random order (never the input
                            order when there are 2+ items); indexes stay right
  --seed N                  seed for --shuffle and rate: faults (default 1)
  --rpm N, --tpm N          requests / tokens per minute, replenished
                            continuously (default: not limited)
  --max-input-tokens N      refuse an input over N tokens (default 8192), as
                            a model with a smaller window than its name
                            suggests does: 400 "Invalid 'input[I]': maximum
                            context length is N tokens." (I: the first such
                            input's index; 'input' for a single string)
  --latency-ms MS           answer no sooner than MS after the request...
  --latency-per-ktok-ms MS  ...plus MS per 1000 request tokens
  --faults SPEC             comma-separated N:KIND (Nth request, 1-based),
                            every:K:KIND, rate:P:KIND (probability P),
                            text:S:KIND (a request with an input holding
                            S, which has no ',' or ':', every time it
                            comes); first matching rule wins. KIND: 429 429body
                            429reset quota 403 500 500noretry 502 503
                            400retry reset truncate stall hang badjson
                            wrongcount dupindex wrongdims nan big; hostile:
                            huge endless deep deeperror hugenum negindex
                            slow redirect
  --redirect-url URL        Location of the redirect fault (default
                            http://127.0.0.2/v1/embeddings)
  --stats FILE              on SIGTERM/SIGINT write request count and CPU use
  --dialect NAME            speak another provider's API instead (see
                            fake_dialects.h): azure (POST /openai/deployments/
                            D/embeddings?api-version=V, api-key header),
                            cohere (/v2/embed), voyage (/v1/embeddings),
                            gemini (/v1beta/models/M:batchEmbedContents,
                            x-goog-api-key), ollama (/api/embed), tei (/embed);
                            each with its own caps, error bodies and response
                            shape, tokens counted with cl100k_base (plus
                            [CLS] and [SEP] for BERT-style models). Faults
                            429 500 502 503 use the dialect's error body.
  --served-model NAME       tei's model (default BAAI/bge-small-en-v1.5)
  --batch-delay-ms MS       Batch API jobs spend MS validating, then MS
                            in_progress, then end (default 200)
  --batch-fail-every N      every Nth request of a batch file fails (400) and
                            goes to the job's error file
  --batch-error-every N     every Nth request of a batch file gets no response:
                            an error line (request_timeout) in the error file
  --batch-end STATE         how every job ends: completed (default); failed
                            (validation: errors.data, no files); expired or
                            cancelled (after cancelling), each with the first
                            half of the file's requests answered and the rest
                            as batch_expired or batch_cancelled error lines
  --batch-queue-tokens N    the batch queue limit: a job that would bring the
                            input tokens of the jobs validating or running
                            over N fails with token_limit_exceeded, as the
                            API's do (see fake_batches.h)
Control (a test's, no key): POST /fake/hold/CALL/N holds the Nth Batch API
call of kind CALL (files, upload, content, create, list or retrieve) from
then on and every call after it: unanswered and without effect until the
client hangs up; the first one is logged as {"batch_api":"hold",...} once every call
let through before it is answered, the others as "held". POST
/fake/lose/CALL/N: the same, but the Nth call takes effect and only its
answer is held ("lost": the id it made, in its log line). POST /fake/freeze
holds every call from now on, and answers once those let through are
answered. POST /fake/release holds none. POST /fake/stop-clock stops the
Batch API jobs' clock: no job changes state while it is stopped (a job
created then waits in validating), and that time does not count towards
--batch-delay-ms; POST /fake/start-clock starts it again.
Faults 429 429body 429reset quota 403 500 500noretry 502 503 400retry hang
replace any response. 429: retry-after 1, retry-after-ms 50, and "try again
in 50ms" in the message. 429body: no retry-after headers; the message says
"Please try again in 1.2s". 429reset: neither; x-ratelimit-remaining-requests
0 and x-ratelimit-reset-requests 1.3s. 500noretry: a 500 with x-should-retry:
false. 400retry: a 400 with x-should-retry: true. 403: OpenAI's "unsupported
country" refusal. badjson wrongcount dupindex wrongdims nan big corrupt only
a response that would have been 200 (nan: a bare NaN in float format, a NaN
float32 in base64; big: the first vector's first value is 65520, a valid
float32 but the smallest that no half-precision float holds). reset,
truncate and stall send the head and half the body, then a TCP reset, a
normal close, or nothing more until the client hangs up.
Hostile faults apply to a request that would have succeeded, in any dialect
(endless keeps the dialect's shape; the others are OpenAI's): huge: a 200
whose Content-Length says 2 GiB, then spaces until the client hangs up.
endless: a 200 without a length, then a vector that never ends. deep: a 200
whose data is nested 100,000 arrays deep. deeperror: a 400 whose error is
nested 100,000 deep. hugenum: a value of 100,001 digits. negindex: index -1.
slow: the right response at one byte a second. redirect: a 307 to
--redirect-url.
Without --rpm/--tpm, the x-ratelimit-* headers report 1000000 requests and
10000000000 tokens per minute, so a client that paces by them is never slowed
by a limit the server does not enforce.
Vectors are a documented function of (model, dimensions, text): see
tests/tools/fake_vectors.h. A token-id input counts as its length and is
embedded as its ids in decimal joined by single spaces.
)";

constexpr size_t kMaxInputs = 2048;
constexpr uint32_t kMaxInputTokens = 8192;
constexpr uint64_t kMaxRequestTokens = 300000;
// Limits reported when no --rpm/--tpm is given. OpenAI's top tier reports
// 10000 and 10000000, but a client that paces by these headers (embedpipe
// does) would then be slowed by limits this server does not enforce; these
// are far above anything a test or benchmark reaches.
constexpr uint64_t kUnlimitedRpm = 1000000;
constexpr uint64_t kUnlimitedTpm = 10000000000;
constexpr char kOrganization[] = "org-fakeprovider";
constexpr const char* kModels[] = {"text-embedding-3-small",
                                   "text-embedding-3-large",
                                   "text-embedding-ada-002"};

enum class Fault {
  kNone, k429, k429Body, k429Reset, kQuota, k403, k500, k500NoRetry, k502,
  k503, k400Retry, kReset, kTruncate, kStall, kHang, kBadJson, kWrongCount,
  kDupIndex, kWrongDims, kNan, kBig,
  // Hostile servers (SendHostile).
  kHuge, kEndless, kDeep, kDeepError, kHugeNum, kNegIndex, kSlow, kRedirect,
};

struct FaultName {
  Fault fault;
  const char* name;
};
constexpr FaultName kFaultNames[] = {
    {Fault::k429, "429"},           {Fault::k429Body, "429body"},
    {Fault::k429Reset, "429reset"}, {Fault::kQuota, "quota"},
    {Fault::k403, "403"},           {Fault::k500, "500"},
    {Fault::k500NoRetry, "500noretry"}, {Fault::k502, "502"},
    {Fault::k503, "503"},           {Fault::k400Retry, "400retry"},
    {Fault::kReset, "reset"},       {Fault::kTruncate, "truncate"},
    {Fault::kStall, "stall"},       {Fault::kHang, "hang"},
    {Fault::kBadJson, "badjson"},   {Fault::kWrongCount, "wrongcount"},
    {Fault::kDupIndex, "dupindex"}, {Fault::kWrongDims, "wrongdims"},
    {Fault::kNan, "nan"},           {Fault::kBig, "big"},
    {Fault::kHuge, "huge"},         {Fault::kEndless, "endless"},
    {Fault::kDeep, "deep"},         {Fault::kDeepError, "deeperror"},
    {Fault::kHugeNum, "hugenum"},   {Fault::kNegIndex, "negindex"},
    {Fault::kSlow, "slow"},         {Fault::kRedirect, "redirect"},
};

const char* FaultString(Fault f) {
  for (const FaultName& n : kFaultNames)
    if (n.fault == f) return n.name;
  return "none";
}

// Faults that replace the response whatever the request was, the way an
// overloaded or misconfigured server answers before looking at the body.
bool ReplacesResponse(Fault f) {
  return f == Fault::k429 || f == Fault::k429Body || f == Fault::k429Reset ||
         f == Fault::kQuota || f == Fault::k403 || f == Fault::k500 ||
         f == Fault::k500NoRetry || f == Fault::k502 || f == Fault::k503 ||
         f == Fault::k400Retry || f == Fault::kHang;
}

// Faults that corrupt a success body; they apply only to a request that
// would have succeeded. reset, truncate and stall damage whatever response
// it is.
bool CorruptsSuccess(Fault f) {
  return f == Fault::kBadJson || f == Fault::kWrongCount ||
         f == Fault::kDupIndex || f == Fault::kWrongDims || f == Fault::kNan ||
         f == Fault::kBig;
}

struct FaultRule {
  enum class When { kNth, kEvery, kRate, kText } when;
  uint64_t n = 0;            // kNth: the request number; kEvery: the period.
  double probability = 0;    // kRate.
  std::string text;          // kText: what an input holds.
  Fault fault = Fault::kNone;
};

struct Options {
  uint16_t port = 0;
  std::string port_file;
  std::string log_path;
  bool log_texts = false;
  std::string require_key;
  std::string echo_key;  // "", "full" or "masked".
  bool shuffle = false;
  uint64_t seed = 1;
  uint64_t rpm = 0;  // 0: not limited.
  uint64_t tpm = 0;
  uint64_t max_input_tokens = kMaxInputTokens;
  double latency_ms = 0;
  double latency_per_ktok_ms = 0;
  std::vector<FaultRule> faults;
  std::string stats_path;
  std::string dialect;  // Empty: OpenAI's.
  std::string served_model = "BAAI/bge-small-en-v1.5";
  fake_batches::Config batches;
  std::string redirect_url = "http://127.0.0.2/v1/embeddings";
};

bool ParseUint(std::string_view s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

bool ParseNonNegative(const std::string& s, double* out) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v) || v < 0) return false;
  *out = v;
  return true;
}

bool ParseFaults(std::string_view spec, std::vector<FaultRule>* rules,
                 std::string* err) {
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view()
                                           : spec.substr(comma + 1);
    if (item.empty()) continue;
    FaultRule rule;
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos) {
      *err = fmt::format("fault '{}' is not N:KIND, every:K:KIND, rate:P:KIND or text:S:KIND",
                         item);
      return false;
    }
    std::string_view kind = item.substr(colon + 1);
    std::string_view when = item.substr(0, colon);
    bool known = false;
    for (const FaultName& n : kFaultNames)
      if (kind == n.name) rule.fault = n.fault, known = true;
    if (!known) {
      *err = fmt::format("unknown fault kind '{}' in '{}'", kind, item);
      return false;
    }
    if (when.substr(0, 6) == "every:") {
      rule.when = FaultRule::When::kEvery;
      if (!ParseUint(when.substr(6), UINT64_MAX, &rule.n) || rule.n == 0) {
        *err = fmt::format("bad period in fault '{}'", item);
        return false;
      }
    } else if (when.substr(0, 5) == "text:") {
      rule.when = FaultRule::When::kText;
      rule.text = when.substr(5);
      if (rule.text.empty() || rule.text.find(':') != std::string::npos) {
        *err = fmt::format("bad text in fault '{}' (non-empty, no ':')", item);
        return false;
      }
    } else if (when.substr(0, 5) == "rate:") {
      rule.when = FaultRule::When::kRate;
      if (!ParseNonNegative(std::string(when.substr(5)), &rule.probability) ||
          rule.probability > 1) {
        *err = fmt::format("bad probability in fault '{}' (want 0..1)", item);
        return false;
      }
    } else {
      rule.when = FaultRule::When::kNth;
      if (!ParseUint(when, UINT64_MAX, &rule.n) || rule.n == 0) {
        *err = fmt::format("bad request number in fault '{}' (1-based)", item);
        return false;
      }
    }
    rules->push_back(rule);
  }
  return true;
}

// Fills *o from the command line. Sets *help for --help.
bool ParseArgs(int argc, char** argv, Options* o, bool* help, std::string* err) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_inline = true;
    }
    auto take = [&](std::string* out) {
      if (has_inline) {
        *out = value;
        return true;
      }
      if (i + 1 >= argc) {
        *err = arg + " needs a value";
        return false;
      }
      *out = argv[++i];
      return true;
    };
    auto take_uint = [&](uint64_t max, uint64_t* out) {
      std::string v;
      if (!take(&v)) return false;
      if (!ParseUint(v, max, out)) {
        *err = fmt::format("{}: '{}' is not an integer in 0..{}", arg, v, max);
        return false;
      }
      return true;
    };
    auto take_ms = [&](double* out) {
      std::string v;
      if (!take(&v)) return false;
      if (!ParseNonNegative(v, out)) {
        *err = fmt::format("{}: '{}' is not a non-negative number", arg, v);
        return false;
      }
      return true;
    };
    uint64_t u = 0;
    if (arg == "--help" || arg == "-h") {
      *help = true;
    } else if (arg == "--port") {
      if (!take_uint(65535, &u)) return false;
      o->port = static_cast<uint16_t>(u);
    } else if (arg == "--port-file") {
      if (!take(&o->port_file)) return false;
    } else if (arg == "--log") {
      if (!take(&o->log_path)) return false;
    } else if (arg == "--log-texts") {
      o->log_texts = true;
    } else if (arg == "--require-key") {
      if (!take(&o->require_key)) return false;
      if (o->require_key.empty()) {
        *err = "--require-key needs a non-empty key";
        return false;
      }
    } else if (arg == "--echo-key") {
      if (!take(&o->echo_key)) return false;
      if (o->echo_key != "full" && o->echo_key != "masked") {
        *err = "--echo-key takes full or masked";
        return false;
      }
    } else if (arg == "--shuffle") {
      o->shuffle = true;
    } else if (arg == "--seed") {
      if (!take_uint(UINT64_MAX, &o->seed)) return false;
    } else if (arg == "--rpm") {
      if (!take_uint(UINT32_MAX, &o->rpm)) return false;
    } else if (arg == "--tpm") {
      if (!take_uint(UINT32_MAX, &o->tpm)) return false;
    } else if (arg == "--max-input-tokens") {
      if (!take_uint(UINT32_MAX, &o->max_input_tokens)) return false;
    } else if (arg == "--latency-ms") {
      if (!take_ms(&o->latency_ms)) return false;
    } else if (arg == "--latency-per-ktok-ms") {
      if (!take_ms(&o->latency_per_ktok_ms)) return false;
    } else if (arg == "--faults") {
      std::string spec;
      if (!take(&spec) || !ParseFaults(spec, &o->faults, err)) return false;
    } else if (arg == "--stats") {
      if (!take(&o->stats_path)) return false;
    } else if (arg == "--dialect") {
      if (!take(&o->dialect)) return false;
    } else if (arg == "--served-model") {
      if (!take(&o->served_model)) return false;
    } else if (arg == "--batch-delay-ms") {
      if (!take_uint(86400000, &o->batches.delay_ms)) return false;
    } else if (arg == "--batch-fail-every") {
      if (!take_uint(UINT64_MAX, &o->batches.fail_every)) return false;
    } else if (arg == "--batch-error-every") {
      if (!take_uint(UINT64_MAX, &o->batches.error_every)) return false;
    } else if (arg == "--batch-queue-tokens") {
      if (!take_uint(UINT64_MAX, &o->batches.queue_tokens)) return false;
    } else if (arg == "--batch-end") {
      if (!take(&o->batches.end)) return false;
      if (!fake_batches::Batches::KnownEnd(o->batches.end)) {
        *err = "--batch-end: unknown state " + o->batches.end;
        return false;
      }
    } else if (arg == "--redirect-url") {
      if (!take(&o->redirect_url)) return false;
    } else {
      *err = "unknown option '" + arg + "'";
      return false;
    }
  }
  if (!o->echo_key.empty() && o->require_key.empty()) {
    *err = "--echo-key needs --require-key";
    return false;
  }
  return true;
}

/// Formats a duration the way OpenAI's x-ratelimit-reset-* headers do (Go's
/// time.Duration), at millisecond resolution: "0s", "20ms", "1s", "1m30.5s",
/// "6m0s", "1h0m0s".
std::string GoDuration(uint64_t ms) {
  if (ms == 0) return "0s";
  if (ms < 1000) return fmt::format("{}ms", ms);
  uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60;
  std::string out;
  if (h > 0) out += fmt::format("{}h", h);
  if (h > 0 || m > 0) out += fmt::format("{}m", m);
  out += fmt::format("{}", s);
  if (uint64_t frac = ms % 1000; frac > 0) {
    std::string f = fmt::format("{:03}", frac);
    while (f.back() == '0') f.pop_back();
    out += "." + f;
  }
  return out + "s";
}

uint64_t CeilMs(double ms) {
  return ms <= 0 ? 0 : static_cast<uint64_t>(std::ceil(ms - 1e-9));
}

/// Request and token budgets as OpenAI applies them: a per-minute limit
/// that replenishes continuously (a token bucket holding one minute's worth,
/// refilled at limit/60 per second). A rejected request takes nothing.
class RateLimiter {
 public:
  struct State {
    uint64_t limit_requests, limit_tokens;
    uint64_t remaining_requests, remaining_tokens;
    uint64_t reset_requests_ms, reset_tokens_ms;  // Until full again.
  };
  struct Verdict {
    bool allowed = true;
    bool too_large = false;  // More tokens than the whole per-minute limit.
    bool on_tokens = false;  // Which budget refused.
    uint64_t limit = 0, used = 0;
    uint64_t retry_ms = 0;
    State state{};
  };

  /// A limit of 0 means not enforced (a large limit is still reported).
  RateLimiter(uint64_t rpm, uint64_t tpm)
      : requests_{rpm > 0 ? double(rpm) : double(kUnlimitedRpm), rpm > 0},
        tokens_{tpm > 0 ? double(tpm) : double(kUnlimitedTpm), tpm > 0},
        last_(std::chrono::steady_clock::now()) {
    requests_.level = requests_.capacity;
    tokens_.level = tokens_.capacity;
  }

  /// Takes one request and `tokens` tokens if both budgets allow; otherwise
  /// says which budget ran out and when enough will have replenished.
  Verdict Take(uint64_t tokens) {
    std::lock_guard<std::mutex> lock(mu_);
    Refill();
    Verdict v;
    double t = static_cast<double>(tokens);
    if (tokens_.enforced && t > tokens_.capacity) {
      v.allowed = false;
      v.too_large = true;
      v.on_tokens = true;
      v.limit = static_cast<uint64_t>(tokens_.capacity);
    } else if (requests_.enforced && requests_.level < 1) {
      v.allowed = false;
      v.limit = static_cast<uint64_t>(requests_.capacity);
      v.used = CeilMs(requests_.capacity - requests_.level);
      v.retry_ms = CeilMs((1 - requests_.level) / requests_.PerMs());
    } else if (tokens_.enforced && tokens_.level < t) {
      v.allowed = false;
      v.on_tokens = true;
      v.limit = static_cast<uint64_t>(tokens_.capacity);
      v.used = CeilMs(tokens_.capacity - tokens_.level);
      v.retry_ms = CeilMs((t - tokens_.level) / tokens_.PerMs());
    } else {
      // Unenforced budgets still drain, so their headers move as real
      // ones do, but stop at zero.
      requests_.level = std::max(0.0, requests_.level - 1);
      tokens_.level = std::max(0.0, tokens_.level - t);
    }
    v.state = Snapshot();
    return v;
  }

  /// The budgets as they stand, for responses that take nothing.
  State Peek() {
    std::lock_guard<std::mutex> lock(mu_);
    Refill();
    return Snapshot();
  }

 private:
  struct Bucket {
    double capacity;
    bool enforced;
    double level = 0;
    double PerMs() const { return capacity / 60000.0; }
  };

  void Refill() {
    auto now = std::chrono::steady_clock::now();
    double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
    for (Bucket* b : {&requests_, &tokens_})
      b->level = std::min(b->capacity, b->level + ms * b->PerMs());
  }

  State Snapshot() const {
    auto remaining = [](const Bucket& b) {
      return static_cast<uint64_t>(std::floor(std::max(0.0, b.level)));
    };
    auto reset = [](const Bucket& b) {
      return CeilMs((b.capacity - b.level) / b.PerMs());
    };
    return {static_cast<uint64_t>(requests_.capacity),
            static_cast<uint64_t>(tokens_.capacity),
            remaining(requests_), remaining(tokens_),
            reset(requests_), reset(tokens_)};
  }

  std::mutex mu_;
  Bucket requests_, tokens_;
  std::chrono::steady_clock::time_point last_;
};

/// Quotes `s` as a JSON string.
std::string JsonQuote(std::string_view s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

/// An error the API reports; `code_json` is the JSON of the "code" field
/// (usually null or a string; Cloudflare's 502 uses a number).
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code_json = "null";
};

ApiError InvalidRequest(std::string message, std::string code_json = "null") {
  return {400, std::move(message), "invalid_request_error", std::move(code_json)};
}

// OpenAI pretty-prints error bodies with four-space indents.
std::string ErrorBody(const ApiError& e) {
  return fmt::format(
      "{{\n    \"error\": {{\n        \"message\": {},\n        \"type\": {},\n"
      "        \"param\": null,\n        \"code\": {}\n    }}\n}}\n",
      JsonQuote(e.message), JsonQuote(e.type), e.code_json);
}

/// Everything read from a request body, as far as it could be read; the log
/// reports it even for requests that fail.
struct Parsed {
  std::optional<std::string> model;
  size_t inputs = 0;
  std::vector<std::string> texts;  // What each input's vector is computed from.
  std::vector<uint32_t> tokens;
  uint64_t total_tokens = 0;
  uint32_t max_tokens = 0;
  std::optional<std::string> encoding_format = "float";
  bool base64 = false;
  std::optional<int64_t> dimensions;  // As requested, for the log.
  uint32_t dims = 0;                  // Output size.
  std::string texts_json;             // For --log-texts.
  uint32_t truncated = 0;             // Inputs the server cut (dialects).
  bool truncate = false;              // The request let the server cut.
  bool input_array = false;           // `input` was an array of inputs.
  std::string input_type;             // As the request named it.
};

/// A redacted key as OpenAI shows it in "Incorrect API key provided": the
/// first 8 and last 4 characters, stars between; short keys in full.
std::string RedactKey(std::string_view key) {
  if (key.size() <= 12) return std::string(key);
  return std::string(key.substr(0, 8)) + std::string(key.size() - 12, '*') +
         std::string(key.substr(key.size() - 4));
}

/// A uniform double in [0, 1) from a hash of its arguments, so random
/// choices depend only on --seed and the request number, not on timing.
double Uniform(uint64_t seed, uint64_t n, uint64_t salt) {
  uint64_t state = seed ^ (n * 0xd1b54a32d192ed03ULL) ^ (salt * 0x8cb92ba72f3d8dd7ULL);
  fake_vectors::SplitMix64(&state);
  return static_cast<double>(fake_vectors::SplitMix64(&state) >> 11) * 0x1p-53;
}

/// Keeps the large strings that success bodies are built in, with their
/// capacity, so a benchmark's thousands of multi-megabyte responses reuse
/// memory that is already mapped instead of page-faulting fresh memory
/// (which cost more than formatting the floats).
class BufferPool {
 public:
  std::string Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return {};
    std::string s = std::move(free_.back());
    free_.pop_back();
    return s;
  }
  void Give(std::string s) {
    if (s.capacity() < (size_t{1} << 20)) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < kMaxBuffers) free_.push_back(std::move(s));
  }

 private:
  static constexpr size_t kMaxBuffers = 64;
  std::mutex mu_;
  std::vector<std::string> free_;
};

/// Copies `s` to `out`; returns the end.
inline char* Put(char* out, std::string_view s) {
  std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

class Provider {
 public:
  explicit Provider(Options options)
      : o_(std::move(options)), limiter_(o_.rpm, o_.tpm),
        batches_(
            [this] {
              fake_batches::Config c = o_.batches;
              c.seed = o_.seed;
              return c;
            }(),
            [this](const std::string& body, std::string* out) { return Embed(body, out); },
            [this](const std::string& body, std::string* model) { return Count(body, model); },
            [this](const std::string& line) { LogLine(line); }),
        gate_([this](const std::string& line) { LogLine(line); }) {}

  /// Opens the log and builds each model's token counter.
  bool Init(std::string* err) {
    if (!o_.dialect.empty() && o_.dialect != "openai") {
      dialect_ = fake_dialects::NewDialect(o_.dialect, o_.served_model);
      if (!dialect_) {
        *err = fmt::format("unknown --dialect {} or --served-model {}", o_.dialect,
                           o_.served_model);
        return false;
      }
    }
    for (const char* model : kModels) {
      auto counter = NewTokenCounter(model, "", 0, err);
      if (!counter) return false;
      // The exact counters load their vocabulary on first use (tens of ms);
      // pay that now rather than in the first request a benchmark times.
      counter->Count("warm up");
      counters_.emplace(model, std::move(counter));
    }
    if (!o_.log_path.empty()) {
      log_ = std::fopen(o_.log_path.c_str(), "a");
      if (!log_) {
        *err = fmt::format("cannot open log {}: {}", o_.log_path, strerror(errno));
        return false;
      }
    }
    return true;
  }

  uint64_t requests() const { return requests_.load(); }

  /// Blocks log writers for good, so exiting never leaves a torn line.
  void FreezeLog() { log_mu_.lock(); }

  void Handle(const http::Request& req, http::Connection* conn) {
    if (dialect_) {
      HandleDialect(req, conn);
      return;
    }
    if (req.path.rfind("/fake/", 0) == 0 && req.method == "POST") {
      Control(req, conn);
      return;
    }
    // The base URL may or may not include /v1. OpenAI answers any other
    // path, and a method other than POST, with 404 "Invalid URL".
    if (fake_batches::Batches::Owns(req.path)) {
      using Verdict = fake_batches::Gate::Verdict;
      std::string_view call = fake_batches::Batches::CallOf(req);
      Verdict verdict = gate_.Enter(call);
      if (verdict == Verdict::kHold) {
        conn->WaitForPeerClose();
        return;
      }
      http::Response resp;
      std::string key;
      if (std::optional<ApiError> e = CheckAuth(BearerKey(req, &key), key)) SetError(*e, &resp);
      else batches_.Handle(req, &resp);
      if (verdict == Verdict::kLose) {
        rapidjson::Document made;
        made.Parse(resp.body.data(), resp.body.size());
        gate_.Lost(call, made.IsObject() && made.HasMember("id") && made["id"].IsString()
                             ? made["id"].GetString() : "");
        conn->WaitForPeerClose();
        return;
      }
      AddHeaders(req, RequestId(0), std::nullopt, limiter_.Peek(), &resp);
      conn->SendResponse(resp, req.keep_alive);
      gate_.Done();
      return;
    }
    if ((req.path != "/v1/embeddings" && req.path != "/embeddings") || req.method != "POST") {
      NotFound(req, conn);
      return;
    }
    uint64_t n = ++requests_;
    std::string request_id = RequestId(n);

    std::string key;
    bool auth_present = BearerKey(req, &key);
    Parsed p;
    std::optional<ApiError> invalid = ParseRequest(req.body, &p);
    Fault fault = PickFault(n, p.texts);

    http::Response resp;
    Fault applied = fault;
    RateLimiter::State limits;
    bool success = false;
    if (ReplacesResponse(fault)) {
      limits = limiter_.Peek();
      if (fault != Fault::kHang) SetError(FaultError(fault, p, request_id), &resp);
      if (fault == Fault::k429) {
        resp.headers.emplace_back("retry-after", "1");
        resp.headers.emplace_back("retry-after-ms", "50");
      }
      if (fault == Fault::k429Reset) {
        limits.remaining_requests = 0;
        limits.reset_requests_ms = 1300;
      }
      if (fault == Fault::k500NoRetry) resp.headers.emplace_back("x-should-retry", "false");
      if (fault == Fault::k400Retry) resp.headers.emplace_back("x-should-retry", "true");
    } else if (std::optional<ApiError> e = CheckAuth(auth_present, key)) {
      limits = limiter_.Peek();
      SetError(*e, &resp);
    } else if (invalid) {
      limits = limiter_.Peek();
      SetError(*invalid, &resp);
    } else if (RateLimiter::Verdict v = limiter_.Take(p.total_tokens); !v.allowed) {
      limits = v.state;
      SetError(RateLimitError(v, p), &resp);
      if (!v.too_large) {
        resp.headers.emplace_back("retry-after", fmt::format("{}", (v.retry_ms + 999) / 1000));
        resp.headers.emplace_back("retry-after-ms", fmt::format("{}", v.retry_ms));
      }
    } else {
      limits = v.state;
      success = true;
      resp.body = SuccessBody(p, CorruptsSuccess(fault) ? fault : Fault::kNone, n);
    }
    if (CorruptsSuccess(fault) && !success) applied = Fault::kNone;

    if (fault != Fault::kHang) {
      // The latency model: answer no sooner than this after the request
      // arrived, so the time spent building the body counts towards it.
      double delay_ms = o_.latency_ms + o_.latency_per_ktok_ms *
                                            static_cast<double>(p.total_tokens) / 1000.0;
      if (delay_ms > 0)
        std::this_thread::sleep_until(
            req.arrival + std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1000)));
    }
    AddHeaders(req, request_id, success ? p.model : std::nullopt, limits, &resp);
    Log(n, p, req.body.size(), fault == Fault::kHang ? 0 : resp.status, applied,
        auth_present);

    switch (applied) {
      case Fault::kHang:
        conn->WaitForPeerClose();
        return;
      case Fault::kReset:
      case Fault::kTruncate:
      case Fault::kStall: {
        // The head promises the whole body; only half of it arrives.
        std::string head = http::Head(resp, req.keep_alive);
        conn->Send(head, std::string_view(resp.body).substr(0, resp.body.size() / 2));
        if (applied == Fault::kReset)
          conn->Reset();
        else if (applied == Fault::kStall)
          conn->WaitForPeerClose();  // open, silent: only a client timeout ends it
        else
          conn->Close();
        break;
      }
      default:
        if (success && applied >= Fault::kHuge)
          SendHostile(applied, resp, conn);
        else
          conn->SendResponse(resp, req.keep_alive);
    }
    if (success) pool_.Give(std::move(resp.body));
  }

 private:
  // POST /fake/hold/CALL/N, /fake/lose/CALL/N, /fake/freeze,
  // /fake/release, /fake/stop-clock, /fake/start-clock (see kUsage).
  void Control(const http::Request& req, http::Connection* conn) {
    std::string_view what = std::string_view(req.path).substr(6);
    uint64_t nth = 0;
    size_t slash = what.rfind('/');
    bool arm = what.substr(0, 5) == "hold/" || what.substr(0, 5) == "lose/";
    if (what == "freeze") {
      gate_.Freeze();
    } else if (what == "release") {
      gate_.Release();
    } else if (what == "stop-clock") {
      batches_.StopClock();
    } else if (what == "start-clock") {
      batches_.StartClock();
    } else if (arm && slash > 5 && ParseUint(what.substr(slash + 1), UINT64_MAX, &nth) &&
               nth > 0) {
      gate_.Arm(std::string(what.substr(5, slash - 5)), nth, what[0] == 'l');
    } else {
      NotFound(req, conn);
      return;
    }
    http::Response resp;
    resp.body = "{}";
    conn->SendResponse(resp, req.keep_alive);
  }

  void NotFound(const http::Request& req, http::Connection* conn) {
    http::Response resp;
    SetError({404, fmt::format("Invalid URL ({} {})", req.method, req.path),
              "invalid_request_error", "null"},
             &resp);
    AddHeaders(req, RequestId(0), std::nullopt, limiter_.Peek(), &resp);
    conn->SendResponse(resp, req.keep_alive);
  }

  // One request of a Batch API job, answered as /embeddings would.
  int Embed(const std::string& body, std::string* out) {
    Parsed p;
    if (std::optional<ApiError> e = ParseRequest(body, &p)) {
      *out = ErrorBody(*e);
      return e->status;
    }
    *out = SuccessBody(p, Fault::kNone, ++batch_requests_);
    return 200;
  }

  // The input tokens of one Batch API request, as /embeddings counts them.
  uint64_t Count(const std::string& body, std::string* model) {
    Parsed p;
    if (ParseRequest(body, &p)) return 0;
    if (p.model) *model = *p.model;
    return p.total_tokens;
  }

  void LogLine(const std::string& line) {
    if (!log_) return;
    std::lock_guard<std::mutex> lock(log_mu_);
    std::fprintf(log_, "%s\n", line.c_str());
    std::fflush(log_);
  }

  // The start of an endless body in the shape of `ok`: up to its first
  // float vector's "[" and one value, or OpenAI's when `ok` holds none (its
  // vectors are base64).
  static std::string EndlessStart(const std::string& ok) {
    for (size_t i = 0; i + 1 < ok.size(); ++i)
      if (ok[i] == '[' && (ok[i + 1] == '-' || std::isdigit(static_cast<unsigned char>(ok[i + 1]))))
        return ok.substr(0, i + 1) + "0.5";
    return "{\"data\":[{\"index\":0,\"embedding\":[0.5";
  }

  // A hostile server's answer to a request that would have succeeded with
  // `ok` (its head and body). Ends the connection.
  void SendHostile(Fault f, const http::Response& ok, http::Connection* conn) {
    constexpr size_t kDepth = 100000;
    const std::string json_head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    http::Response r;
    r.status = 200;
    r.headers.emplace_back("Content-Type", "application/json");
    switch (f) {
      case Fault::kHuge: {
        conn->Send(json_head + "Content-Length: 2147483648\r\n\r\n{\"data\":");
        std::string spaces(64 * 1024, ' ');
        for (uint64_t sent = 0; sent < (uint64_t{2} << 30) && conn->Send(spaces);
             sent += spaces.size()) {
        }
        break;
      }
      case Fault::kEndless: {
        conn->Send(json_head + "Connection: close\r\n\r\n" + EndlessStart(ok.body));
        std::string values;
        for (int i = 0; i < 8192; ++i) values += ",0.5";
        while (conn->Send(values)) {
        }
        break;
      }
      case Fault::kDeep:
        r.body = "{\"data\":" + std::string(kDepth, '[') + std::string(kDepth, ']') + "}";
        break;
      case Fault::kDeepError:
        r.status = 400;
        r.body = "{\"error\":" + std::string(kDepth, '[') + std::string(kDepth, ']') + "}";
        break;
      case Fault::kHugeNum:
        r.body = "{\"data\":[{\"index\":0,\"embedding\":[1" + std::string(100000, '0') +
                 "]}],\"usage\":{\"prompt_tokens\":1" + std::string(400, '0') + "}}";
        break;
      case Fault::kNegIndex: {
        r.body = ok.body;
        size_t at = r.body.find("\"index\":0");
        if (at != std::string::npos) r.body.replace(at, 9, "\"index\":-1");
        break;
      }
      case Fault::kSlow: {
        std::string all = http::Head(ok, false) + ok.body;
        for (char c : all) {
          if (!conn->Send(std::string_view(&c, 1))) break;
          std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        break;
      }
      case Fault::kRedirect:
        r.status = 307;
        r.headers.emplace_back("Location", o_.redirect_url);
        break;
      default:
        break;
    }
    if (!r.body.empty() || r.status != 200) conn->SendResponse(r, false);
    conn->Close();
  }

  // The fault for request `n` with inputs `texts`, or kNone.
  Fault PickFault(uint64_t n, const std::vector<std::string>& texts) const {
    for (size_t i = 0; i < o_.faults.size(); ++i) {
      const FaultRule& r = o_.faults[i];
      bool hit = false;
      switch (r.when) {
        case FaultRule::When::kText:
          for (const std::string& t : texts) hit = hit || t.find(r.text) != std::string::npos;
          break;
        case FaultRule::When::kNth: hit = n == r.n; break;
        case FaultRule::When::kEvery: hit = n % r.n == 0; break;
        case FaultRule::When::kRate: hit = Uniform(o_.seed, n, i + 1) < r.probability; break;
      }
      if (hit) return r.fault;
    }
    return Fault::kNone;
  }

  // "req_" and 32 hex digits, like OpenAI's; unique per request number.
  std::string RequestId(uint64_t n) const {
    uint64_t state = o_.seed ^ (n * 0x9e3779b97f4a7c15ULL) ^ 0x5851f42d4c957f2dULL;
    uint64_t a = fake_vectors::SplitMix64(&state);
    uint64_t b = fake_vectors::SplitMix64(&state);
    return fmt::format("req_{:016x}{:016x}", a, b);
  }

  // True when the request carries "Authorization: Bearer <non-empty key>".
  // The key is as sent, but for the white space that ends the line: one
  // with a space in front is not --require-key.
  static bool BearerKey(const http::Request& req, std::string* key) {
    const std::string* auth = req.Header("authorization");
    if (!auth || auth->size() < 7 || !http::EqualsIgnoreCase(auth->substr(0, 7), "bearer "))
      return false;
    *key = auth->substr(7);
    return !key->empty();
  }

  // OpenAI's refusal of a wrong key, which quotes it (--echo-key).
  std::string IncorrectKeyMessage(std::string_view key) const {
    return fmt::format("Incorrect API key provided: {}. You can find your API key at "
                       "https://platform.openai.com/account/api-keys.",
                       o_.echo_key == "full" ? std::string(key) : RedactKey(key));
  }

  // With --echo-key, the key a request carries in whichever header its
  // dialect sends it, when it is not --require-key; else nullopt.
  std::optional<std::string> WrongKeyToEcho(const http::Request& req) const {
    if (o_.echo_key.empty()) return std::nullopt;
    std::string_view key;
    if (const std::string* auth = req.Header("authorization")) {
      key = *auth;
      if (key.size() >= 7 && http::EqualsIgnoreCase(key.substr(0, 7), "bearer "))
        key.remove_prefix(7);
    } else if (const std::string* h = req.Header("api-key")) {
      key = *h;
    } else if (const std::string* h = req.Header("x-goog-api-key")) {
      key = *h;
    }
    if (key == o_.require_key) return std::nullopt;
    return std::string(key);
  }

  std::optional<ApiError> CheckAuth(bool present, const std::string& key) const {
    if (!present)
      return ApiError{401,
                      "You didn't provide an API key. You need to provide your API key in an "
                      "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                      "YOUR_KEY), or as the password field (with blank username) if you're "
                      "accessing the API from your browser and are prompted for a username and "
                      "password. You can obtain an API key from "
                      "https://platform.openai.com/account/api-keys.",
                      "invalid_request_error", "null"};
    if (!o_.require_key.empty() && key != o_.require_key)
      return ApiError{401,
                      IncorrectKeyMessage(key),
                      "invalid_request_error", "\"invalid_api_key\""};
    return std::nullopt;
  }

  // Reads the body into *p and validates it as OpenAI does, in this order:
  // JSON, unknown fields, model, input, encoding_format, dimensions, token
  // limits. Returns
  // the first error, or nullopt for a valid request.
  std::optional<ApiError> ParseRequest(const std::string& body, Parsed* p) const {
    static const std::string kBadInput =
        "'$.input' is invalid. Please check the API reference: "
        "https://platform.openai.com/docs/api-reference.";
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
    if (doc.HasParseError() || !doc.IsObject())
      return InvalidRequest(
          "We could not parse the JSON body of your request. (HINT: This likely means you "
          "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
          "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
          "this, please contact us through our help center at help.openai.com.)");

    // OpenAI refuses fields it does not know rather than ignoring them.
    for (const auto& m : doc.GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (name != "model" && name != "input" && name != "encoding_format" &&
          name != "dimensions" && name != "user")
        return InvalidRequest(
            fmt::format("Unrecognized request argument supplied: {}", name));
    }
    auto model = doc.FindMember("model");
    if (model != doc.MemberEnd() && model->value.IsString())
      p->model = std::string(model->value.GetString(), model->value.GetStringLength());
    auto format = doc.FindMember("encoding_format");
    if (format != doc.MemberEnd() && !format->value.IsNull())
      p->encoding_format = format->value.IsString()
                               ? std::optional<std::string>(format->value.GetString())
                               : std::nullopt;
    auto dimensions = doc.FindMember("dimensions");
    bool has_dimensions = dimensions != doc.MemberEnd();
    if (has_dimensions && dimensions->value.IsInt64())
      p->dimensions = dimensions->value.GetInt64();
    auto input = doc.FindMember("input");
    bool input_ok = input != doc.MemberEnd() && ReadInputs(input->value, p);

    if (!p->model) return InvalidRequest("you must provide a model parameter");
    uint32_t native = fake_vectors::NativeDims(*p->model);
    if (native == 0)
      return ApiError{404,
                      fmt::format("The model `{}` does not exist or you do not have access to it.",
                                  *p->model),
                      "invalid_request_error", "\"model_not_found\""};
    if (input == doc.MemberEnd()) return InvalidRequest("'input' is a required property");
    if (!input_ok) return InvalidRequest(kBadInput);
    if (!p->encoding_format ||
        (*p->encoding_format != "float" && *p->encoding_format != "base64"))
      return InvalidRequest(fmt::format(
          "{} is not one of ['float', 'base64'] - 'encoding_format'",
          p->encoding_format ? "'" + *p->encoding_format + "'" : "the value"));
    p->base64 = *p->encoding_format == "base64";
    p->dims = native;
    if (has_dimensions) {
      // Even "dimensions": null is refused by models without the feature.
      if (!fake_vectors::SupportsDimensions(*p->model))
        return InvalidRequest("This model does not support specifying dimensions.");
      if (!dimensions->value.IsNull()) {
        if (!p->dimensions || *p->dimensions < 1 || *p->dimensions > native)
          return InvalidRequest(fmt::format(
              "Invalid value for 'dimensions' = {}. Must be between 1 and {}.",
              p->dimensions ? std::to_string(*p->dimensions) : std::string("(not an integer)"),
              native));
        p->dims = static_cast<uint32_t>(*p->dimensions);
      }
    }

    const TokenCounter& counter = *counters_.at(*p->model);
    for (size_t i = 0; i < p->texts.size(); ++i) {
      // Token-id inputs were counted as their length by ReadInputs.
      if (p->tokens[i] == UINT32_MAX)
        p->tokens[i] = counter.Count(p->texts[i]);
      p->total_tokens += p->tokens[i];
      p->max_tokens = std::max(p->max_tokens, p->tokens[i]);
    }
    // OpenAI's answer for one string, as a 2026 report shows it ("Invalid
    // 'input': maximum context length is 8192 tokens.", code null). For an
    // array it names the element as its other per-input errors do ("Invalid
    // 'input[0]': ..."); that form is assumed, not seen in a capture.
    for (size_t i = 0; i < p->tokens.size(); ++i)
      if (p->tokens[i] > o_.max_input_tokens)
        return InvalidRequest(fmt::format(
            "Invalid '{}': maximum context length is {} tokens.",
            p->input_array ? fmt::format("input[{}]", i) : std::string("input"),
            o_.max_input_tokens));
    if (p->total_tokens > kMaxRequestTokens)
      return ApiError{400,
                      fmt::format("Requested {} tokens, max {} tokens per request",
                                  p->total_tokens, kMaxRequestTokens),
                      "max_tokens_per_request", "\"max_tokens_per_request\""};
    return std::nullopt;
  }

  // Accepts what OpenAI accepts as `input`: a non-empty string, an array of
  // 1..2048 non-empty strings, one non-empty array of token ids, or an array
  // of 1..2048 such arrays. Fills texts and, for token ids, their counts;
  // string inputs get UINT32_MAX ("count me"). Returns false if invalid.
  bool ReadInputs(const rapidjson::Value& input, Parsed* p) const {
    auto add_string = [p](const rapidjson::Value& v) {
      if (!v.IsString() || v.GetStringLength() == 0) return false;
      p->texts.emplace_back(v.GetString(), v.GetStringLength());
      p->tokens.push_back(UINT32_MAX);
      return true;
    };
    auto add_ids = [p](const rapidjson::Value& v) {
      if (!v.IsArray() || v.Empty()) return false;
      std::string text;
      for (const auto& id : v.GetArray()) {
        if (!id.IsUint()) return false;
        if (!text.empty()) text += ' ';
        text += std::to_string(id.GetUint());
      }
      p->texts.push_back(std::move(text));
      p->tokens.push_back(v.Size());
      return true;
    };
    bool ok = true;
    if (input.IsString()) {
      p->inputs = 1;
      ok = add_string(input);
    } else if (input.IsArray() && !input.Empty() && input[0].IsNumber()) {
      p->inputs = 1;
      ok = add_ids(input);
    } else if (input.IsArray()) {
      p->input_array = true;
      p->inputs = input.Size();
      ok = !input.Empty() && input.Size() <= kMaxInputs;
      bool strings = ok && input[0].IsString();
      for (rapidjson::SizeType i = 0; ok && i < input.Size(); ++i)
        ok = strings ? add_string(input[i]) : add_ids(input[i]);
    } else {
      ok = false;
    }
    if (o_.log_texts) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      bool wrap = input.IsString() || (input.IsArray() && !input.Empty() && input[0].IsNumber());
      if (wrap) w.StartArray();
      input.Accept(w);
      if (wrap) w.EndArray(1);
      p->texts_json.assign(buf.GetString(), buf.GetSize());
    }
    if (!ok) {
      p->texts.clear();
      p->tokens.clear();
    }
    return ok;
  }

  ApiError FaultError(Fault f, const Parsed& p, const std::string& request_id) const {
    switch (f) {
      case Fault::k429:
        return {429,
                fmt::format("Rate limit reached for {} in organization {} on requests per min "
                            "(RPM): Limit {}, Used {}, Requested 1. Please try again in 50ms. "
                            "Visit https://platform.openai.com/account/rate-limits to learn "
                            "more.",
                            p.model.value_or("text-embedding-3-small"), kOrganization,
                            o_.rpm ? o_.rpm : kUnlimitedRpm, o_.rpm ? o_.rpm : kUnlimitedRpm),
                "requests", "\"rate_limit_exceeded\""};
      case Fault::k429Body:
        // A 429 whose only hint is the message, as some proxies pass on.
        return {429,
                fmt::format("Rate limit reached for {} in organization {} on tokens per min "
                            "(TPM): Limit {}, Used {}, Requested {}. Please try again in 1.2s. "
                            "Visit https://platform.openai.com/account/rate-limits to learn "
                            "more.",
                            p.model.value_or("text-embedding-3-small"), kOrganization,
                            o_.tpm ? o_.tpm : kUnlimitedTpm, o_.tpm ? o_.tpm : kUnlimitedTpm,
                            p.total_tokens),
                "tokens", "\"rate_limit_exceeded\""};
      case Fault::k429Reset:
        // No hint but the rate headers (set by Handle).
        return {429,
                fmt::format("Rate limit reached for {} in organization {} on requests per min "
                            "(RPM): Limit {}, Used {}, Requested 1. Visit "
                            "https://platform.openai.com/account/rate-limits to learn more.",
                            p.model.value_or("text-embedding-3-small"), kOrganization,
                            o_.rpm ? o_.rpm : kUnlimitedRpm, o_.rpm ? o_.rpm : kUnlimitedRpm),
                "requests", "\"rate_limit_exceeded\""};
      case Fault::k403:
        return {403, "Country, region, or territory not supported",
                "request_forbidden", "\"unsupported_country_region_territory\""};
      case Fault::k500NoRetry:
        return {500, "The server had an error processing your request; retrying will not help.",
                "server_error", "null"};
      case Fault::k400Retry:
        return {400, "The request could not be processed right now.",
                "invalid_request_error", "null"};
      case Fault::kQuota:
        return {429,
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota", "\"insufficient_quota\""};
      case Fault::k500:
        return {500,
                fmt::format("The server had an error processing your request. Sorry about "
                            "that! You can retry your request, or contact us through our help "
                            "center at help.openai.com if you keep seeing this error. (Please "
                            "include the request ID {} in your email.)",
                            request_id),
                "server_error", "null"};
      case Fault::k502:
        // What OpenAI's edge (Cloudflare) sends; note the numeric code.
        return {502, "Bad gateway.", "cf_bad_gateway", "502"};
      case Fault::k503:
        return {503, "The engine is currently overloaded, please try again later.",
                "server_error", "null"};
      default:
        return {500, "internal fake_provider error", "server_error", "null"};
    }
  }

  static ApiError RateLimitError(const RateLimiter::Verdict& v, const Parsed& p) {
    const char* what = v.on_tokens ? "tokens per min (TPM)" : "requests per min (RPM)";
    if (v.too_large)
      return {429,
              fmt::format("Request too large for {} in organization {} on {}: Limit {}, "
                          "Requested {}. The input or output tokens must be reduced in order "
                          "to run successfully. Visit "
                          "https://platform.openai.com/account/rate-limits to learn more.",
                          *p.model, kOrganization, what, v.limit, p.total_tokens),
              "tokens", "\"rate_limit_exceeded\""};
    return {429,
            fmt::format("Rate limit reached for {} in organization {} on {}: Limit {}, Used {}, "
                        "Requested {}. Please try again in {}. Visit "
                        "https://platform.openai.com/account/rate-limits to learn more.",
                        *p.model, kOrganization, what, v.limit, v.used,
                        v.on_tokens ? p.total_tokens : 1, GoDuration(v.retry_ms)),
            v.on_tokens ? "tokens" : "requests", "\"rate_limit_exceeded\""};
  }

  static void SetError(const ApiError& e, http::Response* resp) {
    resp->status = e.status;
    resp->body = ErrorBody(e);
  }

  void AddHeaders(const http::Request& req, const std::string& request_id,
                  const std::optional<std::string>& model, const RateLimiter::State& s,
                  http::Response* resp) const {
    char date[64];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    auto elapsed = std::chrono::steady_clock::now() - req.arrival;
    // Inserted first, ahead of any retry-after headers already set.
    std::vector<std::pair<std::string, std::string>> h = {
        {"Date", date},
        {"Content-Type", "application/json"},
        {"access-control-expose-headers", "X-Request-ID"},
    };
    if (model) h.emplace_back("openai-model", *model);
    h.emplace_back("openai-organization", kOrganization);
    h.emplace_back("openai-processing-ms",
                   fmt::format("{}", std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()));
    h.emplace_back("openai-version", "2020-10-01");
    h.emplace_back("x-ratelimit-limit-requests", fmt::format("{}", s.limit_requests));
    h.emplace_back("x-ratelimit-limit-tokens", fmt::format("{}", s.limit_tokens));
    h.emplace_back("x-ratelimit-remaining-requests", fmt::format("{}", s.remaining_requests));
    h.emplace_back("x-ratelimit-remaining-tokens", fmt::format("{}", s.remaining_tokens));
    h.emplace_back("x-ratelimit-reset-requests", GoDuration(s.reset_requests_ms));
    h.emplace_back("x-ratelimit-reset-tokens", GoDuration(s.reset_tokens_ms));
    h.emplace_back("x-request-id", request_id);
    for (auto& extra : resp->headers) h.push_back(std::move(extra));
    resp->headers = std::move(h);
  }

  // The success body, in OpenAI's field order, corrupted by `fault` (one of
  // the CorruptsSuccess kinds, or kNone). Floats are the shortest text that
  // reads back as the same float32.
  std::string SuccessBody(const Parsed& p, Fault fault, uint64_t n) {
    size_t k = p.texts.size();
    struct Item {
      uint32_t source;  // Which input's vector.
      uint32_t index;   // The index the item claims.
    };
    std::vector<Item> items(k);
    for (uint32_t i = 0; i < k; ++i) items[i] = {i, i};
    if (o_.shuffle && k >= 2) {
      uint64_t state = o_.seed ^ (n * 0xa0761d6478bd642fULL);
      for (size_t i = k - 1; i > 0; --i)
        std::swap(items[i], items[fake_vectors::SplitMix64(&state) % (i + 1)]);
      // A test of reordering must always see one.
      bool identity = true;
      for (uint32_t i = 0; i < k && identity; ++i) identity = items[i].source == i;
      if (identity) std::swap(items[0], items[1]);
    }
    if (fault == Fault::kWrongCount) items.pop_back();
    if (fault == Fault::kDupIndex) {
      if (k >= 2)
        items.back().index = items.front().index;
      else
        items.push_back(items.front());
    }

    // An upper bound on the body, so it is written through a raw pointer
    // with no checks: a float takes at most 15 chars and a comma, and an
    // item at most dims + 1 values (wrongdims) and 80 chars of framing.
    size_t values = p.dims + 1;
    size_t per_item = (p.base64 ? fake_base64::EncodedSize(values * sizeof(float))
                                : values * 16) + 80;
    size_t bound = items.size() * per_item + p.model->size() * 6 + 256;
    std::string body = pool_.Take();
    // Growing zero-fills only the new part; a pooled buffer is mapped already.
    if (body.size() < bound) body.resize(bound);
    char* out = body.data();
    out = Put(out, "{\"object\":\"list\",\"data\":[");
    std::vector<float> v(values);
    for (size_t j = 0; j < items.size(); ++j) {
      const Item& it = items[j];
      uint32_t count = p.dims;
      fake_vectors::Compute(*p.model, p.dims, p.texts[it.source], v.data());
      if (j == 0 && fault == Fault::kWrongDims) {
        if (p.dims == 1) v[count++] = 0.0f;
        else --count;
      }
      bool nan = j == 0 && fault == Fault::kNan;
      if (j == 0 && fault == Fault::kBig) v[0] = 65520.0f;
      if (j > 0) *out++ = ',';
      out = Put(out, "{\"object\":\"embedding\",\"index\":");
      out = fmt::format_to(out, FMT_COMPILE("{}"), it.index);
      out = Put(out, ",\"embedding\":");
      if (p.base64) {
        if (nan) v[0] = std::numeric_limits<float>::quiet_NaN();
        if constexpr (std::endian::native == std::endian::big)
          for (uint32_t i = 0; i < count; ++i)
            v[i] = std::bit_cast<float>(__builtin_bswap32(std::bit_cast<uint32_t>(v[i])));
        *out++ = '"';
        out = fake_base64::EncodeTo(v.data(), count * sizeof(float), out);
        *out++ = '"';
      } else {
        *out++ = '[';
        for (uint32_t i = 0; i < count; ++i) {
          if (i > 0) *out++ = ',';
          if (nan && i == 0) {
            // JSON has no NaN; some broken servers send the bare word.
            out = Put(out, "NaN");
            continue;
          }
          out = fmt::format_to(out, FMT_COMPILE("{}"), v[i]);
        }
        *out++ = ']';
      }
      *out++ = '}';
    }
    out = fmt::format_to(out, FMT_COMPILE("],\"model\":{},\"usage\":{{\"prompt_tokens\":{},"
                                          "\"total_tokens\":{}}}}}"),
                         JsonQuote(*p.model), p.total_tokens, p.total_tokens);
    body.resize(static_cast<size_t>(out - body.data()));
    // Half a JSON document never parses: its outer object is left open.
    if (fault == Fault::kBadJson) body.resize(body.size() / 2);
    return body;
  }

  // One JSON line per /embeddings request, written before the response is
  // sent so a client that has its answer can already read its line.
  void Log(uint64_t n, const Parsed& p, size_t bytes, int status, Fault fault,
           bool auth_present) {
    if (!log_) return;
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("n");
    w.Uint64(n);
    // Wall-clock milliseconds when the answer went out, so a benchmark can
    // time how soon the client reacted to it.
    w.Key("t_ms");
    w.Int64(std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count());
    w.Key("model");
    if (p.model) w.String(p.model->data(), static_cast<rapidjson::SizeType>(p.model->size()));
    else w.Null();
    w.Key("inputs");
    w.Uint64(p.inputs);
    w.Key("tokens");
    w.Uint64(p.total_tokens);
    w.Key("max_input_tokens");
    w.Uint(p.max_tokens);
    w.Key("bytes");
    w.Uint64(bytes);
    // The inputs' own UTF-8 bytes: what the bytes/4 token estimate counts.
    uint64_t text_bytes = 0;
    for (const std::string& t : p.texts) text_bytes += t.size();
    w.Key("text_bytes");
    w.Uint64(text_bytes);
    w.Key("encoding_format");
    if (p.encoding_format) w.String(p.encoding_format->c_str());
    else w.Null();
    w.Key("dimensions");
    if (p.dimensions) w.Int64(*p.dimensions);
    else w.Null();
    w.Key("status");
    if (status) w.Int(status);
    else w.Null();
    w.Key("fault");
    if (fault != Fault::kNone) w.String(FaultString(fault));
    else w.Null();
    w.Key("auth");
    w.String(auth_present ? "present" : "missing");
    if (dialect_) {
      w.Key("truncated");
      w.Uint(p.truncated);
      w.Key("truncate");
      w.Bool(p.truncate);
      w.Key("input_type");
      w.String(p.input_type.c_str());
    }
    if (o_.log_texts) {
      w.Key("texts");
      if (p.texts_json.empty()) w.Null();
      else w.RawValue(p.texts_json.data(), p.texts_json.size(), rapidjson::kArrayType);
    }
    w.EndObject();
    std::lock_guard<std::mutex> lock(log_mu_);
    std::fwrite(buf.GetString(), 1, buf.GetSize(), log_);
    std::fputc('\n', log_);
    std::fflush(log_);
  }

  // One request in another provider's dialect: the same faults, rate
  // limits, latency and log as OpenAI's, the dialect's caps and bodies.
  void HandleDialect(const http::Request& req, http::Connection* conn) {
    const fake_dialects::Dialect& d = *dialect_;
    http::Response resp;
    resp.headers.emplace_back("Content-Type", "application/json");
    std::string path_model;
    if (req.method != "POST" || !d.Match(req, &path_model)) {
      fake_dialects::Error e = d.MakeError(404, "not_found", "Not Found");
      resp.status = e.status;
      resp.body = e.body;
      conn->SendResponse(resp, req.keep_alive);
      return;
    }
    uint64_t n = ++requests_;
    fake_dialects::Request r;
    std::optional<fake_dialects::Error> error;
    if (std::optional<std::string> wrong = WrongKeyToEcho(req))
      error = d.MakeError(401, "auth", IncorrectKeyMessage(*wrong));
    else
      error = d.CheckAuth(req, o_.require_key);
    if (!error) error = d.Parse(req.body, path_model, &r);
    Fault fault = PickFault(n, r.texts);
    // The log's view of it, with tokens as the provider would count them
    // (cl100k_base here, plus the model's special tokens) and truncated ones
    // at the model's context.
    Parsed p;
    p.model = r.model;
    p.inputs = r.texts.size();
    p.encoding_format = r.base64 ? "base64" : "float";
    p.dimensions = r.dimensions;
    p.truncate = r.truncate;
    p.input_type = r.input_type;
    const TokenCounter& counter = *counters_.at("text-embedding-3-small");
    for (size_t i = 0; i < r.texts.size(); ++i) {
      uint32_t t = counter.Count(r.texts[i]) + r.added_tokens;
      p.max_tokens = std::max(p.max_tokens, t);
      if (t > r.caps.max_input_tokens && !error) {
        if (r.truncate) {
          t = r.caps.max_input_tokens;
          ++p.truncated;
        } else {
          error = d.InputTooLong(r, i, t);
        }
      }
      p.tokens.push_back(t);
      p.total_tokens += t;
      p.texts.push_back(r.texts[i]);
    }
    if (o_.log_texts) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      w.StartArray();
      for (const std::string& t : r.texts)
        w.String(t.data(), static_cast<rapidjson::SizeType>(t.size()));
      w.EndArray();
      p.texts_json.assign(buf.GetString(), buf.GetSize());
    }
    if (!error && r.texts.size() > r.caps.max_inputs) error = d.TooManyInputs(r);
    if (!error && r.caps.max_request_tokens && p.total_tokens > r.caps.max_request_tokens)
      error = d.RequestTooLarge(r, p.total_tokens);
    bool success = false;
    if (ReplacesResponse(fault) && fault != Fault::kHang) {
      int status = fault == Fault::k429 ? 429 : fault == Fault::k502 ? 502
                   : fault == Fault::k503 ? 503 : 500;
      error = d.MakeError(status, status == 429 ? "rate" : status == 503 ? "unavailable" : "server",
                          status == 429 ? "rate limit exceeded" : "the server had an error");
      if (status == 429) resp.headers.emplace_back("retry-after", "1");
    } else if (!error) {
      if (RateLimiter::Verdict v = limiter_.Take(p.total_tokens); !v.allowed) {
        error = d.MakeError(429, "rate", "rate limit exceeded");
        resp.headers.emplace_back("retry-after", fmt::format("{}", (v.retry_ms + 999) / 1000));
      } else {
        std::vector<std::vector<float>> vectors(r.texts.size(), std::vector<float>(r.dims));
        for (size_t i = 0; i < r.texts.size(); ++i)
          fake_vectors::Compute(r.model, r.dims, r.texts[i], vectors[i].data());
        d.Success(r, vectors, p.total_tokens, &resp.body);
        success = true;
      }
    }
    if (error) {
      resp.status = error->status;
      resp.body = error->body;
    }
    bool hostile = success && fault >= Fault::kHuge;
    Log(n, p, req.body.size(), resp.status,
        hostile || (!success && ReplacesResponse(fault)) ? fault : Fault::kNone, true);
    if (hostile)
      SendHostile(fault, resp, conn);
    else
      conn->SendResponse(resp, req.keep_alive);
  }

  const Options o_;
  std::unique_ptr<fake_dialects::Dialect> dialect_;
  RateLimiter limiter_;
  std::map<std::string, std::unique_ptr<TokenCounter>, std::less<>> counters_;
  std::atomic<uint64_t> requests_{0};
  BufferPool pool_;
  std::mutex log_mu_;
  fake_batches::Batches batches_;
  fake_batches::Gate gate_;
  uint64_t batch_requests_ = 0;  // Under batches_' lock.
  std::FILE* log_ = nullptr;
};

// Writes `port` to `path` through a temporary file and rename, so a reader
// never sees a partial number.
bool WritePortFile(const std::string& path, uint16_t port, std::string* err) {
  std::string tmp = fmt::format("{}.tmp.{}", path, getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) {
    *err = fmt::format("cannot write {}: {}", tmp, strerror(errno));
    return false;
  }
  fmt::print(f, "{}\n", port);
  if (std::fclose(f) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *err = fmt::format("cannot write {}: {}", path, strerror(errno));
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

std::string StatsLine(uint64_t requests) {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return fmt::format(
      "{{\"requests\":{},\"cpu_user_s\":{:.3f},\"cpu_sys_s\":{:.3f},\"max_rss_kb\":{}}}",
      requests, seconds(ru.ru_utime), seconds(ru.ru_stime), ru.ru_maxrss);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::string err;
  bool help = false;
  if (!ParseArgs(argc, argv, &options, &help, &err)) {
    fmt::print(stderr, "fake_provider: {}\n{}", err, kUsage);
    return 2;
  }
  if (help) {
    fmt::print("{}", kUsage);
    return 0;
  }
  // Block the exit signals in every thread; main takes them with sigwait, so
  // shutdown runs as ordinary code rather than in a signal handler.
  sigset_t exit_signals;
  sigemptyset(&exit_signals);
  sigaddset(&exit_signals, SIGINT);
  sigaddset(&exit_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &exit_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string stats_path = options.stats_path;
  std::string port_file = options.port_file;
  uint16_t port = options.port;
  auto provider = std::make_shared<Provider>(std::move(options));
  if (!provider->Init(&err)) {
    fmt::print(stderr, "fake_provider: {}\n", err);
    return 1;
  }
  auto server = std::make_shared<http::Server>();
  if (!server->Listen(port, &err)) {
    fmt::print(stderr, "fake_provider: {}\n", err);
    return 1;
  }
  std::thread([server, provider] {
    server->Serve([provider](const http::Request& req, http::Connection* conn) {
      provider->Handle(req, conn);
    });
  }).detach();
  if (!port_file.empty() && !WritePortFile(port_file, server->port(), &err)) {
    fmt::print(stderr, "fake_provider: {}\n", err);
    return 1;
  }
  fmt::print(stderr, "listening on 127.0.0.1:{}\n", server->port());
  std::fflush(stderr);

  int sig = 0;
  sigwait(&exit_signals, &sig);
  provider->FreezeLog();
  std::string stats = StatsLine(provider->requests());
  if (!stats_path.empty()) {
    if (std::FILE* f = std::fopen(stats_path.c_str(), "w")) {
      fmt::print(f, "{}\n", stats);
      std::fclose(f);
    } else {
      fmt::print(stderr, "fake_provider: cannot write {}: {}\n", stats_path, strerror(errno));
    }
  }
  fmt::print(stderr, "{}\n", stats);
  std::fflush(stderr);
  // Connection threads may still be running; skip static destructors.
  std::_Exit(0);
}
