// Which proxy libcurl takes from the environment for a request, found the
// way libcurl finds it, so that a failure to reach it can name it: libcurl
// itself reports only "Couldn't connect to server".
#pragma once

#include <functional>
#include <string>
#include <string_view>

struct EnvProxy {
  std::string variable;  ///< "http_proxy", "HTTPS_PROXY", "all_proxy"...
  std::string url;       ///< Its value without a user name and password.
};

/// Fills *proxy with the proxy that libcurl uses for `url` and returns
/// true; false when none applies. As libcurl: <scheme>_proxy, then (but for
/// http, whose upper-case variable a CGI request could set) <SCHEME>_PROXY,
/// then all_proxy and ALL_PROXY; none for a host that no_proxy (or
/// NO_PROXY) lists: "*", the host, or a domain it is in. `getenv` reads the
/// environment.
bool FindEnvProxy(std::string_view url,
                  const std::function<const char*(const char*)>& getenv,
                  EnvProxy* proxy);
