#include "transport/redact.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace {

uint64_t Load(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

static_assert(Redactor::kMinRun == sizeof(uint64_t),
              "runs are compared as 64-bit words");

class RedactingTransport : public Transport {
 public:
  RedactingTransport(std::unique_ptr<Transport> inner, std::string_view secret)
      : inner_(std::move(inner)), redactor_(secret) {}

  void Start(uint64_t tag, HttpRequest request) override {
    inner_->Start(tag, std::move(request));
  }
  void Wait(int timeout_ms, int watch_fd, bool* fd_ready) override {
    inner_->Wait(timeout_ms, watch_fd, fd_ready);
  }
  bool NextFinished(uint64_t* tag, HttpResponse* response) override {
    if (!inner_->NextFinished(tag, response)) return false;
    redactor_.Scrub(&response->transport_error);
    for (auto& header : response->headers) redactor_.Scrub(&header.second);
    if (response->status < 200 || response->status >= 300)
      redactor_.Scrub(&response->body);
    return true;
  }
  size_t active() const override { return inner_->active(); }
  void CancelAll() override { inner_->CancelAll(); }

 private:
  std::unique_ptr<Transport> inner_;
  Redactor redactor_;
};

}  // namespace

Redactor::Redactor(std::string_view secret) {
  if (secret.size() < kMinRun) short_ = secret;
  for (size_t i = 0; i + kMinRun <= secret.size(); ++i)
    runs_.push_back(Load(secret.data() + i));
  std::sort(runs_.begin(), runs_.end());
}

void Redactor::Scrub(std::string* text) const {
  if (!short_.empty()) {
    for (size_t at = text->find(short_); at != std::string::npos;
         at = text->find(short_, at + kMark.size()))
      text->replace(at, short_.size(), kMark);
    return;
  }
  if (runs_.empty() || text->size() < kMinRun) return;
  // One pass over the text: each stretch replaced is the union of the runs
  // of the secret found in it that overlap or touch.
  std::string out;
  size_t copied = 0, covered_end = 0, start = 0;
  bool any = false;
  for (size_t i = 0; i + kMinRun <= text->size(); ++i) {
    if (!std::binary_search(runs_.begin(), runs_.end(), Load(text->data() + i)))
      continue;
    if (!any || i > covered_end) {
      if (any) {
        out.append(*text, copied, start - copied);
        out += kMark;
        copied = covered_end;
      }
      start = i;
      any = true;
    }
    covered_end = i + kMinRun;
  }
  if (!any) return;
  out.append(*text, copied, start - copied);
  out += kMark;
  out.append(*text, covered_end);
  *text = std::move(out);
}

std::unique_ptr<Transport> NewRedactingTransport(
    std::unique_ptr<Transport> inner, std::string_view secret) {
  return std::make_unique<RedactingTransport>(std::move(inner), secret);
}

std::string WithoutCredentials(std::string_view url) {
  size_t start = url.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  return std::string(url.substr(0, start)) + std::string(url.substr(at + 1));
}
