// Keeps the API key out of everything embedpipe prints or writes. A server
// or a proxy may quote the key it was sent ("Incorrect API key provided:
// sk-..."), whole or partly masked as OpenAI does; every message, --errors
// reason, --stats field and progress line that holds server text takes it
// from a response, so responses are scrubbed where they arrive: the
// transport every request goes through is wrapped once (main.cc). URLs the
// user gives (base URLs, proxies) may hold a password: printed without it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "transport/transport.h"

/// `url` without the "user:password@" before its host, for messages.
/// Everything up to the last '@' goes, not only within the authority: a
/// password with an unencoded '/', '?' or '#' in it (which libcurl then
/// cannot parse) must not be taken for the path and printed.
std::string WithoutCredentials(std::string_view url);

/// Replaces a secret, and every run of kMinRun or more consecutive
/// characters of it, in text; a secret shorter than that, only whole.
class Redactor {
 public:
  /// A masked echo keeps a few characters of each end ("sk-abc***wxyz");
  /// a run this long is no coincidence in a message.
  static constexpr size_t kMinRun = 8;
  /// What a run of the secret becomes.
  static constexpr std::string_view kMark = "[redacted]";

  /// `secret` may be empty: nothing is then replaced.
  explicit Redactor(std::string_view secret);

  /// Replaces each stretch of *text covered by runs of the secret with
  /// kMark.
  void Scrub(std::string* text) const;

 private:
  std::vector<uint64_t> runs_;  ///< Every kMinRun bytes of it, sorted.
  std::string short_;           ///< The secret, if shorter than kMinRun.
};

/// Wraps `inner`: every response it hands out has the secret scrubbed from
/// what may become a message: the transport error, the header values and,
/// but for a success, the body. A success body is megabytes of vectors,
/// never printed (a decoding error quotes 32 bytes of one at most), and
/// searching it would cost as much as decoding it.
std::unique_ptr<Transport> NewRedactingTransport(
    std::unique_ptr<Transport> inner, std::string_view secret);
