// A small blocking HTTP/1.1 server for the test tools, bound to loopback
// only: one thread per connection, persistent connections (and pipelining),
// Content-Length and chunked request bodies, Expect: 100-continue, a bound on
// header size, and raw access to the socket so a handler can misbehave on
// purpose (reset, truncate, hang) the way broken networks and proxies do.
//
// Threads keep it simple and let slow responses (a latency model sleeping)
// overlap without an event loop; the fake provider never serves more than a
// few hundred connections.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace http {

/// Requests whose head (request line and headers) exceeds this get 431.
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;
/// Requests whose body exceeds this get 413.
inline constexpr size_t kMaxBodyBytes = size_t{1} << 30;

struct Request {
  std::string method;
  std::string target;  ///< As sent, query included.
  std::string path;    ///< target without the query.
  int minor_version = 1;
  /// Header names lower-cased, values with surrounding whitespace removed.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  ///< Decoded (de-chunked).
  bool keep_alive = true;
  /// When the head was complete; the latency model counts from here.
  std::chrono::steady_clock::time_point arrival;

  /// The value of the first header named `lower_name`, or null.
  const std::string* Header(std::string_view lower_name) const {
    for (const auto& [name, value] : headers)
      if (name == lower_name) return &value;
    return nullptr;
  }
};

struct Response {
  int status = 200;
  /// Sent in order; Content-Length and Connection are added by Head().
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

inline const char* Reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

/// The status line and headers of `r`, with Content-Length set to the body
/// size and a Connection header saying whether the connection persists.
inline std::string Head(const Response& r, bool keep_alive) {
  std::string h = "HTTP/1.1 " + std::to_string(r.status) + " " +
                  Reason(r.status) + "\r\n";
  for (const auto& [name, value] : r.headers) {
    h += name;
    h += ": ";
    h += value;
    h += "\r\n";
  }
  h += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  h += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return h;
}

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// True when the comma-separated header value `list` holds `token`
/// (case-insensitive), as in "Connection: keep-alive, Upgrade".
inline bool HasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = Trim(list.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

/// One accepted socket. Owned by its connection thread; a handler may send
/// on it, or end it abnormally, and the server then stops using it.
class Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { Close(); }

  bool closed() const { return fd_ < 0; }

  /// Sends all of `a` then `b` (gathered, so a head and a large body need no
  /// copy). Returns false when the peer is gone.
  bool Send(std::string_view a, std::string_view b = {}) {
    if (fd_ < 0) return false;
    while (!a.empty() || !b.empty()) {
      iovec iov[2];
      int n = 0;
      if (!a.empty()) iov[n++] = {const_cast<char*>(a.data()), a.size()};
      if (!b.empty()) iov[n++] = {const_cast<char*>(b.data()), b.size()};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(n);
      // MSG_NOSIGNAL: a client that hung up must not kill the server.
      ssize_t sent = sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      size_t s = static_cast<size_t>(sent);
      size_t from_a = std::min(s, a.size());
      a.remove_prefix(from_a);
      b.remove_prefix(s - from_a);
    }
    return true;
  }

  /// Sends a complete response; closes afterwards unless keep_alive.
  bool SendResponse(const Response& r, bool keep_alive) {
    bool ok = Send(Head(r, keep_alive), r.body);
    if (!ok || !keep_alive) Close();
    return ok;
  }

  /// Ends the connection with a TCP reset (SO_LINGER 0) instead of a FIN, as
  /// a crashed upstream or proxy does; unsent data is discarded.
  void Reset() {
    if (fd_ < 0) return;
    linger l{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    Close();
  }

  /// Ends the connection normally (FIN).
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  /// Reads and discards input until the peer closes or the socket fails,
  /// then closes: a server that accepted a request and never answers.
  void WaitForPeerClose() {
    char buf[4096];
    while (fd_ >= 0) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    Close();
  }

  /// Receives up to `max` more bytes onto *buf; returns the count, 0 at end
  /// of stream or on error.
  size_t ReceiveInto(std::string* buf, size_t max) {
    if (fd_ < 0) return 0;
    size_t old = buf->size();
    buf->resize(old + max);
    ssize_t n;
    do {
      n = recv(fd_, buf->data() + old, max, 0);
    } while (n < 0 && errno == EINTR);
    buf->resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    return n > 0 ? static_cast<size_t>(n) : 0;
  }

 private:
  int fd_;
};

/// Called once per request on the connection's thread. It must send exactly
/// one response, or end the connection (Reset/Close/WaitForPeerClose).
using Handler = std::function<void(const Request&, Connection*)>;

/// Reads one request at a time from a connection, keeping pipelined bytes.
class RequestReader {
 public:
  enum class Result { kOk, kEnd, kBad };

  explicit RequestReader(Connection* conn) : conn_(conn) {}

  /// Reads the next request into *req. kEnd: the peer closed (or failed)
  /// between or inside requests. kBad: malformed; *error_status is the
  /// status to answer with before closing.
  Result Next(Request* req, int* error_status) {
    // Drop what the previous request consumed; keep any pipelined bytes.
    buf_.erase(0, pos_);
    pos_ = 0;
    // RFC 9112 2.2: ignore empty lines before a request line.
    for (;;) {
      while (buf_.size() >= pos_ + 2 && buf_[pos_] == '\r' && buf_[pos_ + 1] == '\n')
        pos_ += 2;
      if (buf_.size() >= pos_ + 2 || (buf_.size() == pos_ + 1 && buf_[pos_] != '\r'))
        break;
      if (!Fill()) return Result::kEnd;
    }
    size_t head_end;
    size_t searched = pos_;
    for (;;) {
      head_end = buf_.find("\r\n\r\n", searched);
      if (head_end != std::string::npos) break;
      if (buf_.size() - pos_ > kMaxHeaderBytes) {
        *error_status = 431;
        return Result::kBad;
      }
      searched = buf_.size() >= 3 ? buf_.size() - 3 : 0;
      if (!Fill()) return Result::kEnd;
    }
    if (head_end - pos_ > kMaxHeaderBytes) {
      *error_status = 431;
      return Result::kBad;
    }
    req->arrival = std::chrono::steady_clock::now();
    *error_status = 400;
    if (!ParseHead(std::string_view(buf_).substr(pos_, head_end + 2 - pos_), req))
      return Result::kBad;
    pos_ = head_end + 4;

    const std::string* te = req->Header("transfer-encoding");
    const std::string* cl = req->Header("content-length");
    const std::string* expect = req->Header("expect");
    bool wants_continue = expect && req->minor_version >= 1 &&
                          EqualsIgnoreCase(Trim(*expect), "100-continue");
    if (te) {
      // Only chunked is supported; RFC 9112 6.1 says anything else is 501.
      if (!EqualsIgnoreCase(Trim(*te), "chunked")) {
        *error_status = 501;
        return Result::kBad;
      }
      if (wants_continue && buf_.size() == pos_ && !SendContinue()) return Result::kEnd;
      return ReadChunked(req, error_status);
    }
    size_t length = 0;
    if (cl) {
      std::string_view v = Trim(*cl);
      if (v.empty() || v.size() > 12) return Result::kBad;
      for (char c : v) {
        if (c < '0' || c > '9') return Result::kBad;
        length = length * 10 + static_cast<size_t>(c - '0');
      }
      if (length > kMaxBodyBytes) {
        *error_status = 413;
        return Result::kBad;
      }
    }
    if (wants_continue && length > 0 && buf_.size() - pos_ < length &&
        !SendContinue())
      return Result::kEnd;
    if (!Need(length)) return Result::kEnd;
    req->body.assign(buf_, pos_, length);
    pos_ += length;
    return Result::kOk;
  }

 private:
  // Receives more bytes; false at end of stream.
  bool Fill() { return conn_->ReceiveInto(&buf_, 256 * 1024) > 0; }

  // Ensures `n` unconsumed bytes are buffered. Reads in steps of at most
  // 4 MiB, so memory follows the bytes that arrive, not what a client claims.
  bool Need(size_t n) {
    while (buf_.size() - pos_ < n) {
      size_t missing = n - (buf_.size() - pos_);
      if (!conn_->ReceiveInto(&buf_, std::clamp<size_t>(missing, 256 * 1024, 4 << 20)))
        return false;
    }
    return true;
  }

  bool SendContinue() { return conn_->Send("HTTP/1.1 100 Continue\r\n\r\n"); }

  // Reads one CRLF-terminated line (at most kMaxHeaderBytes) into *line.
  bool ReadLine(std::string* line, bool* too_long) {
    size_t searched = pos_;
    for (;;) {
      size_t eol = buf_.find("\r\n", searched);
      if (eol != std::string::npos) {
        line->assign(buf_, pos_, eol - pos_);
        pos_ = eol + 2;
        return true;
      }
      if (buf_.size() - pos_ > kMaxHeaderBytes) {
        *too_long = true;
        return false;
      }
      searched = buf_.size() > 0 ? buf_.size() - 1 : 0;
      if (!Fill()) return false;
    }
  }

  Result ReadChunked(Request* req, int* error_status) {
    std::string line;
    for (;;) {
      bool too_long = false;
      if (!ReadLine(&line, &too_long)) {
        if (!too_long) return Result::kEnd;
        *error_status = 400;
        return Result::kBad;
      }
      // chunk-size [; extensions]
      std::string_view v = Trim(std::string_view(line).substr(0, line.find(';')));
      if (v.empty() || v.size() > 15) return Result::kBad;
      size_t size = 0;
      for (char c : v) {
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return Result::kBad;
        size = size * 16 + static_cast<size_t>(d);
      }
      if (size == 0) break;
      if (req->body.size() + size > kMaxBodyBytes) {
        *error_status = 413;
        return Result::kBad;
      }
      if (!Need(size + 2)) return Result::kEnd;
      req->body.append(buf_, pos_, size);
      pos_ += size;
      if (buf_.compare(pos_, 2, "\r\n") != 0) return Result::kBad;
      pos_ += 2;
    }
    // Trailer fields, ignored, up to the empty line.
    for (size_t total = 0;;) {
      bool too_long = false;
      if (!ReadLine(&line, &too_long)) return too_long ? Result::kBad : Result::kEnd;
      if (line.empty()) return Result::kOk;
      total += line.size();
      if (total > kMaxHeaderBytes) {
        *error_status = 431;
        return Result::kBad;
      }
    }
  }

  // Parses the request line and header fields of `head` (which ends with
  // the CRLF of its last field line).
  static bool ParseHead(std::string_view head, Request* req) {
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    req->method = std::string(line.substr(0, sp1));
    req->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    std::string_view version = line.substr(sp2 + 1);
    if (req->method.empty() || req->target.empty() || version.size() != 8 ||
        version.substr(0, 7) != "HTTP/1." || version[7] < '0' || version[7] > '9')
      return false;
    req->minor_version = version[7] - '0';
    req->path = req->target.substr(0, req->target.find('?'));
    while (!head.empty()) {
      eol = head.find("\r\n");
      line = head.substr(0, eol);
      head.remove_prefix(eol + 2);
      // Obsolete line folding is rejected, as RFC 9112 5.2 allows.
      if (line.empty() || line[0] == ' ' || line[0] == '\t') return false;
      size_t colon = line.find(':');
      if (colon == std::string_view::npos || colon == 0) return false;
      std::string name(line.substr(0, colon));
      for (char& c : name) {
        if (c == ' ' || c == '\t') return false;
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      req->headers.emplace_back(std::move(name), std::string(Trim(line.substr(colon + 1))));
    }
    const std::string* conn = req->Header("connection");
    if (req->minor_version >= 1)
      req->keep_alive = !(conn && HasToken(*conn, "close"));
    else
      req->keep_alive = conn && HasToken(*conn, "keep-alive");
    return true;
  }

  Connection* conn_;
  std::string buf_;
  size_t pos_ = 0;
};

/// Serves requests on one connection until it ends.
inline void ServeConnection(int fd, const Handler& handler) {
  int one = 1;
  // Responses are written whole; Nagle would only delay the last segment.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  Connection conn(fd);
  RequestReader reader(&conn);
  for (;;) {
    Request req;
    int error_status = 400;
    RequestReader::Result r = reader.Next(&req, &error_status);
    if (r == RequestReader::Result::kEnd) return;
    if (r == RequestReader::Result::kBad) {
      Response resp;
      resp.status = error_status;
      resp.headers.emplace_back("Content-Type", "text/plain");
      resp.body = std::string(Reason(error_status)) + "\n";
      conn.SendResponse(resp, false);
      return;
    }
    handler(req, &conn);
    if (conn.closed()) return;
    if (!req.keep_alive) return;
  }
}

/// A listening socket on 127.0.0.1.
class Server {
 public:
  Server() = default;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() {
    if (fd_ >= 0) close(fd_);
  }

  /// Binds 127.0.0.1:`port` (0 = any free port) and listens.
  bool Listen(uint16_t port, std::string* err) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      *err = std::string("socket: ") + strerror(errno);
      return false;
    }
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      *err = "bind 127.0.0.1:" + std::to_string(port) + ": " + strerror(errno);
      return false;
    }
    if (listen(fd_, 1024) != 0) {
      *err = std::string("listen: ") + strerror(errno);
      return false;
    }
    socklen_t len = sizeof addr;
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      *err = std::string("getsockname: ") + strerror(errno);
      return false;
    }
    port_ = ntohs(addr.sin_port);
    return true;
  }

  uint16_t port() const { return port_; }

  /// Accepts connections forever, each served on its own detached thread.
  void Serve(Handler handler) {
    auto shared = std::make_shared<const Handler>(std::move(handler));
    for (;;) {
      int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        // Out of descriptors: back off briefly instead of spinning.
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      // std::thread reports failure only by throwing; contain it here.
      try {
        std::thread([fd, shared] { ServeConnection(fd, *shared); }).detach();
      } catch (const std::system_error&) {
        close(fd);
      }
    }
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace http
