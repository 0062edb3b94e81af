#include "transport/curl_transport.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <curl/curl.h>
#include <fmt/core.h>

#include "journal/private_file.h"
#include "transport/proxy_env.h"

namespace {

// A response bigger than this is a hostile or broken server: 2048 inputs of
// 3072 floats printed as JSON text stay far below it. A request may set a
// lower limit (HttpRequest::max_response_bytes), and codecs do.
constexpr size_t kMaxResponseBytes = 512u << 20;

struct Transfer {
  uint64_t tag = 0;
  HttpRequest request;  // owns the body libcurl reads from
  HttpResponse response;
  curl_slist* headers = nullptr;
  CURL* easy = nullptr;
  size_t max_body = kMaxResponseBytes;
  bool too_big = false;
  // HttpRequest::body_file: its descriptor, and how far the body was sent
  // (body, then the file, then body_end).
  int body_fd = -1;
  uint64_t body_file_size = 0;
  uint64_t sent = 0;
  // HttpRequest::response_file, once a 200's first byte arrived.
  int response_fd = -1;
  std::string file_error;  // Why body_file or response_file failed.
  // Stall detection: when a byte last moved either way, and the totals then.
  int64_t stall_ms = 0;
  int64_t last_progress_ms = 0;
  curl_off_t last_down = 0, last_up = 0;
  bool stalled = false;
};

int64_t SteadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch())
      .count();
}

// libcurl calls this at least once a second while a transfer is open, data
// or not. It ends a transfer after stall_ms with no byte sent or received:
// CURLOPT_LOW_SPEED_TIME would too, but it judges a speed averaged over
// several seconds, so a connection that falls silent after a burst is
// noticed up to five seconds late.
int OnProgress(void* user, curl_off_t, curl_off_t down, curl_off_t,
               curl_off_t up) {
  auto* t = static_cast<Transfer*>(user);
  int64_t now = SteadyMs();
  if (down != t->last_down || up != t->last_up) {
    t->last_down = down;
    t->last_up = up;
    t->last_progress_ms = now;
    return 0;
  }
  if (now - t->last_progress_ms < t->stall_ms) return 0;
  t->stalled = true;
  return 1;  // aborts the transfer
}

// Writes a 200's body to HttpRequest::response_file; false on an error.
bool WriteToFile(Transfer* t, const char* data, size_t len) {
  const std::string& path = t->request.response_file;
  if (t->response_fd < 0) t->response_fd = OpenPrivateFile(path);
  if (t->response_fd < 0 || !WriteAll(t->response_fd, std::string_view(data, len))) {
    t->file_error = fmt::format("cannot write {}: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long status = 0;
  if (!t->request.response_file.empty() &&
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
      status == 200)
    return WriteToFile(t, data, len) ? len : 0;
  if (t->response.body.size() + len > t->max_body) {
    t->too_big = true;
    return 0;  // aborts the transfer
  }
  t->response.body.append(data, len);
  return len;
}

// Reads the body of a request with a body_file: body, the file, body_end.
size_t OnRead(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string& head = t->request.body;
  const std::string& tail = t->request.body_end;
  size_t room = size * n, done = 0;
  while (done < room) {
    uint64_t at = t->sent;
    size_t got = 0;
    if (at < head.size()) {
      got = std::min<uint64_t>(room - done, head.size() - at);
      std::memcpy(buffer + done, head.data() + at, got);
    } else if (at < head.size() + t->body_file_size) {
      ssize_t r = read(t->body_fd, buffer + done,
                       std::min<uint64_t>(room - done,
                                          head.size() + t->body_file_size - at));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        t->file_error = fmt::format("cannot read {}: {}", t->request.body_file,
                                    r < 0 ? std::strerror(errno) : "it got shorter");
        return CURL_READFUNC_ABORT;
      }
      got = static_cast<size_t>(r);
    } else {
      uint64_t off = at - head.size() - t->body_file_size;
      if (off >= tail.size()) break;
      got = std::min<uint64_t>(room - done, tail.size() - off);
      std::memcpy(buffer + done, tail.data() + off, got);
    }
    done += got;
    t->sent += got;
  }
  return done;
}

// libcurl sends a body again from its start when a reused connection turned
// out closed, or after a 100 Continue was refused.
int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (offset != 0 || origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  if (lseek(t->body_fd, 0, SEEK_SET) != 0) return CURL_SEEKFUNC_FAIL;
  t->sent = 0;
  return CURL_SEEKFUNC_OK;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line (after a 100 Continue or a redirect) starts over.
    t->response.headers.clear();
    return line.size();
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = Trim(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::string value = Trim(line.substr(colon + 1));
    // An embeddings response is megabytes: growing the body by appending
    // copied it about twice over and faulted in fresh pages each time.
    // Content-Length (the compressed size when compressed) sizes it once.
    size_t length = 0;
    if (name == "content-length" &&
        std::from_chars(value.data(), value.data() + value.size(), length).ec ==
            std::errc() &&
        length <= kMaxResponseBytes && t->request.response_file.empty())
      t->response.body.reserve(length + kBodySlack);
    t->response.headers.emplace_back(std::move(name), std::move(value));
  }
  return line.size();
}

bool IsHttps(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  return url.size() >= kScheme.size() &&
         std::equal(kScheme.begin(), kScheme.end(), url.begin(),
                    [](char a, char b) {
                      return a == std::tolower(static_cast<unsigned char>(b));
                    });
}

// For a failure to reach the server that may be the proxy's, which proxy
// (from which variable): " (through the proxy URL that $http_proxy names)",
// or "" when none was used.
std::string ProxyNote(CURLcode code, std::string_view url) {
  EnvProxy proxy;
  if ((code != CURLE_COULDNT_CONNECT && code != CURLE_COULDNT_RESOLVE_PROXY &&
       code != CURLE_PROXY) ||
      !FindEnvProxy(url, [](const char* name) { return std::getenv(name); },
                    &proxy))
    return "";
  return fmt::format(" (through the proxy {} that ${} names)", proxy.url,
                     proxy.variable);
}

class CurlTransport : public Transport {
 public:
  explicit CurlTransport(CurlTransportConfig config)
      : config_(std::move(config)) {}

  ~CurlTransport() override {
    CancelAll();
    if (multi_) curl_multi_cleanup(multi_);
  }

  bool Init(std::string* err) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      *err = "libcurl failed to initialize";
      return false;
    }
    multi_ = curl_multi_init();
    if (!multi_) {
      *err = "libcurl failed to create a multi handle";
      return false;
    }
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS,
                      static_cast<long>(config_.max_connections));
    return true;
  }

  void Start(uint64_t tag, HttpRequest request) override {
    auto t = std::make_unique<Transfer>();
    t->tag = tag;
    t->request = std::move(request);
    t->easy = curl_easy_init();
    for (const std::string& h : t->request.headers)
      t->headers = curl_slist_append(t->headers, h.c_str());
    CURL* e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->request.url.c_str());
    if (t->request.method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      if (t->request.body_file.empty()) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(t->request.body.size()));
      } else {
        // Unreadable, the transfer fails in OnRead with file_error.
        t->body_fd = open(t->request.body_file.c_str(), O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (t->body_fd >= 0 && fstat(t->body_fd, &st) == 0)
          t->body_file_size = static_cast<uint64_t>(st.st_size);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, OnRead);
        curl_easy_setopt(e, CURLOPT_READDATA, t.get());
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, OnSeek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, t.get());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(t->request.body.size() +
                                                 t->body_file_size +
                                                 t->request.body_end.size()));
      }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, config_.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, config_.timeout_ms);
    // A connection that delivers nothing for the stall time is given up and
    // retried rather than left to block the batch until the full timeout.
    t->stall_ms = config_.stall_timeout_s * 1000;
    t->last_progress_ms = SteadyMs();
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, t.get());
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    // Waiting for a connection that may multiplex pays only over TLS, where
    // ALPN settles it in the handshake. Plain http is HTTP/1.1 here, and
    // libcurl would learn that only from the first response: every other
    // transfer would wait one full request's latency before connecting.
    if (IsHttps(t->request.url)) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, config_.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    // Hostile or broken servers: a body is read up to what a right answer
    // can be, and a Content-Length above that fails before any of it
    // arrives. Redirects are not followed (libcurl's default, made
    // explicit): the API key must go to the configured address only, and a
    // redirected base URL is a configuration error the user should see.
    if (t->request.max_response_bytes > 0)
      t->max_body = std::min(t->request.max_response_bytes, kMaxResponseBytes);
    // A body written to a file is as long as the server says.
    if (t->request.response_file.empty())
      curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                       static_cast<curl_off_t>(t->max_body));
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    // TLS peer and host verification stay libcurl's default (on); a CA
    // bundle replaces the system's. Proxies come from the environment
    // (http_proxy, https_proxy, no_proxy) as libcurl reads them.
    if (!config_.ca_file.empty())
      curl_easy_setopt(e, CURLOPT_CAINFO, config_.ca_file.c_str());
    curl_multi_add_handle(multi_, e);
    by_tag_[tag] = std::move(t);
  }

  void Wait(int timeout_ms, int watch_fd, bool* fd_ready) override {
    *fd_ready = false;
    int running = 0;
    curl_multi_perform(multi_, &running);
    Collect();
    if (!finished_.empty()) timeout_ms = 0;
    curl_waitfd extra{};
    extra.fd = watch_fd;
    extra.events = CURL_WAIT_POLLIN;
    curl_multi_poll(multi_, watch_fd >= 0 ? &extra : nullptr,
                    watch_fd >= 0 ? 1 : 0, timeout_ms, nullptr);
    if (watch_fd >= 0 && (extra.revents & (CURL_WAIT_POLLIN | CURL_WAIT_POLLPRI)))
      *fd_ready = true;
    // POLLHUP on a pipe whose writer closed is reported as POLLIN on Linux;
    // the read then sees end of file.
    curl_multi_perform(multi_, &running);
    Collect();
  }

  bool NextFinished(uint64_t* tag, HttpResponse* response) override {
    if (finished_.empty()) return false;
    std::unique_ptr<Transfer> t = std::move(finished_.front());
    finished_.pop_front();
    *tag = t->tag;
    *response = std::move(t->response);
    Release(t.get());
    return true;
  }

  size_t active() const override { return by_tag_.size() + finished_.size(); }

  void CancelAll() override {
    for (auto& [tag, t] : by_tag_) Release(t.get());
    by_tag_.clear();
    for (auto& t : finished_) Release(t.get());
    finished_.clear();
  }

 private:
  void Collect() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* raw = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
      CURLcode code = msg->data.result;
      curl_multi_remove_handle(multi_, raw->easy);
      if (raw->response_fd >= 0) {
        if (close(raw->response_fd) != 0 && raw->file_error.empty())
          raw->file_error = fmt::format("cannot write {}: {}",
                                        raw->request.response_file,
                                        std::strerror(errno));
        raw->response_fd = -1;
      }
      if (code == CURLE_OK && raw->file_error.empty()) {
        curl_easy_getinfo(raw->easy, CURLINFO_RESPONSE_CODE,
                          &raw->response.status);
      } else {
        // A partial response must never be mistaken for a complete one.
        raw->response.status = 0;
        raw->response.body.clear();
        raw->response.timed_out =
            code == CURLE_OPERATION_TIMEDOUT || raw->stalled;
        raw->too_big = raw->too_big || code == CURLE_FILESIZE_EXCEEDED;
        raw->response.transport_error =
            !raw->file_error.empty() ? raw->file_error
            : raw->too_big   ? fmt::format("response larger than {} bytes",
                                         raw->max_body)
            : raw->stalled ? fmt::format("stalled: no data for {} s",
                                         config_.stall_timeout_s)
                           : curl_easy_strerror(code) +
                                 ProxyNote(code, raw->request.url);
      }
      auto it = by_tag_.find(raw->tag);
      finished_.push_back(std::move(it->second));
      by_tag_.erase(it);
    }
  }

  void Release(Transfer* t) {
    if (t->body_fd >= 0) close(t->body_fd);
    if (t->response_fd >= 0) close(t->response_fd);
    t->body_fd = t->response_fd = -1;
    if (!t->easy) return;
    curl_multi_remove_handle(multi_, t->easy);
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    t->easy = nullptr;
    t->headers = nullptr;
  }

  CurlTransportConfig config_;
  CURLM* multi_ = nullptr;
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> by_tag_;
  std::deque<std::unique_ptr<Transfer>> finished_;
};

}  // namespace

std::unique_ptr<Transport> NewCurlTransport(const CurlTransportConfig& config,
                                            std::string* err) {
  auto t = std::make_unique<CurlTransport>(config);
  if (!t->Init(err)) return nullptr;
  return t;
}
