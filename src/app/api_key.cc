#include "app/api_key.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include <fmt/core.h>

namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
         c == '\f';
}

// The key goes into a header line as it is: a CR or LF in it would end the
// line and start another one, which the server reads as a header of its
// own; any other control character is no key either. Fills *err, without
// the key, naming `origin` and what to `fix`.
bool CheckControlCharacters(std::string_view key, std::string_view origin,
                            std::string_view fix, std::string* err) {
  for (size_t i = 0; i < key.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c < 0x20 || c == 0x7f) {
      *err = fmt::format(
          "the API key in {} holds a control character (byte {} of {}): fix "
          "the {}",
          origin, i + 1, key.size(), fix);
      return false;
    }
  }
  return true;
}

// A key file is a few hundred bytes; anything this large is the wrong file.
constexpr size_t kMaxKeyFileBytes = 64 * 1024;

bool ReadKeyFile(const std::string& path, std::string* key,
                 std::string* warning, std::string* err) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = fmt::format("cannot read API key file {}: {}", path, strerror(errno));
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
    *warning = fmt::format(
        "API key file {} may be read by other users (mode {:04o}): chmod 600 it",
        path, st.st_mode & 07777);
  std::string data;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || data.size() + n > kMaxKeyFileBytes) {
      *err = n < 0 ? fmt::format("cannot read API key file {}: {}", path,
                                 strerror(errno))
                   : fmt::format("API key file {} is larger than {} bytes",
                                 path, kMaxKeyFileBytes);
      close(fd);
      return false;
    }
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  size_t end = data.find('\n');
  if (end == std::string::npos) end = data.size();
  size_t begin = 0;
  while (begin < end && IsSpace(data[begin])) ++begin;
  while (end > begin && IsSpace(data[end - 1])) --end;
  *key = data.substr(begin, end - begin);
  // The copy read from the file is not left behind in freed memory.
  explicit_bzero(data.data(), data.size());
  explicit_bzero(buf, sizeof buf);
  if (key->empty()) {
    *err = fmt::format("API key file {} holds no key on its first line", path);
    return false;
  }
  return CheckControlCharacters(*key, path, "file", err);
}

}  // namespace

bool ReadApiKey(const std::string& file, const std::string& env_name,
                std::string* key, std::string* warning, std::string* err) {
  warning->clear();
  key->clear();
  if (!file.empty()) return ReadKeyFile(file, key, warning, err);
  char* value = std::getenv(env_name.c_str());
  if (!value) return true;
  std::string_view v = value;
  size_t begin = 0, end = v.size();
  while (begin < end && IsSpace(v[begin])) ++begin;
  while (end > begin && IsSpace(v[end - 1])) --end;
  *key = v.substr(begin, end - begin);
  explicit_bzero(value, strlen(value));
  unsetenv(env_name.c_str());
  std::string origin = "$" + env_name;
  // A stray space or CR from a .env file or $(cat keyfile) is no part of
  // the key, but the user should know the variable is not what they think.
  if (end - begin != v.size())
    *warning = fmt::format(
        "the API key in {} has white space around it; it is sent without",
        origin);
  return CheckControlCharacters(*key, origin, "variable", err);
}
