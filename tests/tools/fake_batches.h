// The Batch API half of fake_provider: POST /v1/files (multipart, purpose
// "batch"), GET /v1/files (newest first), GET /v1/files/{id}/content, POST
// /v1/batches (embeddings only, 24h window), GET /v1/batches (newest first)
// and GET /v1/batches/{id}. A job moves validating -> in_progress ->
// completed on a fast clock (--batch-delay-ms per stage);
// its output file holds one line per request in a shuffled order, each body
// made by the provider's own /embeddings answer, so vectors verify as usual;
// --batch-fail-every N moves every Nth request of a file to the error file
// (a 400 response), --batch-error-every N every Nth as a line with no
// response and an `error` (request_timeout).
//
// --batch-end picks the job's end state, with the API's shapes: "failed"
// (validating -> failed, errors.data filled, no files), "expired"
// (in_progress -> expired), "cancelled" (in_progress -> cancelling, for one
// retrieve -> cancelled, as when someone cancels it in the dashboard). An expired or
// cancelled job answers the first half of its file's requests (in file
// order, so a test knows which) and writes the rest to the error file as
// batch_expired or batch_cancelled lines, as the API does.
//
// --batch-queue-tokens N models the organization's batch queue limit (the
// input tokens it may have enqueued per model): a job created while the
// tokens of this server's jobs still validating or in progress, plus its
// own, exceed N is created all the same (200) and then fails, with nothing
// run and no files, with the API's token_limit_exceeded error. A job's
// tokens are its requests' input tokens; a job that ends frees them.
// StopClock() and StartClock() (POST /fake/stop-clock, /fake/start-clock)
// stop and start the jobs' clock: while it is stopped no job moves on, so a
// test can have a job hold the queue until its client has met it, however
// slow the machine. Every call is logged as {"batch_api": what, ...}, so
// tests can count uploads and job creations. Gate holds calls on a test's
// request (POST /fake/hold/CALL/N, /fake/lose/CALL/N, /fake/freeze,
// /fake/release), to kill a client at a chosen phase.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "http_server.h"

namespace fake_batches {

struct Config {
  uint64_t delay_ms = 200;  ///< Time in validating, then in in_progress.
  uint64_t fail_every = 0;  ///< Every Nth request fails; 0: none.
  uint64_t error_every = 0; ///< Every Nth request has no response; 0: none.
  std::string end = "completed";  ///< How every job ends (KnownEnd).
  uint64_t queue_tokens = 0;  ///< The batch queue limit; 0: none.
  uint64_t seed = 1;        ///< For the order of output lines.
};

/// Answers one /v1/embeddings body as the provider would: the status, and
/// the response body in *out.
using EmbedFn = std::function<int(const std::string& body, std::string* out)>;
/// Writes one line (without newline) to the provider's --log.
using LogFn = std::function<void(const std::string& line)>;
/// The input tokens of one /v1/embeddings body, and its *model.
using CountFn = std::function<uint64_t(const std::string& body, std::string* model)>;

class Batches {
 public:
  Batches(Config config, EmbedFn embed, CountFn count, LogFn log)
      : config_(config), embed_(std::move(embed)), count_(std::move(count)),
        log_(std::move(log)) {}

  static bool KnownEnd(std::string_view end) {
    return end == "completed" || end == "failed" || end == "expired" ||
           end == "cancelled";
  }

  /// Stops the jobs' clock: no job changes state, and the time it stays
  /// stopped does not count towards --batch-delay-ms.
  void StopClock() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_) stopped_at_ = std::chrono::steady_clock::now();
    stopped_ = true;
  }

  void StartClock() {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) paused_ += std::chrono::steady_clock::now() - stopped_at_;
    stopped_ = false;
  }

  /// True for the paths these endpoints answer (with or without /v1).
  static bool Owns(std::string_view path) {
    if (path.substr(0, 3) == "/v1") path.remove_prefix(3);
    return path.substr(0, 6) == "/files" || path.substr(0, 8) == "/batches";
  }

  /// The call `req` makes, as the log names it: "upload" (POST /files),
  /// "files" (GET /files), "content" (GET /files/{id}/content), "create" (POST /batches), "list"
  /// (GET /batches) or "retrieve" (GET /batches/{id}); "" for anything else.
  static std::string_view CallOf(const http::Request& req) {
    std::string_view path = req.path;
    if (path.substr(0, 3) == "/v1") path.remove_prefix(3);
    if (path == "/files" && req.method == "POST") return "upload";
    if (path == "/files" && req.method == "GET") return "files";
    if (path.substr(0, 7) == "/files/" && path.size() > 15 &&
        path.substr(path.size() - 8) == "/content" && req.method == "GET")
      return "content";
    if (path == "/batches" && req.method == "POST") return "create";
    if (path == "/batches" && req.method == "GET") return "list";
    if (path.substr(0, 9) == "/batches/" && req.method == "GET") return "retrieve";
    return "";
  }

  /// Answers `req`, one of the paths Owns(), into *resp.
  void Handle(const http::Request& req, http::Response* resp) {
    std::string_view path = req.path;
    if (path.substr(0, 3) == "/v1") path.remove_prefix(3);
    std::string_view call = CallOf(req);
    std::lock_guard<std::mutex> lock(mu_);
    if (call == "upload") {
      Upload(req, resp);
    } else if (call == "files") {
      ListFiles(req.target, resp);
    } else if (call == "content") {
      Content(std::string(path.substr(7, path.size() - 15)), resp);
    } else if (call == "create") {
      Create(req, resp);
    } else if (call == "list") {
      List(req.target, resp);
    } else if (call == "retrieve") {
      Retrieve(std::string(path.substr(9)), resp);
    } else {
      Error(404, fmt::format("Invalid URL ({} {})", req.method, req.path), resp);
    }
  }

 private:
  struct File {
    std::string filename, purpose, content;
    int64_t created = 0;
  };
  struct Job {
    std::string input_file_id, output_file_id, error_file_id;
    std::string errors;  // a failed job's errors.data, as JSON
    int64_t created = 0;
    std::chrono::steady_clock::time_point start;
    uint64_t total = 0, completed = 0, failed = 0;
    uint64_t tokens = 0;  // Enqueued while it validates and runs.
    bool done = false;
    bool cancelling_seen = false;
    int64_t ended = 0;  // when it reached its end state (epoch seconds)
  };

  static int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

  // The jobs' clock: steady time, less the time it was stopped.
  std::chrono::steady_clock::time_point Clock() const {
    return (stopped_ ? stopped_at_ : std::chrono::steady_clock::now()) - paused_;
  }

  static void Error(int status, std::string_view message, http::Response* resp) {
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    w.StartObject();
    w.Key("error");
    w.StartObject();
    w.Key("message");
    w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    w.Key("type");
    w.String("invalid_request_error");
    w.Key("param");
    w.Null();
    w.Key("code");
    w.Null();
    w.EndObject();
    w.EndObject();
    resp->status = status;
    resp->body.assign(b.GetString(), b.GetSize());
  }

  void Log(std::string line) { if (log_) log_(line); }

  std::string FileJson(const std::string& id, const File& f) const {
    return fmt::format(
        "{{\"id\":\"{}\",\"object\":\"file\",\"bytes\":{},\"created_at\":{},"
        "\"filename\":\"{}\",\"purpose\":\"{}\"}}",
        id, f.content.size(), f.created, f.filename, f.purpose);
  }

  std::string StoreFile(std::string filename, std::string purpose, std::string content) {
    std::string id = fmt::format("file-fake{:06}", ++file_count_);
    files_[id] = File{std::move(filename), std::move(purpose), std::move(content), Now()};
    return id;
  }

  // multipart/form-data with fields "purpose" and "file".
  void Upload(const http::Request& req, http::Response* resp) {
    const std::string* type = req.Header("content-type");
    size_t at = type ? type->find("boundary=") : std::string::npos;
    if (at == std::string::npos) return Error(400, "expected multipart/form-data", resp);
    std::string delimiter = "--" + type->substr(at + 9);
    std::string purpose, filename, content;
    bool has_file = false;
    std::string_view body = req.body;
    size_t pos = body.find(delimiter);
    while (pos != std::string_view::npos) {
      pos += delimiter.size();
      if (body.substr(pos, 2) == "--") break;
      size_t head_end = body.find("\r\n\r\n", pos);
      size_t next = body.find("\r\n" + delimiter, pos);
      if (head_end == std::string_view::npos || next == std::string_view::npos ||
          head_end > next)
        return Error(400, "malformed multipart body", resp);
      std::string_view head = body.substr(pos, head_end - pos);
      std::string_view value = body.substr(head_end + 4, next - head_end - 4);
      if (head.find("name=\"purpose\"") != std::string_view::npos) {
        purpose = value;
      } else if (head.find("name=\"file\"") != std::string_view::npos) {
        has_file = true;
        content = value;
        size_t f = head.find("filename=\"");
        if (f != std::string_view::npos)
          filename = head.substr(f + 10, head.find('"', f + 10) - f - 10);
      }
      pos = next + 2;
    }
    if (!has_file) return Error(400, "'file' is a required property", resp);
    if (purpose != "batch") return Error(400, "'purpose' must be 'batch' here", resp);
    if (content.size() > (200u << 20)) return Error(400, "file is larger than 200 MB", resp);
    size_t bytes = content.size();
    std::string id = StoreFile(filename, purpose, std::move(content));
    ++uploads_;
    Log(fmt::format("{{\"batch_api\":\"upload\",\"file_id\":\"{}\",\"bytes\":{},\"uploads\":{}}}",
                    id, bytes, uploads_));
    resp->body = FileJson(id, files_[id]);
  }

  void Content(const std::string& id, http::Response* resp) {
    auto it = files_.find(id);
    if (it == files_.end()) return Error(404, "No such File object: " + id, resp);
    Log(fmt::format("{{\"batch_api\":\"content\",\"file_id\":\"{}\"}}", id));
    resp->body = it->second.content;
  }

  void Create(const http::Request& req, http::Response* resp) {
    rapidjson::Document doc;
    doc.Parse(req.body.data(), req.body.size());
    if (doc.HasParseError() || !doc.IsObject()) return Error(400, "invalid JSON body", resp);
    auto get = [&doc](const char* name) {
      auto m = doc.FindMember(name);
      return m != doc.MemberEnd() && m->value.IsString() ? std::string(m->value.GetString())
                                                          : std::string();
    };
    std::string input = get("input_file_id");
    if (get("endpoint") != "/v1/embeddings")
      return Error(400, "this fake runs batches on /v1/embeddings only", resp);
    if (get("completion_window") != "24h")
      return Error(400, "completion_window must be '24h'", resp);
    auto file = files_.find(input);
    if (file == files_.end()) return Error(400, "No such File object: " + input, resp);
    Job job;
    job.input_file_id = input;
    job.created = Now();
    job.start = Clock();
    job.errors = Validate(file->second.content, &job.total);
    if (job.errors.empty() && config_.end == "failed")
      job.errors = "[{\"code\":\"invalid_request\",\"message\":\"fake_provider "
                   "failed this batch's validation on purpose\",\"param\":null,\"line\":1}]";
    uint64_t enqueued = 0;
    bool queue_full = false;
    if (job.errors.empty() && config_.queue_tokens) {
      std::string model;
      job.tokens = Tokens(file->second.content, &model);
      for (auto& [other_id, other] : jobs_)
        if (Enqueued(other)) enqueued += other.tokens;
      queue_full = enqueued + job.tokens > config_.queue_tokens;
      if (queue_full) job.errors = QueueFull(model);
    }
    std::string id = fmt::format("batch_fake{:06}", ++batch_count_);
    jobs_[id] = std::move(job);
    Log(fmt::format("{{\"batch_api\":\"create\",\"batch_id\":\"{}\",\"input_file_id\":\"{}\","
                    "\"requests\":{},\"creations\":{},\"tokens\":{},\"enqueued\":{}{}}}",
                    id, input, jobs_[id].total, batch_count_, jobs_[id].tokens, enqueued,
                    queue_full ? ",\"error\":\"token_limit_exceeded\"" : ""));
    resp->body = BatchJson(id, jobs_[id], Status(jobs_[id]));
  }

  // Calls fn(custom_id, body) for each request line of a stored input
  // file (Validate() checked that each has both).
  template <typename Fn>
  static void ForEachRequest(std::string_view content, Fn fn) {
    for (std::string_view rest = content; !rest.empty();) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      rapidjson::Document doc;
      doc.Parse(line.data(), line.size());
      rapidjson::StringBuffer b;
      rapidjson::Writer<rapidjson::StringBuffer> w(b);
      doc["body"].Accept(w);
      fn(std::string(doc["custom_id"].GetString()), std::string(b.GetString(), b.GetSize()));
    }
  }

  // The input tokens of a file's requests, and the model of its last.
  uint64_t Tokens(const std::string& content, std::string* model) {
    uint64_t tokens = 0;
    ForEachRequest(content, [&](const std::string&, const std::string& body) {
      tokens += count_(body, model);
    });
    return tokens;
  }

  // Whether a job's tokens count against the queue limit: it has not
  // failed and has not yet ended (see Status).
  bool Enqueued(const Job& job) const {
    auto elapsed = Clock() - job.start;
    return job.errors.empty() && elapsed < 2 * std::chrono::milliseconds(config_.delay_ms);
  }

  // errors.data of a job refused for the queue limit, as the API words it
  // (the figure with thousands commas).
  std::string QueueFull(const std::string& model) const {
    std::string figure = std::to_string(config_.queue_tokens);
    for (size_t at = figure.size(); at > 3; at -= 3) figure.insert(at - 3, ",");
    return fmt::format(
        "[{{\"code\":\"token_limit_exceeded\",\"line\":null,\"param\":null,"
        "\"message\":\"Enqueued token limit reached for {} in organization org-fake. "
        "Limit: {} enqueued tokens. Please try again once some in_progress batches have "
        "been completed.\"}}]",
        model, figure);
  }

  // What the API checks before running a file: each line a POST to
  // /v1/embeddings with a unique custom_id, within the per-file limits.
  // Returns errors.data as JSON, or "" when the file is good.
  std::string Validate(const std::string& content, uint64_t* total) {
    std::set<std::string> ids;
    uint64_t inputs = 0, line_number = 0;
    std::string problem;
    for (std::string_view rest = content; !rest.empty() && problem.empty();) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      ++line_number;
      rapidjson::Document doc;
      doc.Parse(line.data(), line.size());
      bool ok = !doc.HasParseError() && doc.IsObject() && doc.HasMember("custom_id") &&
                doc["custom_id"].IsString() && doc.HasMember("url") && doc["url"].IsString() &&
                std::string_view(doc["url"].GetString()) == "/v1/embeddings" &&
                doc.HasMember("body") && doc["body"].IsObject();
      if (!ok) {
        problem = fmt::format("line {} is not a valid /v1/embeddings request", line_number);
      } else if (!ids.insert(doc["custom_id"].GetString()).second) {
        problem = fmt::format("line {} repeats custom_id {}", line_number,
                              doc["custom_id"].GetString());
      } else {
        const rapidjson::Value& body = doc["body"];
        auto input = body.FindMember("input");
        inputs += input != body.MemberEnd() && input->value.IsArray() ? input->value.Size() : 1;
      }
    }
    *total = line_number;
    if (problem.empty() && line_number > 50000) problem = "more than 50,000 requests";
    if (problem.empty() && inputs > 50000) problem = "more than 50,000 embedding inputs";
    if (problem.empty()) return "";
    return fmt::format("[{{\"code\":\"invalid_file\",\"message\":\"{}\",\"line\":{}}}]",
                       problem, line_number);
  }

  std::string Status(Job& job) {
    auto elapsed = Clock() - job.start;
    auto stage = std::chrono::milliseconds(config_.delay_ms);
    if (elapsed < stage) return "validating";
    if (!job.errors.empty()) return End(&job, "failed");
    if (elapsed < 2 * stage) return "in_progress";
    // Once seen cancelling, so that a client sees the state whatever its
    // polling times; and for as long as the clock is stopped.
    if (config_.end == "cancelled" && !job.ended && (!job.cancelling_seen || stopped_)) {
      job.cancelling_seen = true;
      return "cancelling";
    }
    if (!job.done) Run(&job);
    return End(&job, config_.end == "failed" ? "completed" : config_.end);
  }

  static std::string End(Job* job, std::string status) {
    if (!job->ended) job->ended = Now();
    return status;
  }

  // Answers every request of the job's file, in a shuffled order; an expired
  // or cancelled job only the first half of them.
  void Run(Job* job) {
    bool cut = config_.end == "expired" || config_.end == "cancelled";
    uint64_t finished = cut ? (job->total + 1) / 2 : job->total;
    std::vector<std::string> out, errors;
    const std::string& content = files_[job->input_file_id].content;
    uint64_t n = 0;
    ForEachRequest(content, [&](const std::string& custom_id, const std::string& request) {
      ++n;
      std::string body;
      int status;
      if (n > finished || (config_.error_every && n % config_.error_every == 0)) {
        bool expired = config_.end == "expired";
        std::string_view code = n <= finished ? "request_timeout"
                                : expired     ? "batch_expired"
                                              : "batch_cancelled";
        std::string_view message =
            n <= finished ? "The underlying call to the model timed out."
            : expired     ? "This request could not be executed before the completion window expired."
                          : "This request was not executed because the batch was cancelled.";
        errors.push_back(fmt::format(
            "{{\"id\":\"batch_req_{:06}\",\"custom_id\":\"{}\",\"response\":null,"
            "\"error\":{{\"code\":\"{}\",\"message\":\"{}\"}}}}\n",
            n, custom_id, code, message));
        return;
      }
      if (config_.fail_every && n % config_.fail_every == 0) {
        status = 400;
        body = "{\"error\":{\"message\":\"fake_provider failed this request on purpose\","
               "\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}";
      } else {
        status = embed_(request, &body);
      }
      std::string result = fmt::format(
          "{{\"id\":\"batch_req_{:06}\",\"custom_id\":\"{}\",\"response\":{{\"status_code\":{},"
          "\"request_id\":\"req_batch{:06}\",\"body\":{}}},\"error\":null}}\n",
          n, custom_id, status, n, body);
      (status == 200 ? out : errors).push_back(std::move(result));
    });
    std::mt19937_64 random(config_.seed);
    std::shuffle(out.begin(), out.end(), random);
    job->completed = out.size();
    job->failed = errors.size() - (n - std::min(n, finished));
    std::string joined;
    for (const std::string& s : out) joined += s;
    if (!out.empty()) job->output_file_id = StoreFile("batch_output.jsonl", "batch_output", std::move(joined));
    joined.clear();
    for (const std::string& s : errors) joined += s;
    if (!errors.empty()) job->error_file_id = StoreFile("batch_error.jsonl", "batch_output", std::move(joined));
    job->done = true;
  }

  void Retrieve(const std::string& id, http::Response* resp) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return Error(404, "No such Batch object: " + id, resp);
    // Status() moves the job on: once per call.
    std::string status = Status(it->second);
    resp->body = BatchJson(id, it->second, status);
    Log(fmt::format("{{\"batch_api\":\"retrieve\",\"batch_id\":\"{}\",\"status\":\"{}\"}}", id,
                    status));
  }

  // ?NAME=VALUE of a request target, or "".
  static std::string Query(const std::string& target, const std::string& name) {
    size_t at = target.find(name + "=");
    if (at == std::string::npos || (target[at - 1] != '?' && target[at - 1] != '&')) return "";
    at += name.size() + 1;
    return target.substr(at, target.find('&', at) - at);
  }

  // Newest first, at most ?limit= (1-10,000, default 10,000), of ?purpose=.
  void ListFiles(const std::string& target, http::Response* resp) {
    std::string purpose = Query(target, "purpose"), limit_text = Query(target, "limit");
    uint64_t limit = limit_text.empty() ? 10000 : std::strtoull(limit_text.c_str(), nullptr, 10);
    if (limit < 1 || limit > 10000) return Error(400, "limit must be between 1 and 10000", resp);
    std::string data;
    uint64_t n = 0;
    for (auto it = files_.rbegin(); it != files_.rend() && n < limit; ++it) {
      if (!purpose.empty() && it->second.purpose != purpose) continue;
      data += (n++ ? "," : "") + FileJson(it->first, it->second);
    }
    resp->body = fmt::format("{{\"object\":\"list\",\"data\":[{}],\"has_more\":false}}", data);
    Log(fmt::format("{{\"batch_api\":\"files\",\"files\":{}}}", n));
  }

  // Newest first, at most ?limit= (1-100, default 20), as the API lists.
  void List(const std::string& target, http::Response* resp) {
    std::string limit_text = Query(target, "limit");
    uint64_t limit = limit_text.empty() ? 20 : std::strtoull(limit_text.c_str(), nullptr, 10);
    if (limit < 1 || limit > 100) return Error(400, "limit must be between 1 and 100", resp);
    std::string data;
    uint64_t n = 0;
    for (auto it = jobs_.rbegin(); it != jobs_.rend() && n < limit; ++it, ++n)
      data += (n ? "," : "") + BatchJson(it->first, it->second, Status(it->second));
    resp->body = fmt::format("{{\"object\":\"list\",\"data\":[{}],\"has_more\":{}}}", data,
                             n < jobs_.size() ? "true" : "false");
    Log(fmt::format("{{\"batch_api\":\"list\",\"batches\":{}}}", n));
  }

  std::string BatchJson(const std::string& id, const Job& job, const std::string& status) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  Clock() - job.start).count();
    bool ended = status == "completed" || status == "expired" || status == "cancelled";
    uint64_t completed =
        ended ? job.completed
        : status == "in_progress"
            ? job.total * static_cast<uint64_t>(ms - static_cast<int64_t>(config_.delay_ms)) /
                  std::max<uint64_t>(config_.delay_ms, 1)
            : 0;
    auto opt = [](const std::string& s) { return s.empty() ? std::string("null") : "\"" + s + "\""; };
    auto at = [&job](bool set) { return set ? std::to_string(job.ended ? job.ended : Now()) : "null"; };
    return fmt::format(
        "{{\"id\":\"{}\",\"object\":\"batch\",\"endpoint\":\"/v1/embeddings\",\"errors\":{},"
        "\"input_file_id\":\"{}\",\"completion_window\":\"24h\",\"status\":\"{}\","
        "\"output_file_id\":{},\"error_file_id\":{},\"created_at\":{},"
        "\"failed_at\":{},\"expired_at\":{},\"cancelling_at\":{},\"cancelled_at\":{},"
        "\"completed_at\":{},"
        "\"request_counts\":{{\"total\":{},\"completed\":{},\"failed\":{}}},\"metadata\":null}}",
        id, job.errors.empty() ? "null" : "{\"object\":\"list\",\"data\":" + job.errors + "}",
        job.input_file_id, status, opt(job.output_file_id), opt(job.error_file_id), job.created,
        at(status == "failed"), at(status == "expired"),
        at(status == "cancelling" || status == "cancelled"), at(status == "cancelled"),
        at(status == "completed"),
        status == "validating" || status == "failed" ? 0 : job.total,
        std::min(completed, job.total), ended ? job.failed : 0);
  }

  Config config_;
  EmbedFn embed_;
  CountFn count_;
  LogFn log_;
  std::mutex mu_;
  std::map<std::string, File> files_;
  std::map<std::string, Job> jobs_;
  uint64_t file_count_ = 0, batch_count_ = 0, uploads_ = 0;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point stopped_at_;  // while stopped_
  std::chrono::steady_clock::duration paused_{};  // stopped before, in all
};

/// Holds Batch API calls at a test's request, so that it can kill a client
/// at a chosen phase of its job without depending on timing. Arm(call, n):
/// the nth call of that kind from then on, and every call after it, of any
/// kind, is held: left unanswered and without effect until the client goes
/// away; with `lose`, the nth takes effect and only its answer is held (the
/// client dies before it reads it). Freeze(): every call from now on is
/// held. Release(): none is. The nth call is logged as
/// {"batch_api":"hold",...} (with "lost": the id it made, for `lose`), and
/// Freeze() returns, only once every call let through before has been
/// answered: from then on what the server did is final, so a client killed
/// at that point can only have missed answers it was already sent (and the
/// lost one). Each later call is logged as {"batch_api":"held",...}.
class Gate {
 public:
  enum class Verdict { kAnswer, kHold, kLose };

  explicit Gate(LogFn log) : log_(std::move(log)) {}

  void Arm(std::string call, uint64_t nth, bool lose) {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = std::move(call);
    nth_ = nth;
    lose_ = lose;
    seen_ = 0;
    frozen_ = false;
  }

  void Freeze() {
    std::unique_lock<std::mutex> lock(mu_);
    frozen_ = true;
    idle_.wait(lock, [this] { return busy_ == 0; });
  }

  void Release() { Arm("", 0, false); }

  /// kHold: hold this call (the caller waits for the peer to close).
  /// kAnswer: answer it, then call Done(). kLose: carry it out, then call
  /// Lost() and hold its answer.
  Verdict Enter(std::string_view call) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!frozen_ && !armed_.empty() && call == armed_ && ++seen_ == nth_) {
      frozen_ = true;
      if (lose_) {
        ++busy_;
        return Verdict::kLose;
      }
      idle_.wait(lock, [this] { return busy_ == 0; });
      Log(fmt::format(R"({{"batch_api":"hold","call":"{}","n":{}}})", call, nth_));
      return Verdict::kHold;
    }
    if (frozen_) {
      Log(fmt::format(R"({{"batch_api":"held","call":"{}"}})", call));
      return Verdict::kHold;
    }
    ++busy_;
    return Verdict::kAnswer;
  }

  void Done() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--busy_ == 0) idle_.notify_all();
  }

  /// The kLose call made `id` (a file's or a job's).
  void Lost(std::string_view call, std::string_view id) {
    std::unique_lock<std::mutex> lock(mu_);
    if (--busy_ == 0) idle_.notify_all();
    idle_.wait(lock, [this] { return busy_ == 0; });
    Log(fmt::format(R"({{"batch_api":"hold","call":"{}","n":{},"lost":"{}"}})", call, nth_, id));
  }

 private:
  void Log(const std::string& line) {
    if (log_) log_(line);
  }

  LogFn log_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::string armed_;  // A call as CallOf names it; empty: none.
  uint64_t nth_ = 0, seen_ = 0;
  bool lose_ = false;
  bool frozen_ = false;
  int busy_ = 0;  // Calls let through and not yet answered.
};

}  // namespace fake_batches
