#include "transport/proxy_env.h"

#include <cctype>
#include <vector>

#include "transport/redact.h"

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Whether no_proxy's comma- or space-separated `list` names `host` (lower
// case): "*", the host itself, or a domain it is in (".example.com" and
// "example.com" alike).
bool Listed(std::string_view list, std::string_view host) {
  while (!list.empty()) {
    size_t end = list.find_first_of(", ");
    std::string entry = Lower(list.substr(0, end));
    list.remove_prefix(end == std::string_view::npos ? list.size() : end + 1);
    if (entry == "*") return true;
    if (!entry.empty() && entry[0] == '.') entry.erase(0, 1);
    if (entry.empty()) continue;
    if (host == entry) return true;
    if (host.size() > entry.size() && host.ends_with(entry) &&
        host[host.size() - entry.size() - 1] == '.')
      return true;
  }
  return false;
}

}  // namespace

bool FindEnvProxy(std::string_view url,
                  const std::function<const char*(const char*)>& getenv,
                  EnvProxy* proxy) {
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) return false;
  std::string scheme = Lower(url.substr(0, colon));
  std::string_view authority = url.substr(colon + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  authority = authority.substr(authority.rfind('@') + 1);
  std::string_view host = authority;
  if (!host.empty() && host[0] == '[')
    host = host.substr(1, host.find(']') - 1);  // an IPv6 address
  else
    host = host.substr(0, host.find(':'));
  const char* no_proxy = getenv("no_proxy");
  if (!no_proxy || !*no_proxy) no_proxy = getenv("NO_PROXY");
  if (no_proxy && Listed(no_proxy, Lower(host))) return false;
  std::vector<std::string> names = {scheme + "_proxy"};
  if (scheme != "http") names.push_back(Upper(scheme) + "_PROXY");
  names.push_back("all_proxy");
  names.push_back("ALL_PROXY");
  for (const std::string& name : names) {
    const char* value = getenv(name.c_str());
    if (value && *value) {
      proxy->variable = name;
      proxy->url = WithoutCredentials(value);
      return true;
    }
  }
  return false;
}
