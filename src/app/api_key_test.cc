#include "app/api_key.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <doctest/doctest.h>

namespace {

// A file of `content` with `mode` in a fresh directory; removed at scope exit.
struct TempKeyFile {
  std::string dir, path;
  TempKeyFile(const std::string& content, mode_t mode) {
    const char* tmp = std::getenv("TMPDIR");
    dir = std::string(tmp ? tmp : "/tmp") + "/api_key_XXXXXX";
    REQUIRE(mkdtemp(dir.data()));
    path = dir + "/key";
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fputs(content.c_str(), f);
    std::fclose(f);
    chmod(path.c_str(), mode);
  }
  ~TempKeyFile() {
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
};

}  // namespace

TEST_CASE("ReadApiKey reads the first line of a key file, trimmed") {
  TempKeyFile f("  sk-file-key \r\nsecond line\n", 0600);
  std::string key, warning, err;
  REQUIRE(ReadApiKey(f.path, "EMBEDPIPE_TEST_UNUSED", &key, &warning, &err));
  CHECK(key == "sk-file-key");
  CHECK(warning.empty());
}

TEST_CASE("ReadApiKey warns about a key file others may read") {
  TempKeyFile f("sk-x\n", 0644);
  std::string key, warning, err;
  REQUIRE(ReadApiKey(f.path, "", &key, &warning, &err));
  CHECK(warning == "API key file " + f.path +
                       " may be read by other users (mode 0644): chmod 600 it");
}

TEST_CASE("ReadApiKey refuses an empty or missing key file") {
  TempKeyFile f(" \n sk-on-line-two\n", 0600);
  std::string key, warning, err;
  CHECK_FALSE(ReadApiKey(f.path, "", &key, &warning, &err));
  CHECK(err == "API key file " + f.path + " holds no key on its first line");
  CHECK_FALSE(ReadApiKey(f.dir + "/none", "", &key, &warning, &err));
  CHECK(err == "cannot read API key file " + f.dir +
                   "/none: No such file or directory");
}

TEST_CASE("ReadApiKey takes the variable and wipes it from the environment") {
  setenv("EMBEDPIPE_TEST_KEY_VAR", "sk-env-secret", 1);
  const char* block = getenv("EMBEDPIPE_TEST_KEY_VAR");
  std::string key, warning, err;
  REQUIRE(ReadApiKey("", "EMBEDPIPE_TEST_KEY_VAR", &key, &warning, &err));
  CHECK(key == "sk-env-secret");
  CHECK(getenv("EMBEDPIPE_TEST_KEY_VAR") == nullptr);
  // setenv's copy, which `block` points into, now holds zeros.
  CHECK(std::memchr(block, 's', 13) == nullptr);
  key = "old";
  REQUIRE(ReadApiKey("", "EMBEDPIPE_TEST_KEY_VAR", &key, &warning, &err));
  CHECK(key.empty());
}

TEST_CASE("ReadApiKey trims white space around a variable's key, warning") {
  setenv("EMBEDPIPE_TEST_KEY_VAR", " sk-env-secret\r", 1);
  std::string key, warning, err;
  REQUIRE(ReadApiKey("", "EMBEDPIPE_TEST_KEY_VAR", &key, &warning, &err));
  CHECK(key == "sk-env-secret");
  CHECK(warning ==
        "the API key in $EMBEDPIPE_TEST_KEY_VAR has white space around it; it "
        "is sent without");
}

TEST_CASE("ReadApiKey refuses a key holding a control character") {
  // CR LF would start a header line of the server's choosing.
  setenv("EMBEDPIPE_TEST_KEY_VAR", "sk-a\r\nX-Evil: 1", 1);
  std::string key, warning, err;
  CHECK_FALSE(ReadApiKey("", "EMBEDPIPE_TEST_KEY_VAR", &key, &warning, &err));
  CHECK(err ==
        "the API key in $EMBEDPIPE_TEST_KEY_VAR holds a control character "
        "(byte 5 of 15): fix the variable");
  CHECK(getenv("EMBEDPIPE_TEST_KEY_VAR") == nullptr);
  TempKeyFile f("sk-\x7fkey\n", 0600);
  CHECK_FALSE(ReadApiKey(f.path, "", &key, &warning, &err));
  CHECK(err == "the API key in " + f.path +
                   " holds a control character (byte 4 of 7): fix the file");
}
