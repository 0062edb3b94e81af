#include "providers/batch_api.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "app/diag.h"
#include "app/summary.h"
#include "journal/digest.h"
#include "journal/private_file.h"
#include "providers/codec_json.h"

namespace {

// The output file of one job (see BatchFileLimits).
constexpr uint64_t kMaxOutputBytes = 256u << 20;
// Reading a file line by line (to index or split it): this much at a time.
constexpr size_t kReadBytes = 1u << 20;
// Per output line besides the vector: ids, usage, envelope.
constexpr uint64_t kLineOverhead = 400;

std::string GetString(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return "";
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

uint64_t GetUint(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject()) return 0;
  auto it = obj.FindMember(name);
  return it != obj.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
}

bool Parse(std::string_view json, rapidjson::Document* doc, std::string* err) {
  // Iterative, as every parse of a server's reply: one nested 100,000 deep
  // must not exhaust the stack.
  doc->Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc->HasParseError() || !doc->IsObject()) {
    *err = "response is not a JSON object";
    return false;
  }
  return true;
}

// Deeper than any embeddings answer or error body (a handful of levels).
constexpr int kMaxBodyDepth = 64;

// Writes a parsed value back as JSON text, refusing one nested deeper than
// kMaxBodyDepth: Value::Accept recurses once per level, so it is stopped
// there rather than at the end of the stack.
class ShallowWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
 public:
  using Writer::Writer;
  bool StartObject() { return Enter() && Writer::StartObject(); }
  bool StartArray() { return Enter() && Writer::StartArray(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return Writer::EndObject(n);
  }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return Writer::EndArray(n);
  }

 private:
  bool Enter() { return ++depth_ <= kMaxBodyDepth; }
  int depth_ = 0;
};

// Calls fn(line, offset) for each non-empty line of `fd` (without its
// newline) and the file offset where it starts, reading kReadBytes at
// a time. False, with errno set, when a read fails.
template <typename Fn>
bool ForEachLine(int fd, Fn fn) {
  std::string buffer;
  uint64_t base = 0;  // The file offset of buffer[0].
  bool eof = false;
  while (!eof) {
    size_t had = buffer.size();
    buffer.resize(had + kReadBytes);
    ssize_t got = read(fd, buffer.data() + had, kReadBytes);
    if (got < 0 && errno == EINTR) {
      buffer.resize(had);
      continue;
    }
    if (got < 0) return false;
    buffer.resize(had + static_cast<size_t>(got));
    eof = got == 0;
    size_t start = 0;
    while (start < buffer.size()) {
      size_t nl = buffer.find('\n', start);
      if (nl == std::string::npos && !eof) break;  // the rest comes next read
      size_t end = nl == std::string::npos ? buffer.size() : nl;
      std::string_view text(buffer.data() + start, end - start);
      uint64_t offset = base + start;
      start = nl == std::string::npos ? buffer.size() : nl + 1;
      if (!text.empty()) fn(text, offset);
    }
    buffer.erase(0, start);
    base += start;
  }
  return true;
}

// The directory that holds `path`, ending in '/'.
std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "./" : path.substr(0, slash + 1);
}

bool Retryable(const HttpResponse& r) {
  return r.status == 0 || r.status == 408 || r.status == 409 ||
         r.status == 429 || r.status >= 500;
}

}  // namespace

BatchFileLimits LimitsForOutput(int dims, bool base64) {
  BatchFileLimits limits;
  uint64_t d = dims > 0 ? static_cast<uint64_t>(dims) : 3072;
  uint64_t per_input = (base64 ? d * 16 / 3 : d * 12) + kLineOverhead;
  limits.max_inputs = std::min<uint64_t>(limits.max_inputs,
                                         kMaxOutputBytes / per_input);
  return limits;
}

std::string RequestCustomId(const Batch& batch) {
  Sha256 h;
  for (const Record& r : batch.records) {
    h.Update(r.key.data(), r.key.size());
    uint32_t piece[2] = {r.part, r.parts};
    h.Update(piece, sizeof piece);
  }
  Sha256::Digest d = h.Final();
  return "r" + HexDigest(d).substr(0, 32);
}

void AppendRequestLine(std::string_view custom_id, std::string_view body,
                       std::string* out) {
  // custom_id is hex and body is JSON already: nothing needs escaping.
  fmt::format_to(std::back_inserter(*out),
                 "{{\"custom_id\":\"{}\",\"method\":\"POST\",\"url\":"
                 "\"/v1/embeddings\",\"body\":{}}}\n",
                 custom_id, body);
}

bool RequestFileBuilder::Add(std::string custom_id, size_t line_bytes,
                             size_t inputs, uint64_t tokens,
                             RequestFile* closed) {
  bool full = !open_.custom_ids.empty() &&
              (open_.custom_ids.size() + 1 > limits_.max_requests ||
               open_.inputs + inputs > limits_.max_inputs ||
               open_.bytes + line_bytes > limits_.max_bytes ||
               open_.tokens + tokens > limits_.max_tokens);
  if (full) Flush(closed);
  open_.bytes += line_bytes;
  open_.custom_ids.push_back(std::move(custom_id));
  open_.inputs += inputs;
  open_.tokens += tokens;
  return full;
}

bool RequestFileBuilder::Flush(RequestFile* closed) {
  if (open_.custom_ids.empty()) return false;
  *closed = std::move(open_);
  open_ = RequestFile();
  return true;
}

bool BatchJobStatus::Ended() const {
  return status == "completed" || status == "failed" || status == "expired" ||
         status == "cancelled";
}

bool ParseFileObject(std::string_view json, std::string* id, std::string* err) {
  rapidjson::Document doc;
  if (!Parse(json, &doc, err)) return false;
  *id = GetString(doc, "id");
  if (id->empty()) {
    *err = "file object without an id";
    return false;
  }
  return true;
}

bool FindFileNamed(std::string_view list, std::string_view filename,
                   uint64_t bytes, std::string* id, std::string* err) {
  rapidjson::Document doc;
  if (!Parse(list, &doc, err)) return false;
  auto data = doc.FindMember("data");
  if (data == doc.MemberEnd() || !data->value.IsArray()) {
    *err = "file list without data";
    return false;
  }
  id->clear();
  for (const auto& file : data->value.GetArray())
    if (GetString(file, "filename") == filename && GetUint(file, "bytes") == bytes) {
      *id = GetString(file, "id");
      break;
    }
  return true;
}

namespace {

bool ReadBatchObject(const rapidjson::Value& doc, BatchJobStatus* out,
                     std::string* err) {
  *out = BatchJobStatus();
  out->id = GetString(doc, "id");
  out->status = GetString(doc, "status");
  if (out->id.empty() || out->status.empty()) {
    *err = "batch object without an id or status";
    return false;
  }
  out->output_file_id = GetString(doc, "output_file_id");
  out->error_file_id = GetString(doc, "error_file_id");
  auto counts = doc.FindMember("request_counts");
  if (counts != doc.MemberEnd()) {
    out->total = GetUint(counts->value, "total");
    out->completed = GetUint(counts->value, "completed");
    out->failed = GetUint(counts->value, "failed");
  }
  auto errors = doc.FindMember("errors");
  if (errors != doc.MemberEnd() && errors->value.IsObject()) {
    auto data = errors->value.FindMember("data");
    if (data != errors->value.MemberEnd() && data->value.IsArray())
      for (const auto& e : data->value.GetArray()) {
        if (!out->errors.empty()) out->errors += "; ";
        std::string message = GetString(e, "message");
        if (GetString(e, "code") == "token_limit_exceeded") {
          out->queue_full = true;
          out->queue_limit = ParseQueueLimit(message);
        }
        out->errors += message;
      }
  }
  return true;
}

}  // namespace

uint64_t ParseQueueLimit(std::string_view message) {
  constexpr std::string_view kHead = "Limit: ";
  size_t at = message.find(kHead);
  if (at == std::string_view::npos) return 0;
  uint64_t limit = 0;
  bool digits = false;
  for (at += kHead.size(); at < message.size(); ++at) {
    char c = message[at];
    if (c == ',') continue;
    if (c < '0' || c > '9') break;
    if (limit > (UINT64_MAX - 9) / 10) return 0;
    limit = limit * 10 + static_cast<uint64_t>(c - '0');
    digits = true;
  }
  return digits && message.substr(at).starts_with(" enqueued tokens") ? limit : 0;
}

QueueVerdict QueueRule(uint64_t tokens, uint64_t enqueued, uint64_t limit) {
  // Waiting for ours to end would not make it fit.
  if (limit && tokens > limit) return QueueVerdict::kSplit;
  return limit == 0 || enqueued + tokens <= limit ? QueueVerdict::kCreate
                                                  : QueueVerdict::kWait;
}

bool ParseBatchObject(std::string_view json, BatchJobStatus* out,
                      std::string* err) {
  rapidjson::Document doc;
  return Parse(json, &doc, err) && ReadBatchObject(doc, out, err);
}

bool FindBatchOfFile(std::string_view list, std::string_view file_id,
                     BatchJobStatus* out, std::string* err) {
  rapidjson::Document doc;
  if (!Parse(list, &doc, err)) return false;
  auto data = doc.FindMember("data");
  if (data == doc.MemberEnd() || !data->value.IsArray()) {
    *err = "batch list without data";
    return false;
  }
  *out = BatchJobStatus();
  for (const auto& batch : data->value.GetArray()) {
    if (GetString(batch, "input_file_id") != file_id) continue;
    if (!ReadBatchObject(batch, out, err)) return false;
    // A refused job ran nothing; the file's job, if any, is another.
    if (!out->queue_full) return true;
    *out = BatchJobStatus();
  }
  return true;
}

bool ParseResultLine(std::string_view line, ResultLine* out, std::string* err) {
  rapidjson::Document doc;
  if (!Parse(line, &doc, err)) return false;
  *out = ResultLine();
  out->custom_id = GetString(doc, "custom_id");
  if (out->custom_id.empty()) {
    *err = "result line without a custom_id";
    return false;
  }
  auto response = doc.FindMember("response");
  if (response != doc.MemberEnd() && response->value.IsObject()) {
    auto code = response->value.FindMember("status_code");
    if (code != response->value.MemberEnd() && code->value.IsInt())
      out->status_code = code->value.GetInt();
    auto body = response->value.FindMember("body");
    if (body != response->value.MemberEnd() && body->value.IsObject()) {
      rapidjson::StringBuffer buffer;
      ShallowWriter w(buffer);
      if (!body->value.Accept(w)) {
        *err = fmt::format(
            "result line's response body is nested over {} levels deep",
            kMaxBodyDepth);
        return false;
      }
      out->body.assign(buffer.GetString(), buffer.GetSize());
      auto e = body->value.FindMember("error");
      if (e != body->value.MemberEnd()) out->error = GetString(e->value, "message");
    }
  }
  auto e = doc.FindMember("error");
  if (e != doc.MemberEnd() && e->value.IsObject()) {
    std::string message = GetString(e->value, "message");
    if (!message.empty()) out->error = message;
  }
  return true;
}

int64_t PollDelayMs(int polls) {
  constexpr int64_t kFirst = 250, kMax = 60000;
  return polls >= 8 ? kMax : std::min(kMax, kFirst << polls);
}

std::string MultipartHead(std::string_view boundary, std::string_view filename) {
  return fmt::format(
      "--{0}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n"
      "batch\r\n--{0}\r\nContent-Disposition: form-data; name=\"file\"; "
      "filename=\"{1}\"\r\nContent-Type: application/jsonl\r\n\r\n",
      boundary, filename);
}

std::string MultipartTail(std::string_view boundary) {
  return fmt::format("\r\n--{}--\r\n", boundary);
}

std::string FormatStoredJobs(const std::vector<StoredJob>& jobs) {
  std::string out;
  for (const StoredJob& j : jobs) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("file_id");
    w.String(j.file_id.data(), j.file_id.size());
    w.Key("batch_id");
    w.String(j.batch_id.data(), j.batch_id.size());
    w.Key("custom_ids");
    w.StartArray();
    for (const std::string& id : j.custom_ids) w.String(id.data(), id.size());
    w.EndArray();
    w.EndObject();
    out.append(buffer.GetString(), buffer.GetSize());
    out += '\n';
  }
  return out;
}

bool ParseStoredJobs(std::string_view text, std::vector<StoredJob>* jobs,
                     std::string* err) {
  jobs->clear();
  size_t line_number = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_number;
    rapidjson::Document doc;
    StoredJob job;
    bool ok = Parse(line, &doc, err);
    if (ok) {
      job.file_id = GetString(doc, "file_id");
      job.batch_id = GetString(doc, "batch_id");
      auto ids = doc.FindMember("custom_ids");
      ok = !job.file_id.empty() && ids != doc.MemberEnd() && ids->value.IsArray();
      for (size_t i = 0; ok && i < ids->value.Size(); ++i) {
        ok = ids->value[i].IsString();
        if (ok) job.custom_ids.emplace_back(ids->value[i].GetString());
      }
    }
    if (!ok) {
      *err = fmt::format("line {} is not a batch job record", line_number);
      return false;
    }
    jobs->push_back(std::move(job));
  }
  return true;
}

BatchApiRunner::BatchApiRunner(Transport* transport, const Clock* clock,
                               const Codec* codec, BatchApiConfig config)
    : transport_(transport), clock_(clock), codec_(codec),
      config_(std::move(config)), builder_(config_.limits) {}

BatchApiRunner::~BatchApiRunner() {
  if (upload_fd_ >= 0) close(upload_fd_);
  for (Job& job : jobs_)
    for (int fd : job.result_fds)
      if (fd >= 0) close(fd);
}

std::string BatchApiRunner::UploadPath(size_t n) const {
  return fmt::format("{}.upload-{}", config_.state_path, n);
}

std::string BatchApiRunner::ResultPath(size_t n, bool error_file) const {
  return fmt::format("{}.{}-{}", config_.state_path,
                     error_file ? "errors" : "output", n);
}

bool BatchApiRunner::Load(std::string* err) {
  int fd = open(config_.state_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return true;
    *err = fmt::format("cannot read {}: {}", config_.state_path, std::strerror(errno));
    return false;
  }
  std::string text;
  char buf[1 << 16];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  int read_errno = errno;
  close(fd);
  std::vector<StoredJob> stored;
  if (n < 0 || !ParseStoredJobs(text, &stored, err)) {
    if (n < 0) *err = std::strerror(read_errno);
    *err = fmt::format("cannot read {}: {}", config_.state_path, *err);
    return false;
  }
  for (StoredJob& s : stored) {
    Job job;
    // Without a job id, POST /batches may still have reached the server.
    job.stage = s.batch_id.empty() ? Stage::kFindJob : Stage::kPoll;
    job.stored = std::move(s);
    // (Its tokens are counted as this run submits its requests.)
    for (const std::string& id : job.stored.custom_ids)
      stored_owner_[id] = jobs_.size();
    diag::Info(fmt::format(
        "resuming batch job {} ({}) from {}",
        job.stored.batch_id.empty() ? job.stored.file_id : job.stored.batch_id,
        CountNoun(job.stored.custom_ids.size(), "request", "requests"),
        config_.state_path));
    jobs_.push_back(std::move(job));
  }
  return true;
}

void BatchApiRunner::Submit(Batch batch) {
  if (replaying_) {
    ++outstanding_;
    BatchResult result;
    result.batch = std::move(batch);
    Answer(&result);
    results_.push_back(std::move(result));
    return;
  }
  std::string id = RequestCustomId(batch);
  // The pipeline sends each text once; the same request twice goes once.
  auto [at, added] = places_.try_emplace(id);
  if (!added) return;
  ++outstanding_;
  Place& place = at->second;
  auto owner = stored_owner_.find(id);
  if (owner != stored_owner_.end()) {
    place.job = static_cast<uint32_t>(owner->second);
    ++jobs_[owner->second].wanted;
    jobs_[owner->second].tokens += batch.tokens;
    return;
  }
  line_.clear();
  AppendRequestLine(id, codec_->EncodeRequest(batch).body, &line_);
  place.inputs = static_cast<uint16_t>(
      std::min<size_t>(batch.records.size(), UINT16_MAX));
  place.tokens = static_cast<uint32_t>(std::min<uint64_t>(batch.tokens, UINT32_MAX));
  AddLine(id, &place);
}

// Adds line_, the request line of `custom_id`, to the upload files.
void BatchApiRunner::AddLine(const std::string& custom_id, Place* place) {
  RequestFile closed;
  if (builder_.Add(custom_id, line_.size(), place->inputs, place->tokens, &closed))
    NewJob(std::move(closed));
  place->job = static_cast<uint32_t>(jobs_.size());
  if (!WriteLine(line_) && fatal_message_.empty())
    fatal_message_ = fmt::format("cannot write {}: {}", UploadPath(jobs_.size()),
                                 std::strerror(errno));
}

// Appends line_ to the open upload file, opening it first if need be.
bool BatchApiRunner::WriteLine(const std::string& line) {
  if (!fatal_message_.empty()) return true;  // said already
  // It holds the input's texts; a run killed before its upload left it.
  if (upload_fd_ < 0) upload_fd_ = OpenPrivateFile(UploadPath(jobs_.size()));
  if (upload_fd_ < 0) return false;
  upload_hash_.Update(line);
  return WriteAll(upload_fd_, line);
}

void BatchApiRunner::NewJob(RequestFile file) {
  // Sent from the disk; a crash before its upload starts the file anew.
  if (upload_fd_ >= 0 && close(upload_fd_) != 0 && fatal_message_.empty())
    fatal_message_ = fmt::format("cannot write {}: {}", UploadPath(jobs_.size()),
                                 std::strerror(errno));
  upload_fd_ = -1;
  Job job;
  // Named by its content, so that a rerun can find the file an upload
  // whose answer was lost stored (GET /files).
  job.name = "embedpipe-" + HexDigest(upload_hash_.Final()).substr(0, 32);
  upload_hash_ = Sha256();
  job.inputs = file.inputs;
  job.bytes = file.bytes;
  job.tokens = file.tokens;
  job.local = true;
  job.stored.custom_ids = std::move(file.custom_ids);
  job.wanted = job.stored.custom_ids.size();
  jobs_.push_back(std::move(job));
}

void BatchApiRunner::EndInput() {
  RequestFile last;
  if (builder_.Flush(&last)) NewJob(std::move(last));
  input_ended_ = true;
  for (Job& job : jobs_) {
    if (job.wanted > 0 || job.stage == Stage::kDone) continue;
    // Its texts were all answered from the checkpoint, or the input changed.
    diag::Warning(fmt::format(
        "batch job {} of an earlier run holds none of this input's requests; "
        "left as it is",
        job.stored.batch_id.empty() ? job.stored.file_id : job.stored.batch_id));
    job.stage = Stage::kDone;
  }
}

void BatchApiRunner::StopStarting() {
  if (stopped_) return;
  stopped_ = true;
  for (const Job& job : jobs_)
    if (job.stage != Stage::kDone && !job.stored.batch_id.empty() &&
        !job.status.queue_full)
      diag::Info(fmt::format("batch {} goes on at the server; the same command "
                             "with the same --checkpoint collects it",
                             job.stored.batch_id));
}

HttpRequest BatchApiRunner::MakeRequest(const Job& job, size_t index) const {
  HttpRequest r;
  if (!config_.api_key.empty())
    r.headers.push_back("Authorization: Bearer " + config_.api_key);
  switch (job.stage) {
    case Stage::kFindFile:
      // Newest first: a file uploaded moments ago is on the first page.
      r.method = "GET";
      r.url = JoinUrl(config_.base_url, "/files?purpose=batch&limit=100");
      break;
    case Stage::kUpload:
      // A delimiter is CR LF, "--" and the boundary, and the file's JSON
      // lines hold no CR (JSON escapes it in strings), so no boundary can
      // occur in them; the name differs per file all the same.
      r.url = JoinUrl(config_.base_url, "/files");
      r.headers.push_back("Content-Type: multipart/form-data; boundary=" + job.name);
      r.headers.push_back("Expect:");
      r.body = MultipartHead(job.name, job.name + ".jsonl");
      r.body_file = UploadPath(index);
      r.body_end = MultipartTail(job.name);
      break;
    case Stage::kFindJob:
      // Newest first: a job created moments ago is on the first page.
      r.method = "GET";
      r.url = JoinUrl(config_.base_url, "/batches?limit=100");
      break;
    case Stage::kCreate:
      r.url = JoinUrl(config_.base_url, "/batches");
      r.headers.push_back("Content-Type: application/json");
      r.body = fmt::format(
          "{{\"input_file_id\":\"{}\",\"endpoint\":\"/v1/embeddings\","
          "\"completion_window\":\"24h\",\"metadata\":{{\"created_by\":"
          "\"embedpipe\"}}}}",
          job.stored.file_id);
      break;
    case Stage::kPoll:
      r.method = "GET";
      r.url = JoinUrl(config_.base_url, "/batches/" + job.stored.batch_id);
      break;
    case Stage::kOutput:
    case Stage::kErrors:
      r.method = "GET";
      r.response_file = ResultPath(index, job.stage == Stage::kErrors);
      r.url = JoinUrl(config_.base_url,
                      "/files/" +
                          (job.stage == Stage::kOutput ? job.status.output_file_id
                                                       : job.status.error_file_id) +
                          "/content");
      break;
    case Stage::kDone:
      break;
  }
  return r;
}

void BatchApiRunner::StartDue(int64_t now) {
  if (stopped_ || fatal()) return;
  for (size_t i = 0; i < jobs_.size(); ++i) {
    Job& job = jobs_[i];
    if (job.stage == Stage::kOutput && job.status.output_file_id.empty())
      job.stage = Stage::kErrors;
    if (job.stage == Stage::kErrors && job.status.error_file_id.empty() &&
        input_ended_)
      EndJob(&job);
    bool downloading = job.stage == Stage::kOutput || job.stage == Stage::kErrors;
    // Results are matched to requests only once every request is known.
    if (job.busy || job.stage == Stage::kDone || now < job.not_before_ms ||
        (downloading && !input_ended_) || Blocked(job))
      continue;
    if (job.stage == Stage::kCreate &&
        QueueRule(job.tokens, Enqueued(), queue_limit_) == QueueVerdict::kSplit) {
      Split(i);  // new jobs go at the end, started later in this loop
      continue;
    }
    job.busy = true;
    ++http_requests_;
    HttpRequest request = MakeRequest(job, i);
    // A 200 with an empty body writes no file: none must be left from a
    // run killed before, to be taken for this one's.
    if (!request.response_file.empty()) unlink(request.response_file.c_str());
    transport_->Start(i, std::move(request));
  }
}

int64_t BatchApiRunner::NextDueMs() const {
  int64_t due = -1;
  for (const Job& job : jobs_)
    if (!job.busy && job.stage != Stage::kDone && !Blocked(job) &&
        (due < 0 || job.not_before_ms < due))
      due = job.not_before_ms;
  return due;
}

// The tokens of this run's jobs that the queue holds: created (or being
// created, or maybe found created) and not ended.
uint64_t BatchApiRunner::Enqueued() const {
  uint64_t tokens = 0;
  for (const Job& job : jobs_) {
    bool running = job.stage == Stage::kPoll
                       ? !job.status.Ended()
                       : (job.stage == Stage::kCreate || job.stage == Stage::kFindJob) &&
                             job.busy;
    if (running) tokens += job.tokens;
  }
  return tokens;
}

// Whether `job` must not be created yet, for the batch queue: it was
// refused and none of this run's jobs ended since, or with the limit known
// the queue cannot take it until one does. A file to split waits for the
// end of the input (its new files take the next upload file numbers).
bool BatchApiRunner::Blocked(const Job& job) const {
  if (job.stage != Stage::kCreate) return false;
  uint64_t enqueued = Enqueued();
  QueueVerdict verdict = QueueRule(job.tokens, enqueued, queue_limit_);
  if (verdict == QueueVerdict::kSplit) return !input_ended_;
  if (job.refused && ends_ == job.ends_seen && enqueued > 0) return true;
  return verdict == QueueVerdict::kWait;
}

// Whether the file of `job` can be split: its lines are this run's, on
// disk, and more than one (one request would only be split into itself).
bool BatchApiRunner::Splittable(const Job& job) const {
  return job.local && job.stored.custom_ids.size() > 1;
}

// The job was refused for a full queue (job->status says so): its file is
// kept and a job is created for it again, once one of this run's jobs has
// ended, or when none runs (others' jobs fill the queue) after a wait.
void BatchApiRunner::Refused(Job* job, int64_t now) {
  const BatchJobStatus& s = job->status;
  if (s.queue_limit) {
    queue_limit_ = s.queue_limit;
    builder_.set_max_tokens(queue_limit_);
  }
  job->refused = true;
  // One of this run's jobs ended since the last refusal: the queue moved,
  // so the waits start short again.
  if (job->ends_seen != ends_) job->queue_waits = 0;
  job->ends_seen = ends_;
  job->polls = 0;
  // A run killed after it created the job again, before the sidecar said
  // so, left a live job: look for it first (the list leaves out refused
  // ones).
  job->stage = Stage::kFindJob;
  job->not_before_ms = now;
  std::string then = fmt::format("a job is created for {} again once one of "
                                 "this run's jobs ends", job->stored.file_id);
  if (QueueRule(job->tokens, 0, queue_limit_) == QueueVerdict::kSplit) {
    then = Splittable(*job) ? "its file alone is over the limit: it is split"
           : job->local     ? "its file is one request over the limit: it is rejected"
                            : "its file, of an earlier run, is over the limit: its requests "
                              "are rejected, and the same command sends them again";
  } else if (Enqueued() == 0) {
    int64_t wait = PollDelayMs(++job->queue_waits);
    job->not_before_ms = now + wait;
    then = fmt::format("a job is created for {} again in {:.1f} s (the queue "
                       "holds other jobs)",
                       job->stored.file_id, static_cast<double>(wait) / 1000);
  }
  diag::Info(fmt::format("batch {} refused, the batch queue is full: {}; {}",
                         s.id, s.errors, then));
}

// The upload file of `job` goes: its job runs (or the file was split).
void BatchApiRunner::DropUpload(Job* job) {
  if (!job->local) return;
  job->local = false;
  unlink(UploadPath(static_cast<size_t>(job - jobs_.data())).c_str());
}

// Splits the file of job number `index`, over the batch queue limit alone,
// at request lines into files within it, which become new jobs; the old
// one is dropped (from the sidecar too).
void BatchApiRunner::Split(size_t index) {
  std::string path = UploadPath(index);
  size_t first = jobs_.size();
  bool splittable = Splittable(jobs_[index]);
  if (splittable) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fatal_message_ = fmt::format("cannot read {}: {}", path, std::strerror(errno));
      return;
    }
    // The lines are this run's own (AppendRequestLine), each of a request
    // it submitted.
    constexpr std::string_view kHead = "{\"custom_id\":\"";
    bool ours = true;
    bool read_ok = ForEachLine(fd, [&](std::string_view text, uint64_t) {
      size_t end = text.find('"', kHead.size());
      auto place = ours && text.starts_with(kHead) && end != std::string_view::npos
                       ? places_.find(std::string(text.substr(kHead.size(), end - kHead.size())))
                       : places_.end();
      if (place == places_.end()) {
        ours = false;
        return;
      }
      line_.assign(text);
      line_ += '\n';
      AddLine(place->first, &place->second);
    });
    int read_errno = errno;
    close(fd);
    if (!read_ok || !ours) {
      fatal_message_ = read_ok ? fmt::format("{} holds a line this run did not write", path)
                               : fmt::format("cannot read {}: {}", path,
                                             std::strerror(read_errno));
      return;
    }
    RequestFile last;
    if (builder_.Flush(&last)) NewJob(std::move(last));
  }
  Job& job = jobs_[index];
  if (!splittable) {
    // One request, or a file of an earlier run, whose lines are not on
    // disk: its requests fail as the job did, and the sidecar forgets it,
    // so that the same command sends the latter again in files within the
    // limit.
    diag::Error(fmt::format(
        "batch {} failed: {}; its file {} alone holds {} tokens, more than the "
        "limit, and {}: its {} rejected{}",
        job.status.id, job.status.errors, job.stored.file_id,
        GroupThousands(job.tokens),
        job.local ? "is one request" : "is of an earlier run, whose lines are not at hand to split",
        CountNoun(job.wanted, "request is", "requests are"),
        job.local ? "" : ", and the same command with the same --checkpoint sends them "
                         "again in smaller files"));
    job.stage = Stage::kOutput;  // no files: nothing to download
    DropUpload(&job);
  } else {
    diag::Info(fmt::format(
        "{} holds {} tokens, more than the batch queue's {}: split into {} files",
        job.stored.file_id, GroupThousands(job.tokens), GroupThousands(queue_limit_),
        jobs_.size() - first));
    job.stage = Stage::kDone;
    job.wanted = 0;
    DropUpload(&job);
  }
  job.refused = false;
  job.stored.file_id.clear();
  job.stored.batch_id.clear();
  SaveState();
}

void BatchApiRunner::Step(int max_wait_ms, int watch_fd, bool* fd_ready) {
  int64_t now = clock_->NowMs();
  StartDue(now);
  int wait = max_wait_ms;
  int64_t due = NextDueMs();
  if (transport_->active() == 0 && due >= 0 && !stopped_)
    wait = static_cast<int>(std::clamp<int64_t>(due - now, 0, max_wait_ms));
  transport_->Wait(wait, watch_fd, fd_ready);
  uint64_t tag;
  HttpResponse response;
  while (transport_->NextFinished(&tag, &response)) Finished(tag, response);
}

void BatchApiRunner::Finished(size_t index, const HttpResponse& response) {
  Job& job = jobs_[index];
  job.busy = false;
  std::string err;
  if (response.status == 200) {
    if (Advance(&job, response.body, &err)) {
      job.failures = 0;
      return;
    }
  } else if (!Retryable(response)) {
    fatal_message_ = response.status
                         ? fmt::format("HTTP {}: {}", response.status,
                                       codec_->ParseError(response).message)
                         : response.transport_error;
    // A job kept from an earlier run that the server does not know (another
    // key or account, or deleted) cannot be resumed.
    if (response.status == 404 && job.stage == Stage::kPoll)
      fatal_message_ += fmt::format(" (remove {} to upload anew)", config_.state_path);
    return;
  } else {
    err = response.status ? fmt::format("HTTP {}", response.status)
                          : response.transport_error;
  }
  // A POST without a readable answer may have made its file or job: look
  // for it before making another.
  if (job.stage == Stage::kUpload) job.stage = Stage::kFindFile;
  if (job.stage == Stage::kCreate) job.stage = Stage::kFindJob;
  if (++job.failures >= config_.max_attempts) {
    fatal_message_ = fmt::format("Batch API call failed {} times: {}",
                                 job.failures, err);
    return;
  }
  // 0.5 s, doubling to a minute: the same schedule as polling, shifted.
  job.not_before_ms = clock_->NowMs() + PollDelayMs(job.failures + 1);
}

// Moves `job` on with a 200 answer's `body`. False, with *err, when the
// body could not be read: the job stays where it was, to be retried.
bool BatchApiRunner::Advance(Job* job, const std::string& body,
                             std::string* err) {
  int64_t now = clock_->NowMs();
  switch (job->stage) {
    case Stage::kFindFile:
    case Stage::kUpload: {
      bool found = job->stage == Stage::kFindFile;
      if (found) {
        if (!FindFileNamed(body, job->name + ".jsonl", job->bytes,
                           &job->stored.file_id, err))
          return false;
        if (job->stored.file_id.empty()) {
          job->stage = Stage::kUpload;
          return true;
        }
      } else {
        if (!ParseFileObject(body, &job->stored.file_id, err)) return false;
        ++uploads_;
      }
      diag::Info(fmt::format(
          "{} {} ({}, {}) as {}", found ? "found uploaded already" : "uploaded",
          CountNoun(job->stored.custom_ids.size(), "request", "requests"),
          CountNoun(job->inputs, "input", "inputs"),
          CountNoun(job->bytes, "byte", "bytes"),
          job->stored.file_id));
      // A file found may have its job already.
      job->stage = found ? Stage::kFindJob : Stage::kCreate;
      // The sidecar names it; the upload file stays until its job runs.
      SaveState();
      return true;
    }
    case Stage::kFindJob:
    case Stage::kCreate: {
      BatchJobStatus status;
      if (job->stage == Stage::kFindJob) {
        if (!FindBatchOfFile(body, job->stored.file_id, &status, err)) return false;
        if (status.id.empty()) {
          job->stage = Stage::kCreate;
          return true;
        }
      } else if (!ParseBatchObject(body, &status, err)) {
        return false;
      }
      const char* how = job->stage == Stage::kFindJob ? "found" : "created";
      job->stored.batch_id = status.id;
      job->status = status;
      // (queue_waits stays: a refusal comes only after a creation, so the
      // wait would never grow.)
      job->refused = false;
      job->stage = Stage::kPoll;
      job->not_before_ms = now + PollDelayMs(0);
      SaveState();
      diag::Info(fmt::format("batch {} {} for {}", status.id, how, job->stored.file_id));
      return true;
    }
    case Stage::kPoll: {
      BatchJobStatus status;
      if (!ParseBatchObject(body, &status, err)) return false;
      if (status.status != job->status.status ||
          status.completed != job->status.completed ||
          status.failed != job->status.failed)
        diag::Info(fmt::format(
            "batch {}: {}, {} of {} requests done, {} failed", status.id,
            status.status, GroupThousands(status.completed),
            GroupThousands(status.total), GroupThousands(status.failed)));
      job->status = std::move(status);
      if (job->status.queue_full) {
        Refused(job, now);
        return true;
      }
      if (job->status.status != "validating") DropUpload(job);
      if (job->status.Ended()) {
        ++ends_;
        ReportEnd(*job);
        job->stage = Stage::kOutput;
      } else {
        job->not_before_ms = now + PollDelayMs(++job->polls);
      }
      return true;
    }
    case Stage::kOutput:
      Index(job, false);
      job->stage = Stage::kErrors;
      return true;
    case Stage::kErrors:
      Index(job, true);
      EndJob(job);
      return true;
    case Stage::kDone:
      break;
  }
  return true;
}

// Notes where each line of the job's downloaded output or error file lies,
// for the requests of this run that no line before answered.
void BatchApiRunner::Index(Job* job, bool error_file) {
  size_t n = static_cast<size_t>(job - jobs_.data());
  std::string path = ResultPath(n, error_file);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return;  // an empty body wrote none
  if (fd < 0) {
    fatal_message_ = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return;
  }
  uint64_t unreadable = 0;
  ResultLine line;
  std::string err;
  bool read_ok = ForEachLine(fd, [&](std::string_view text, uint64_t offset) {
    if (!ParseResultLine(text, &line, &err)) {
      ++unreadable;
      return;
    }
    auto it = places_.find(line.custom_id);
    // Not this run's, or answered already by an earlier line.
    if (it == places_.end() || it->second.found != Found::kNowhere) return;
    it->second.found = error_file ? Found::kErrors : Found::kOutput;
    it->second.offset = offset;
    it->second.length = static_cast<uint32_t>(text.size());
  });
  if (!read_ok)
    fatal_message_ = fmt::format("cannot read {}: {}", path, std::strerror(errno));
  close(fd);
  if (unreadable)
    diag::Warning(fmt::format(
        "{} in the {} file of batch {}",
        CountNoun(unreadable, "unreadable line", "unreadable lines"),
        error_file ? "error" : "output", job->status.id));
}

void BatchApiRunner::Replay() {
  replaying_ = true;
  outstanding_ = 0;
  for (size_t n = 0; n < jobs_.size(); ++n)
    for (int e = 0; e < 2; ++e) {
      bool wanted = e ? !jobs_[n].status.error_file_id.empty()
                      : !jobs_[n].status.output_file_id.empty();
      if (!wanted || jobs_[n].wanted == 0) continue;
      jobs_[n].result_fds[e] = open(ResultPath(n, e).c_str(), O_RDONLY | O_CLOEXEC);
    }
}

// Fills *result, whose batch is set, from the result line of its request.
void BatchApiRunner::Answer(BatchResult* result) {
  auto it = places_.find(RequestCustomId(result->batch));
  if (it == places_.end()) {
    result->status = BatchResult::kFailed;
    result->error = "no batch job of this run holds the request (did the input "
                    "change while it ran?)";
    return;
  }
  const Place& place = it->second;
  const Job& job = jobs_[place.job];
  if (place.found == Found::kNowhere) {
    // Neither file answered it: it fails with the job's status.
    result->status = BatchResult::kFailed;
    result->error = fmt::format("batch {} ended {} without an answer{}{}",
                                job.status.id, job.status.status,
                                job.status.errors.empty() ? "" : ": ",
                                job.status.errors);
    return;
  }
  int fd = job.result_fds[place.found == Found::kErrors ? 1 : 0];
  std::string text(place.length, '\0');
  ResultLine line;
  std::string err;
  ssize_t got = fd < 0 ? -1 : pread(fd, text.data(), text.size(),
                                    static_cast<off_t>(place.offset));
  if (got != static_cast<ssize_t>(text.size()) ||
      !ParseResultLine(text, &line, &err)) {
    // Read and parsed a moment ago: only a file changed under the run.
    result->status = BatchResult::kFailed;
    result->error = fmt::format("cannot read the result of batch {} from {}",
                                job.status.id, config_.state_path);
    return;
  }
  Resolve(job, &line, result);
}

// Turns `line`, the result line of result->batch's request in `job`, into
// *result.
void BatchApiRunner::Resolve(const Job& job, ResultLine* line,
                             BatchResult* result) const {
  std::string err;
  if (line->status_code == 200 && !line->body.empty()) {
    HttpResponse response;
    response.status = 200;
    response.body = std::move(line->body);
    if (codec_->DecodeResponse(response, result->batch, &result->embeddings, &err)) {
      result->status = BatchResult::kEmbedded;
    } else {
      result->status = BatchResult::kFailed;
      result->error = "bad response in batch " + job.status.id + ": " + err;
    }
    return;
  }
  // A lone record's refusal is about its text; a request of several says
  // nothing about which one, and a line with no response (the job expired
  // or was cancelled first, the call timed out) about none.
  result->status = result->batch.records.size() == 1 && line->status_code != 0
                       ? BatchResult::kRejected
                       : BatchResult::kFailed;
  result->error = !line->error.empty() ? line->error
                  : line->status_code
                      ? fmt::format("HTTP {} in batch {}", line->status_code, job.status.id)
                      : "no response in batch " + job.status.id;
}

// Says how a job that did not complete ended, and what became of its
// requests. The rule for an expired or cancelled job: what it finished is
// kept (journaled and written), the rest is rejected, and the same command
// with the same --checkpoint sends only the rest, in a new job.
void BatchApiRunner::ReportEnd(const Job& job) const {
  const BatchJobStatus& s = job.status;
  if (s.status == "completed") return;
  if (s.status == "failed") {
    diag::Error(fmt::format(
        "batch {} failed{}{}: its {} rejected", s.id,
        s.errors.empty() ? "" : ": ", s.errors,
        CountNoun(job.wanted, "request is", "requests are")));
    return;
  }
  // embedpipe never cancels a job: a cancelled one was cancelled elsewhere
  // (the dashboard, another client).
  diag::Warning(fmt::format(
      "batch {} {} with {} of {} requests completed; the others are rejected, "
      "and the same command with the same --checkpoint sends only those",
      s.id,
      s.status == "expired" ? "expired" : "was cancelled (not by embedpipe)",
      GroupThousands(s.completed), GroupThousands(s.total)));
}

BatchJobCounts BatchApiRunner::JobCounts() const {
  BatchJobCounts counts;
  // Every status, in the order a job goes through them; one the API adds
  // later goes at the end. "resumed": kept from an earlier run, not yet
  // polled.
  for (const char* status :
       {"resumed", "refused", "validating", "in_progress", "finalizing", "cancelling",
        "completed", "failed", "expired", "cancelled"})
    counts.states.emplace_back(status, 0);
  for (const Job& job : jobs_) {
    // Only jobs this run acts on; a job of an earlier run that holds none
    // of its requests is left alone.
    if (job.stored.batch_id.empty() || job.wanted == 0) continue;
    ++counts.jobs;
    // "refused": its job failed for a full queue; another is to come.
    std::string status = job.status.status.empty() ? "resumed"
                         : job.status.queue_full   ? "refused"
                                                   : job.status.status;
    auto at = std::find_if(counts.states.begin(), counts.states.end(),
                           [&](const auto& s) { return s.first == status; });
    if (at == counts.states.end()) at = counts.states.emplace(at, status, 0);
    ++at->second;
    counts.total += job.status.total;
    counts.completed += job.status.completed;
    counts.failed += job.status.failed;
  }
  std::erase_if(counts.states, [](const auto& s) { return s.second == 0; });
  return counts;
}

// The job's results are on disk and indexed: its requests are no longer
// waited for. (Those neither file answered fail with the job's status when
// they are answered: Answer.)
void BatchApiRunner::EndJob(Job* job) {
  job->stage = Stage::kDone;
  outstanding_ -= job->wanted;
}

bool BatchApiRunner::NextResult(BatchResult* out) {
  if (results_.empty()) return false;
  *out = std::move(results_.front());
  results_.pop_front();
  --outstanding_;
  return true;
}

void BatchApiRunner::SaveState() {
  std::vector<StoredJob> stored;
  for (const Job& job : jobs_)
    if (!job.stored.file_id.empty()) stored.push_back(job.stored);
  std::string text = FormatStoredJobs(stored);
  std::string tmp = config_.state_path + ".tmp";
  // Private as the journal: part of the same checkpoint, it names the files
  // that hold the input's texts.
  int fd = OpenPrivateFile(tmp);
  bool ok = fd >= 0 && WriteAll(fd, text);
  ok = ok && fsync(fd) == 0;
  if (fd >= 0) ok = close(fd) == 0 && ok;
  ok = ok && rename(tmp.c_str(), config_.state_path.c_str()) == 0;
  if (ok) {
    // The rename itself must survive a crash.
    std::string dir = DirectoryOf(config_.state_path);
    int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ok = dfd >= 0 && fsync(dfd) == 0;
    if (dfd >= 0) close(dfd);
  }
  if (!ok) {
    fatal_message_ = fmt::format("cannot write {}: {}", config_.state_path,
                                 std::strerror(errno));
    // The last whole sidecar stays; a half-written temporary file goes.
    unlink(tmp.c_str());
  }
}

bool BatchApiRunner::Forget(std::string* err) {
  // Every numbered file beside the sidecar goes, not only those of this
  // run's job numbers: a killed run may have numbered its jobs otherwise
  // (the sidecar keeps no job without a file id), and left upload files,
  // which hold the input's texts, as do the pipeline's spills of piped
  // inputs (`.input-N`), which a killed run with more inputs left.
  std::string dir = DirectoryOf(config_.state_path);
  // The sidecar's own name (npos + 1 is 0: no directory part).
  std::string prefix = config_.state_path.substr(config_.state_path.rfind('/') + 1);
  DIR* listing = opendir(dir.c_str());
  if (!listing) {
    *err = fmt::format("cannot list {}: {}", dir, std::strerror(errno));
    return false;
  }
  std::vector<std::string> numbered;
  while (const dirent* entry = readdir(listing)) {
    std::string_view name = entry->d_name;
    if (!name.starts_with(prefix)) continue;
    name.remove_prefix(prefix.size());
    // The kinds of UploadPath and ResultPath, and the spills, with a number.
    for (std::string_view kind : {".upload-", ".output-", ".errors-", ".input-"}) {
      if (!name.starts_with(kind) || name.size() == kind.size()) continue;
      std::string_view n = name.substr(kind.size());
      if (std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }))
        numbered.push_back(dir + entry->d_name);
    }
  }
  closedir(listing);
  for (const std::string& path : numbered) unlink(path.c_str());
  if (unlink(config_.state_path.c_str()) == 0 || errno == ENOENT) return true;
  *err = fmt::format("cannot remove {}: {}", config_.state_path, std::strerror(errno));
  return false;
}
