#include "journal/private_file.h"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

TEST_CASE("OpenPrivateFile empties a file and makes it 0600, whatever it was") {
  TempDir dir;
  std::string path = dir.path + "/f";
  {
    int fd = OpenPrivateFile(path);
    REQUIRE(fd >= 0);
    CHECK(WriteAll(fd, "old and long"));
    close(fd);
  }
  REQUIRE(chmod(path.c_str(), 0644) == 0);
  int fd = OpenPrivateFile(path);
  REQUIRE(fd >= 0);
  CHECK(WriteAll(fd, "new"));
  close(fd);
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(Slurp(path) == "new");
  REQUIRE(symlink(path.c_str(), (dir.path + "/link").c_str()) == 0);
  CHECK(OpenPrivateFile(dir.path + "/link") < 0);
}
