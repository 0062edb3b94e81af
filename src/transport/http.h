// HTTP request and response values exchanged between the scheduler, the
// codecs and the transport. Plain data.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct HttpRequest {
  std::string url;
  /// Complete header lines ("Name: value"). May hold a secret; never log.
  std::vector<std::string> headers;
  std::string body;
  // The {} below: codecs brace-initialize the fields above, and
  // -Wmissing-field-initializers wants every later one initialized.
  /// When set, the body is `body`, then this file's content, then
  /// `body_end`, read from disk as it is sent: how an upload larger than
  /// memory should hold goes out.
  std::string body_file{};
  std::string body_end{};
  /// When set, a 200 response's body is written to this file (created or
  /// truncated, mode 0600) instead of HttpResponse::body, and is not
  /// limited by max_response_bytes: how a download larger than memory
  /// should hold comes in. Other statuses' bodies stay in memory.
  std::string response_file{};
  /// The largest response body that can be right for this request, set by
  /// the codec from what it asked for; a longer one is cut off and fails
  /// the transfer. 0: the transport's own limit only.
  size_t max_response_bytes = 0;
  std::string method = "POST";  ///< POST, or GET (the body is then unused).
};

/// Spare capacity a response body keeps past its end (see body).
inline constexpr size_t kBodySlack = 16;

struct HttpResponse {
  long status = 0;              ///< 0 when no response arrived.
  std::string transport_error;  ///< Why the transfer failed, if it did.
  bool timed_out = false;       ///< The transfer hit a timeout.
  /// Header names lower-cased, values trimmed, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The transport reserves kBodySlack bytes of capacity past a body whose
  /// length it is told, so a decoder may scan it in 16-byte blocks where it
  /// lies (codec_json.h).
  std::string body;

  /// The last value of header `name` (lower-case), or null.
  const std::string* Header(std::string_view name) const {
    for (auto it = headers.rbegin(); it != headers.rend(); ++it)
      if (it->first == name) return &it->second;
    return nullptr;
  }
};
