#include "transport/proxy_env.h"

#include <map>
#include <string>

#include <doctest/doctest.h>

namespace {

// The proxy FindEnvProxy picks for `url` in `env`, as "variable url", or "".
std::string Pick(std::string_view url, const std::map<std::string, std::string>& env) {
  EnvProxy p;
  auto getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  return FindEnvProxy(url, getenv, &p) ? p.variable + " " + p.url : "";
}

}  // namespace

TEST_CASE("FindEnvProxy reads the variables libcurl reads, in its order") {
  CHECK(Pick("http://api.example.com/v1", {}) == "");
  CHECK(Pick("http://api.example.com/v1", {{"http_proxy", "http://p:3128"}}) ==
        "http_proxy http://p:3128");
  // Not HTTP_PROXY: a CGI request's "Proxy:" header sets it.
  CHECK(Pick("http://api.example.com/v1", {{"HTTP_PROXY", "http://p:3128"}}) == "");
  CHECK(Pick("https://api.example.com/v1", {{"HTTPS_PROXY", "http://p:3128"}}) ==
        "HTTPS_PROXY http://p:3128");
  CHECK(Pick("HTTPS://api.example.com/v1", {{"https_proxy", "http://a:1"},
                                            {"HTTPS_PROXY", "http://b:2"}}) ==
        "https_proxy http://a:1");
  CHECK(Pick("https://api.example.com/v1", {{"http_proxy", "http://a:1"},
                                            {"ALL_PROXY", "socks5://b:2"}}) ==
        "ALL_PROXY socks5://b:2");
}

TEST_CASE("FindEnvProxy leaves out a user name and password") {
  CHECK(Pick("http://h/v1", {{"http_proxy", "http://user:s3cret@p:3128"}}) ==
        "http_proxy http://p:3128");
  CHECK(Pick("http://h/v1", {{"http_proxy", "user:s3cret@p:3128/"}}) ==
        "http_proxy p:3128/");
  // A password with an unencoded '/', '?' or '#': libcurl cannot parse the
  // value, and the message must still not show it.
  for (const char* proxy : {"http://bob:pa/ss@p:3128", "http://bob:p?a#s@p:3128"})
    CHECK(Pick("http://h/v1", {{"http_proxy", proxy}}) == "http_proxy http://p:3128");
}

TEST_CASE("FindEnvProxy honors no_proxy") {
  std::map<std::string, std::string> env = {{"https_proxy", "http://p:1"},
                                            {"no_proxy", "localhost, .internal,example.org"}};
  CHECK(Pick("https://localhost:8080/v1", env) == "");
  CHECK(Pick("https://api.internal/v1", env) == "");
  CHECK(Pick("https://a.b.example.org/v1", env) == "");
  CHECK(Pick("https://EXAMPLE.ORG/v1", env) == "");
  CHECK(Pick("https://notexample.org/v1", env) == "https_proxy http://p:1");
  CHECK(Pick("https://user@[::1]:8080/v1", {{"https_proxy", "http://p:1"}, {"NO_PROXY", "::1"}}) ==
        "");
  CHECK(Pick("https://127.0.0.1/v1", {{"https_proxy", "http://p:1"}, {"no_proxy", "*"}}) == "");
}
