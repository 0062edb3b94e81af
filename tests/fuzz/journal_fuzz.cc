// Fuzz target: journal open and recovery. The input is a whole journal file
// as a crash, a disk or a hostile user may leave it. Open either refuses it
// with a reason or recovers exactly the records a plain reading of the
// format (journal.h) finds before the first damaged frame, the later of one
// key winning, each with its tokens and vector bit for bit, and says so
// when it cut something off. Those records are then kept, one appended,
// the journal compacted, and the compacted file must open clean with the
// same records.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "journal/crc32c.h"
#include "journal/journal.h"

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

struct Saved {
  JournalKey key;
  uint32_t tokens;
  std::vector<float> vector;
};
// By the first 16 bytes of the key, as the journal indexes them: of two
// keys that share those (SHA-256 makes that a 1e-25 chance, a fuzzer makes
// it happen), the later record wins.
using Records = std::map<std::string, Saved>;

void Put(Records* records, Saved saved) {
  std::string prefix(reinterpret_cast<const char*>(saved.key.data()), 16);
  (*records)[prefix] = std::move(saved);
}

uint32_t U32(std::string_view s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, 4);  // Little-endian, as every host we build for.
  return v;
}

// Reads `file`, which Open accepted, as journal.h describes it, into
// *records. Returns whether Open must give a notice: something was cut off,
// or a header cut short (not an empty file) was started afresh.
bool ReadFormat(std::string_view file, Records* records) {
  constexpr size_t kMagic = 21, kHead = 8, kFixed = 40;
  if (file.size() < kMagic + kHead ||
      file.size() < kMagic + kHead + U32(file, kMagic))
    return !file.empty();  // A header cut short: no record.
  std::string_view rest = file.substr(kMagic + kHead + U32(file, kMagic));
  while (!rest.empty()) {
    if (rest.size() < kHead) return true;
    uint32_t len = U32(rest, 0);
    if (len < kFixed || len > kFixed + 4 * kJournalMaxDims ||
        (len - kFixed) % 4 != 0 || rest.size() - kHead < len)
      return true;
    std::string_view payload = rest.substr(kHead, len);
    uint32_t dims = U32(payload, 36);
    if (Crc32c(payload.data(), len) != U32(rest, 4) || dims == 0 ||
        dims != (len - kFixed) / 4)
      return true;
    Saved saved;
    std::memcpy(saved.key.data(), payload.data(), saved.key.size());
    saved.tokens = U32(payload, 32);
    saved.vector.resize(dims);
    std::memcpy(saved.vector.data(), payload.data() + kFixed, 4 * dims);
    Put(records, std::move(saved));
    rest.remove_prefix(kHead + len);
  }
  return false;
}

// Aborts unless `j` holds exactly `records`, each read back bit for bit.
void Verify(const Journal& j, const Records& records) {
  if (j.size() != records.size()) std::abort();
  std::vector<float> back;
  std::string err;
  for (const auto& [prefix, saved] : records) {
    uint32_t dims = 0, tokens = 0;
    if (!j.Find(saved.key, &dims, &tokens) || dims != saved.vector.size() ||
        tokens != saved.tokens)
      std::abort();
    back.assign(dims, 0);
    if (!j.Read(saved.key, back.data(), &err) ||
        std::memcmp(back.data(), saved.vector.data(), 4 * dims) != 0)
      std::abort();
  }
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
  Records records;
  bool cut = ReadFormat(
      std::string_view(reinterpret_cast<const char*>(data), size), &records);
  if (notice.empty() == cut) std::abort();
  Verify(*j, records);

  for (const auto& [prefix, saved] : records) j->MarkUsed(saved.key);
  Saved fresh{KeyMaker(Config()).Key("fuzz"), 7, {1, 2, 3}};
  if (!j->Append(fresh.key, fresh.tokens, fresh.vector.data(), 3, &err) ||
      !j->Sync(&err) || !j->Compact(&err))
    std::abort();
  Put(&records, fresh);
  Verify(*j, records);
  j.reset();
  j = Journal::Open(path, Config(), &notice, &err);
  if (!j || !notice.empty()) std::abort();
  Verify(*j, records);
  return 0;
}
