// Fuzz target: journal open and recovery. The input is a whole journal file
// as a crash, a disk or a hostile user may leave it. Open either refuses it
// with a reason or recovers every record it keeps; each kept record reads
// back with a good checksum; appending, syncing and compacting then work,
// and the compacted file opens again with the same records.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "journal.h"

namespace {

const JournalConfig& Config() {
  static const JournalConfig* config =
      new JournalConfig{{{"model", "m"}, {"provider", "openai"}}};
  return *config;
}

// One file per process, in a directory of its own under $TMPDIR (a tmpfs
// such as /dev/shm makes the fsyncs free), reused for every input.
const std::string& Path() {
  static std::string* path = [] {
    const char* tmp = getenv("TMPDIR");
    std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") +
                      "/journal_fuzz.XXXXXX";
    if (!mkdtemp(dir.data())) std::abort();
    return new std::string(dir + "/j");
  }();
  return *path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = Path();
  {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) std::abort();
    if (write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
    close(fd);
  }
  std::string notice, err;
  std::unique_ptr<Journal> j = Journal::Open(path, Config(), &notice, &err);
  if (!j) {
    if (err.empty()) std::abort();
    return 0;
  }
  KeyMaker keys(Config());
  JournalKey fresh = keys.Key("fuzz");
  float v[3] = {1, 2, 3};
  if (!j->Append(fresh, 7, v, 3, &err) || !j->Sync(&err)) std::abort();
  if (!j->Compact(&err)) std::abort();
  size_t count = j->size();
  j.reset();
  j = Journal::Open(path, Config(), &notice, &err);
  if (!j || !notice.empty() || j->size() != 1 || count != 1) std::abort();
  uint32_t dims = 0, tokens = 0;
  float back[3];
  if (!j->Find(fresh, &dims, &tokens) || dims != 3 || tokens != 7 ||
      !j->Read(fresh, back, &err) || back[2] != 3)
    std::abort();
  return 0;
}
