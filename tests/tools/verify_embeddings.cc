// build/verify_embeddings: proves an embedpipe run against the fake provider
// delivered every vector intact and to the right record. It reads the
// expected records ({"id":...,"text":"<normalized text>"} per line) and
// embedpipe's output ({"id":...,"embedding":[...],...} per line) in step and
// checks each pair: the output line is strict JSON, ids are equal as JSON
// values (1 == 1.0; member order ignored), the embedding has the right
// length, and every float read as float32 (strtof's rounding) is
// bit-identical to the vector function of fake_vectors.h. An embedding may
// also be a base64 string of float32s, as the API sends it. Lines are checked
// on worker threads in batches; the error reported is always the earliest
// line that fails.
//
//   verify_embeddings --model M [--dims D] --expected EXPECTED.jsonl
//                     [--threads N] < OUTPUT.jsonl
// Exit 0 with "verified N records" on stdout; 1 with the first mismatch
// ("line N: ...") on stderr; 2 on a usage or I/O error.

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "fake_base64.h"
#include "fake_vectors.h"

namespace {

constexpr char kUsage[] =
    "usage: verify_embeddings --model M [--dims D] --expected EXPECTED.jsonl "
    "[--threads N] < OUTPUT.jsonl\n";
constexpr size_t kBatchLines = 256;

struct Config {
  std::string model;
  uint32_t dims = 0;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// Parses `json` strictly as one JSON value into *doc.
bool ParseValue(std::string_view json, rapidjson::Document* doc) {
  doc->Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  return !doc->HasParseError();
}

std::string Shorten(std::string_view s) {
  return s.size() > 200 ? std::string(s.substr(0, 200)) + "..." : std::string(s);
}

/// What an output line held, found by ScanOutput.
struct Output {
  std::string_view id;  // The id's JSON text; empty if absent.
  bool has_embedding = false;
  uint32_t count = 0;          // Floats seen.
  bool mismatch = false;       // The first float that differs:
  uint32_t mismatch_at = 0;
  std::string mismatch_text;
};

/// Scans one output record: a JSON object whose "embedding" is an array of
/// numbers (or a base64 string of float32s). Embedding numbers are checked
/// against the JSON grammar and read as strtof would (correctly rounded)
/// straight from the line, then compared by bits with `want`; every other
/// member's value is handed to RapidJSON, so the whole line is still
/// validated strictly. This is several times faster than a general parser,
/// which spends its time building numbers nobody needs.
class OutputScanner {
 public:
  OutputScanner(std::string_view line, const float* want, uint32_t dims, Output* out)
      : s_(line), want_(want), dims_(dims), out_(out) {}

  /// Returns false and fills *err if the line is not such a record.
  bool Scan(std::string* err) {
    err_ = err;
    SkipSpace();
    if (!Eat('{')) return Fail("not a JSON object");
    SkipSpace();
    if (Eat('}')) return End();
    for (;;) {
      SkipSpace();
      std::string key;
      if (!Key(&key)) return false;
      SkipSpace();
      if (!Eat(':')) return Fail("expected ':'");
      SkipSpace();
      if (key == "embedding") {
        out_->has_embedding = true;
        out_->count = 0;
        out_->mismatch = false;
        if (Peek() == '[') {
          if (!FloatArray()) return false;
        } else if (Peek() == '"') {
          if (!Base64String()) return false;
        } else {
          return Fail("embedding is not an array of numbers");
        }
      } else {
        size_t start = i_;
        if (!SkipValue()) return Fail("invalid JSON value");
        std::string_view value = s_.substr(start, i_ - start);
        rapidjson::Document doc;
        if (!ParseValue(value, &doc))
          return Fail(fmt::format("invalid JSON in \"{}\"", Shorten(key)));
        if (key == "id") out_->id = value;
      }
      SkipSpace();
      if (Eat('}')) return End();
      if (!Eat(',')) return Fail("expected ',' or '}'");
    }
  }

 private:
  char Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool Eat(char c) {
    if (Peek() != c || i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  void SkipSpace() {
    while (i_ < s_.size() && IsSpace(s_[i_])) ++i_;
  }
  bool Fail(std::string message) {
    *err_ = fmt::format("{} at byte {}", message, i_);
    return false;
  }
  bool End() {
    SkipSpace();
    return i_ == s_.size() || Fail("text after the object");
  }

  // Moves past a string; false if it never ends.
  bool SkipString() {
    ++i_;  // The opening quote.
    for (; i_ < s_.size(); ++i_) {
      if (s_[i_] == '\\') ++i_;
      else if (s_[i_] == '"') return ++i_, true;
    }
    return false;
  }

  bool Key(std::string* key) {
    if (Peek() != '"') return Fail("expected a member name");
    size_t start = i_;
    if (!SkipString()) return Fail("unterminated string");
    std::string_view raw = s_.substr(start, i_ - start);
    if (raw.find('\\') == std::string_view::npos) {
      key->assign(raw.substr(1, raw.size() - 2));
      return true;
    }
    rapidjson::Document doc;
    if (!ParseValue(raw, &doc)) return Fail("invalid member name");
    key->assign(doc.GetString(), doc.GetStringLength());
    return true;
  }

  // Moves past one value of any kind, finding only its extent; the caller
  // validates it.
  bool SkipValue() {
    int depth = 0;
    do {
      char c = Peek();
      if (c == '"') {
        if (!SkipString()) return false;
      } else if (c == '{' || c == '[') {
        ++depth, ++i_;
      } else if (c == '}' || c == ']') {
        if (--depth < 0) return false;
        ++i_;
      } else if (c == ',' || c == ':' || IsSpace(c)) {
        if (depth == 0) return false;
        ++i_;
      } else if (c == '\0' && i_ >= s_.size()) {
        return false;
      } else {
        // A literal or number; a NUL byte is taken in and fails validation.
        auto delimiter = [](char d) {
          return IsSpace(d) || d == ',' || d == ':' || d == '{' || d == '}' || d == '[' ||
                 d == ']' || d == '"';
        };
        while (i_ < s_.size() && !delimiter(s_[i_])) ++i_;
      }
    } while (depth > 0);
    return true;
  }

  // Length of the JSON number at i_, or 0 if there is none.
  size_t NumberLength() const {
    size_t j = i_;
    auto digits = [&] {
      size_t from = j;
      while (j < s_.size() && s_[j] >= '0' && s_[j] <= '9') ++j;
      return j > from;
    };
    if (j < s_.size() && s_[j] == '-') ++j;
    if (j < s_.size() && s_[j] == '0') ++j;
    else if (!digits()) return 0;
    if (j < s_.size() && s_[j] == '.') {
      ++j;
      if (!digits()) return 0;
    }
    if (j < s_.size() && (s_[j] == 'e' || s_[j] == 'E')) {
      ++j;
      if (j < s_.size() && (s_[j] == '+' || s_[j] == '-')) ++j;
      if (!digits()) return 0;
    }
    return j - i_;
  }

  void Check(float got, std::string_view text) {
    if (out_->count < dims_ && !out_->mismatch &&
        std::bit_cast<uint32_t>(got) != std::bit_cast<uint32_t>(want_[out_->count])) {
      out_->mismatch = true;
      out_->mismatch_at = out_->count;
      out_->mismatch_text = text.empty() ? fmt::format("{}", got) : std::string(text);
    }
    ++out_->count;
  }

  bool FloatArray() {
    ++i_;  // '['
    SkipSpace();
    if (Eat(']')) return true;
    for (;;) {
      SkipSpace();
      size_t n = NumberLength();
      if (n == 0) return Fail("embedding is not an array of numbers");
      const char* b = s_.data() + i_;
      float got = 0;
      auto r = std::from_chars(b, b + n, got);
      if (r.ec != std::errc() || r.ptr != b + n)
        got = std::numeric_limits<float>::quiet_NaN();  // Out of float range.
      Check(got, std::string_view(b, n));
      i_ += n;
      SkipSpace();
      if (Eat(']')) return true;
      if (!Eat(',')) return Fail("expected ',' or ']' in embedding");
    }
  }

  // A base64 embedding, as the API sends it: raw little-endian float32.
  bool Base64String() {
    size_t start = i_;
    if (!SkipString()) return Fail("unterminated string");
    std::string raw;
    std::string_view text = s_.substr(start + 1, i_ - start - 2);
    if (!fake_base64::Decode(text, &raw) || raw.size() % 4 != 0)
      return Fail("embedding is a string but not base64 of float32 values");
    for (size_t k = 0; k < raw.size(); k += 4) {
      uint32_t bits;
      std::memcpy(&bits, raw.data() + k, 4);
      if constexpr (std::endian::native == std::endian::big) bits = __builtin_bswap32(bits);
      Check(std::bit_cast<float>(bits), {});
    }
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
  const float* want_;
  uint32_t dims_;
  Output* out_;
  std::string* err_ = nullptr;
};

/// Checks one line pair; returns false and fills *err on a mismatch.
bool CheckPair(const Config& c, const std::string& expected_line,
               const std::string& output_line, std::vector<float>* vec,
               std::string* err) {
  rapidjson::Document exp;
  if (!ParseValue(expected_line, &exp) || !exp.IsObject()) {
    *err = "expected file: not a JSON object";
    return false;
  }
  auto id = exp.FindMember("id");
  auto text = exp.FindMember("text");
  if (id == exp.MemberEnd() || text == exp.MemberEnd() || !text->value.IsString()) {
    *err = "expected file: a record needs \"id\" and a string \"text\"";
    return false;
  }
  std::string_view want_text(text->value.GetString(), text->value.GetStringLength());
  vec->resize(c.dims);
  fake_vectors::Compute(c.model, c.dims, want_text, vec->data());

  Output out;
  OutputScanner scanner(output_line, vec->data(), c.dims, &out);
  if (!scanner.Scan(err)) {
    *err = "output: " + *err;
    return false;
  }
  if (out.id.empty()) {
    *err = "output has no \"id\"";
    return false;
  }
  rapidjson::Document got_id;
  ParseValue(out.id, &got_id);  // Validated by the scanner.
  if (got_id != id->value) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    id->value.Accept(w);
    *err = fmt::format("id is {} but expected {}", Shorten(out.id),
                       Shorten(std::string_view(buf.GetString(), buf.GetSize())));
    return false;
  }
  if (!out.has_embedding) {
    *err = "output has no \"embedding\"";
    return false;
  }
  if (out.count != c.dims) {
    *err = fmt::format("embedding has {} floats, expected {}", out.count, c.dims);
    return false;
  }
  if (out.mismatch) {
    float want = (*vec)[out.mismatch_at];
    *err = fmt::format("embedding[{}] is {} but expected {} (float32 bits 0x{:08x}; text {:?})",
                       out.mismatch_at, Shorten(out.mismatch_text), want,
                       std::bit_cast<uint32_t>(want), Shorten(want_text));
    return false;
  }
  return true;
}

struct Batch {
  uint64_t first_line = 0;  // 1-based number of expected[0].
  std::vector<std::string> expected, output;
  uint64_t error_line = 0;  // 0: no error.
  std::string error;
};

/// Runs batches on worker threads and remembers the earliest failing line.
class Checker {
 public:
  Checker(Config config, unsigned threads) : config_(std::move(config)) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }

  /// Queues a batch, waiting while too many are in flight.
  void Add(std::unique_ptr<Batch> b) {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] { return queue_.size() < 2 * workers_.size(); });
    queue_.push_back(std::move(b));
    ready_.notify_one();
  }

  /// True once some line before `line` is known to fail; reading can stop.
  bool FailedBefore(uint64_t line) const { return first_error_.load() < line; }

  /// Waits for all batches; returns the earliest error line (0 if none).
  uint64_t Finish(std::string* error) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      ready_.notify_all();
    }
    for (auto& t : workers_) t.join();
    if (first_error_.load() == UINT64_MAX) return 0;
    *error = error_;
    return first_error_.load();
  }

 private:
  void Work() {
    std::vector<float> vec;
    for (;;) {
      std::unique_ptr<Batch> b;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [&] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;
        b = std::move(queue_.front());
        queue_.pop_front();
        room_.notify_one();
      }
      if (FailedBefore(b->first_line)) continue;
      for (size_t i = 0; i < b->expected.size(); ++i) {
        std::string err;
        if (!CheckPair(config_, b->expected[i], b->output[i], &vec, &err)) {
          Report(b->first_line + i, err);
          break;
        }
      }
    }
  }

  void Report(uint64_t line, const std::string& err) {
    std::lock_guard<std::mutex> lock(mu_);
    if (line < first_error_.load()) {
      first_error_ = line;
      error_ = err;
    }
  }

  const Config config_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable ready_, room_;
  std::deque<std::unique_ptr<Batch>> queue_;
  bool done_ = false;
  std::atomic<uint64_t> first_error_{UINT64_MAX};
  std::string error_;
};

/// Reads one line without its newline; false at end of file.
bool ReadLine(std::FILE* f, std::string* line) {
  line->clear();
  char buf[65536];
  while (std::fgets(buf, sizeof buf, f)) {
    size_t n = std::strlen(buf);
    if (n > 0 && buf[n - 1] == '\n') {
      line->append(buf, n - 1);
      return true;
    }
    line->append(buf, n);
  }
  return !line->empty();
}

}  // namespace

int main(int argc, char** argv) {
  Config config;
  std::string expected_path;
  unsigned threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  bool have_dims = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}", kUsage);
      return 0;
    }
    if (i + 1 >= argc) {
      fmt::print(stderr, "verify_embeddings: {} needs a value\n{}", arg, kUsage);
      return 2;
    }
    std::string value = argv[++i];
    char* end = nullptr;
    if (arg == "--model") {
      config.model = value;
    } else if (arg == "--expected") {
      expected_path = value;
    } else if (arg == "--dims" || arg == "--threads") {
      unsigned long v = std::strtoul(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v == 0 || v > 1000000) {
        fmt::print(stderr, "verify_embeddings: bad {} '{}'\n", arg, value);
        return 2;
      }
      if (arg == "--dims") config.dims = static_cast<uint32_t>(v), have_dims = true;
      else threads = static_cast<unsigned>(v);
    } else {
      fmt::print(stderr, "verify_embeddings: unknown option '{}'\n{}", arg, kUsage);
      return 2;
    }
  }
  if (config.model.empty() || expected_path.empty()) {
    fmt::print(stderr, "{}", kUsage);
    return 2;
  }
  if (!have_dims) config.dims = fake_vectors::NativeDims(config.model);
  if (config.dims == 0) {
    fmt::print(stderr, "verify_embeddings: unknown model '{}'; give --dims\n", config.model);
    return 2;
  }
  std::FILE* expected = std::fopen(expected_path.c_str(), "r");
  if (!expected) {
    fmt::print(stderr, "verify_embeddings: cannot open {}: {}\n", expected_path,
               strerror(errno));
    return 2;
  }

  Checker checker(config, threads);
  uint64_t lines = 0;
  std::string count_error;
  uint64_t count_error_line = 0;
  std::string e, o;
  auto batch = std::make_unique<Batch>();
  batch->first_line = 1;
  for (;;) {
    bool have_e = ReadLine(expected, &e);
    bool have_o = ReadLine(stdin, &o);
    if (!have_e && !have_o) break;
    if (have_e != have_o) {
      count_error_line = lines + 1;
      count_error = have_e ? fmt::format("output ended after {} records; expected has more", lines)
                           : fmt::format("output has more records than the {} expected", lines);
      break;
    }
    ++lines;
    batch->expected.push_back(std::move(e));
    batch->output.push_back(std::move(o));
    if (batch->expected.size() == kBatchLines) {
      checker.Add(std::move(batch));
      if (checker.FailedBefore(lines + 1)) break;
      batch = std::make_unique<Batch>();
      batch->first_line = lines + 1;
    }
  }
  if (batch && !batch->expected.empty()) checker.Add(std::move(batch));
  std::fclose(expected);

  std::string error;
  uint64_t error_line = checker.Finish(&error);
  if (error_line == 0 && count_error_line != 0) {
    error_line = count_error_line;
    error = count_error;
  }
  if (error_line != 0) {
    fmt::print(stderr, "verify_embeddings: line {}: {}\n", error_line, error);
    return 1;
  }
  fmt::print("verified {} records\n", lines);
  return 0;
}
