// Hand-written fakes for unit tests: a clock moved by hand, a transport
// that answers each request from a script, recording what it was sent, an
// OpenAI server for that script, and a scratch directory.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <rapidjson/document.h>

#include "transport/clock.h"
#include "transport/http.h"
#include "transport/transport.h"

class FakeClock : public Clock {
 public:
  int64_t NowMs() const override { return now_ms; }
  int64_t UnixSeconds() const override { return 1700000000 + now_ms / 1000; }
  int64_t now_ms = 0;
};

/// What fake transports share: the answers their Wait() has finished,
/// handed out in the order they finished.
class FinishedQueueTransport : public Transport {
 public:
  bool NextFinished(uint64_t* tag, HttpResponse* response) override {
    if (finished_.empty()) return false;
    *tag = finished_.front().first;
    *response = std::move(finished_.front().second);
    finished_.pop_front();
    return true;
  }
 protected:
  std::deque<std::pair<uint64_t, HttpResponse>> finished_;
};

/// Answers every started request at the next Wait() by calling `respond`
/// (in start order, at the same fake time: a server with no latency).
/// Wait() advances the clock by the timeout it was given when nothing is in
/// flight, so retries and paced starts fall due without sleeping.
class FakeTransport : public FinishedQueueTransport {
 public:
  using Responder = std::function<HttpResponse(const HttpRequest&)>;
  FakeTransport(FakeClock* clock, Responder respond)
      : clock_(clock), respond_(std::move(respond)) {}

  void Start(uint64_t tag, HttpRequest request) override {
    if (!request.body_file.empty()) {
      // As the server sees it: the file's content in its place.
      std::ifstream in(request.body_file, std::ios::binary);
      std::stringstream content;
      content << in.rdbuf();
      request.body += content.str() + request.body_end;
      request.body_file.clear();
      request.body_end.clear();
    }
    sent.push_back(request);
    sent_ms.push_back(clock_->now_ms);
    started_.emplace_back(tag, std::move(request));
    max_active = std::max(max_active, active());
  }
  void Wait(int timeout_ms, int, bool* fd_ready) override {
    *fd_ready = false;
    if (started_.empty()) {
      clock_->now_ms += timeout_ms;
      return;
    }
    for (auto& [tag, request] : started_) {
      HttpResponse response = respond_(request);
      // As libcurl's transport: an empty body writes no file.
      if (!request.response_file.empty() && response.status == 200) {
        if (!response.body.empty())
          std::ofstream(request.response_file, std::ios::binary) << response.body;
        response.body.clear();
      }
      finished_.emplace_back(tag, std::move(response));
    }
    started_.clear();
  }
  size_t active() const override { return started_.size() + finished_.size(); }
  void CancelAll() override {
    started_.clear();
    finished_.clear();
  }

  std::vector<HttpRequest> sent;
  std::vector<int64_t> sent_ms;  ///< The clock at each Start, as `sent`.
  size_t max_active = 0;

 private:
  FakeClock* clock_;
  Responder respond_;
  std::vector<std::pair<uint64_t, HttpRequest>> started_;
};

/// The "input" texts of an OpenAI embeddings request.
inline std::vector<std::string> Inputs(const HttpRequest& request) {
  rapidjson::Document doc;
  doc.Parse(request.body.data(), request.body.size());
  std::vector<std::string> out;
  for (const auto& v : doc["input"].GetArray()) out.push_back(v.GetString());
  return out;
}

/// An OpenAI server that embeds each text as [its length in bytes], in
/// float format.
inline HttpResponse Embed(const HttpRequest& request) {
  std::string body = R"({"data":[)";
  std::vector<std::string> inputs = Inputs(request);
  for (size_t i = 0; i < inputs.size(); ++i)
    body += fmt::format(R"({}{{"index":{},"embedding":[{}]}})", i ? "," : "", i,
                        inputs[i].size());
  body += "]}";
  HttpResponse r;
  r.status = 200;
  r.body = body;
  return r;
}

/// The bytes of the file at `path` (empty when there is none).
inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A fresh directory under $TMPDIR or /tmp, removed with its files. Tests
/// that sync hundreds of times pass in_memory, to use /dev/shm where there
/// is one: the code paths are the same, without waiting for a disk.
struct TempDir {
  explicit TempDir(bool in_memory = false) {
    const char* tmp = getenv("TMPDIR");
    std::string base = tmp && *tmp ? tmp : "/tmp";
    if (in_memory && access("/dev/shm", W_OK) == 0) base = "/dev/shm";
    std::string tmpl = base + "/embedpipe_test_XXXXXX";
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string File(const std::string& name) const { return path + "/" + name; }
  std::string path;
};
