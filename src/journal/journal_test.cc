#include "journal/journal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <doctest/doctest.h>

#include "journal/crc32c.h"
#include "test_util.h"

namespace {

JournalConfig Config(std::string model = "text-embedding-3-small",
                     std::string dims = "512") {
  return {{{"provider", "openai"}, {"model", model}, {"dimensions", dims}}};
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

float FromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// A vector with awkward values: NaN payloads, -0, denormals, infinities.
std::vector<float> Vector(uint32_t dims, uint32_t seed) {
  static const uint32_t kOdd[] = {0x7FC00001, 0xFFA12345, 0x80000000,
                                  0x00000001, 0x7F800000, 0xFF800000};
  std::vector<float> v(dims);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (uint32_t i = 0; i < dims; ++i)
    v[i] = i < 6 && seed % 2 ? FromBits(kOdd[i]) : uniform(rng);
  return v;
}

bool BitsEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// Checks that `journal` holds `vector` with `tokens` under `key`.
void CheckHolds(const Journal& journal, const JournalKey& key,
                const std::vector<float>& vector, uint32_t tokens) {
  uint32_t dims = 0, got_tokens = 0;
  REQUIRE(journal.Find(key, &dims, &got_tokens));
  CHECK(dims == vector.size());
  CHECK(got_tokens == tokens);
  std::vector<float> out(dims);
  std::string err;
  REQUIRE_MESSAGE(journal.Read(key, out.data(), &err), err);
  CHECK(BitsEqual(out, vector));
}

std::unique_ptr<Journal> MustOpen(const std::string& path,
                                  const JournalConfig& config,
                                  std::string* notice = nullptr) {
  std::string n, err;
  std::unique_ptr<Journal> journal = Journal::Open(path, config, &n, &err);
  REQUIRE_MESSAGE(journal, err);
  if (notice) *notice = n;
  else CHECK_MESSAGE(n.empty(), n);
  return journal;
}

}  // namespace

TEST_CASE("Journal keys hash the domain, the sorted settings and the text") {
  KeyMaker keys(Config());
  JournalKey a = keys.Key("hello world");
  CHECK(a == keys.Key("hello world"));
  CHECK(a != keys.Key("hello world!"));
  CHECK(a != KeyMaker(Config("text-embedding-3-large")).Key("hello world"));
  CHECK(a != KeyMaker(Config("text-embedding-3-small", "256")).Key("hello world"));

  JournalConfig reordered = Config();
  std::reverse(reordered.settings.begin(), reordered.settings.end());
  CHECK(KeyMaker(reordered).Key("hello world") == a);

  Sha256 expected;
  expected.Update("embedpipe journal key v1\n");
  expected.Update(EncodeJournalSettings(Config()));
  expected.Update("hello world");
  CHECK(a == expected.Final());

  // The settings encoding: count, then length-prefixed name and value,
  // sorted by name.
  std::string enc = EncodeJournalSettings({{{"b", "2"}, {"a", "1"}}});
  CHECK(enc == std::string("\2\0\0\0\1\0\0\0a\1\0\0\0001\1\0\0\0b\1\0\0\0002", 24));
}

TEST_CASE("Journal creates a 0600 file, appends, syncs and reopens bit-exact") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  std::vector<std::vector<float>> vectors = {Vector(1, 1), Vector(3, 2),
                                             Vector(1536, 3), Vector(8, 5)};
  {
    auto journal = MustOpen(path, Config());
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(journal->size() == 0);
    std::string err;
    for (size_t i = 0; i < vectors.size(); ++i) {
      REQUIRE(journal->Append(keys.Key("text " + std::to_string(i)),
                              static_cast<uint32_t>(10 + i), vectors[i].data(),
                              static_cast<uint32_t>(vectors[i].size()), &err));
    }
    // Readable before Sync, from the unwritten buffer.
    CHECK(journal->size() == 4);
    CHECK(journal->used() == 4);
    CheckHolds(*journal, keys.Key("text 2"), vectors[2], 12);
    CHECK(std::filesystem::file_size(path) < journal->bytes());
    REQUIRE(journal->Sync(&err));
    CHECK(std::filesystem::file_size(path) == journal->bytes());
    CHECK(journal->Sync(&err));  // Nothing new: a no-op.
    for (size_t i = 0; i < vectors.size(); ++i)
      CheckHolds(*journal, keys.Key("text " + std::to_string(i)), vectors[i],
                 static_cast<uint32_t>(10 + i));
    uint32_t dims, tokens;
    CHECK_FALSE(journal->Find(keys.Key("absent"), &dims, &tokens));
    std::vector<float> out(4);
    CHECK_FALSE(journal->Read(keys.Key("absent"), out.data(), &err));
  }
  auto journal = MustOpen(path, Config());
  CHECK(journal->size() == 4);
  CHECK(journal->used() == 0);
  for (size_t i = 0; i < vectors.size(); ++i)
    CheckHolds(*journal, keys.Key("text " + std::to_string(i)), vectors[i],
               static_cast<uint32_t>(10 + i));
}

TEST_CASE("Journal on-disk format is the documented one") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  JournalConfig config = {{{"model", "m"}}};
  JournalKey key;
  for (int i = 0; i < 32; ++i) key[i] = static_cast<uint8_t>(i);
  {
    auto journal = MustOpen(path, config);
    float v[2] = {1.0f, -2.0f};
    std::string err;
    REQUIRE(journal->Append(key, 7, v, 2, &err));
    REQUIRE(journal->Sync(&err));
  }
  std::string bytes = Slurp(path);
  std::string settings("\1\0\0\0\5\0\0\0model\1\0\0\0m", 18);
  std::string expected = "embedpipe journal v1\n";
  auto u32 = [](uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
    return s;
  };
  expected += u32(18) + u32(Crc32c(settings.data(), 18)) + settings;
  std::string payload(reinterpret_cast<const char*>(key.data()), 32);
  payload += u32(7) + u32(2) + std::string("\0\0\x80\x3f\0\0\0\xc0", 8);
  expected += u32(48) + u32(Crc32c(payload.data(), 48)) + payload;
  CHECK(bytes == expected);
}

TEST_CASE("Journal written under another configuration is refused, naming it") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  MustOpen(path, Config("a"));
  std::string before = Slurp(path);
  std::string notice, err;
  CHECK_FALSE(Journal::Open(path, Config("b"), &notice, &err));
  CHECK(err == "journal " + path + " was written with model=a, this run uses model=b");

  JournalConfig more = Config("a");
  more.settings.push_back({"normalize", "nfc"});
  CHECK_FALSE(Journal::Open(path, more, &notice, &err));
  CHECK(err == "journal " + path +
                   " was written without a normalize setting, this run uses "
                   "normalize=nfc");
  JournalConfig fewer = Config("a");
  fewer.settings.erase(fewer.settings.begin());  // provider
  CHECK_FALSE(Journal::Open(path, fewer, &notice, &err));
  CHECK(err == "journal " + path +
                   " was written with provider=openai, this run has no "
                   "provider setting");
  JournalConfig twice = Config("a");
  twice.settings.push_back({"model", "a"});
  CHECK_FALSE(Journal::Open(path, twice, &notice, &err));
  CHECK(err == "journal setting model is given twice");
  CHECK(Slurp(path) == before);

  // The same settings in another order are the same configuration.
  JournalConfig reordered = Config("a");
  std::reverse(reordered.settings.begin(), reordered.settings.end());
  MustOpen(path, reordered);
}

TEST_CASE("Journal refuses what is not a journal and leaves it untouched") {
  TempDir dir;
  std::string notice, err;
  std::string path = dir.File("notes.txt");
  Spit(path, "dear diary\n");
  CHECK_FALSE(Journal::Open(path, Config(), &notice, &err));
  CHECK(err == path + " is not an embedpipe journal; refusing to overwrite it");
  CHECK(Slurp(path) == "dear diary\n");

  Spit(path, "x");  // Short, and not a prefix of the magic line.
  CHECK_FALSE(Journal::Open(path, Config(), &notice, &err));
  CHECK(Slurp(path) == "x");

  Spit(path, "embedpipe journal v2\nwhatever");
  CHECK_FALSE(Journal::Open(path, Config(), &notice, &err));
  CHECK(err.find("format version") != std::string::npos);

  CHECK_FALSE(Journal::Open(dir.path, Config(), &notice, &err));
  CHECK(err == "cannot open journal " + dir.path + ": Is a directory");
  CHECK_FALSE(Journal::Open("/dev/null", Config(), &notice, &err));
  CHECK(err == "journal /dev/null is not a regular file");
  CHECK_FALSE(Journal::Open(dir.File("no/such/dir"), Config(), &notice, &err));
  CHECK(err.find("cannot open journal") != std::string::npos);
}

TEST_CASE("Journal starts an empty file or a creation cut short afresh") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  MustOpen(path, Config());
  std::string header = Slurp(path);

  std::string fresh = dir.File("empty");
  Spit(fresh, "");
  chmod(fresh.c_str(), 0644);
  MustOpen(fresh, Config());  // No notice for an empty file.
  CHECK(Slurp(fresh) == header);
  struct stat st;
  REQUIRE(stat(fresh.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  for (size_t cut : {size_t{5}, size_t{21}, size_t{25}, header.size() - 1}) {
    Spit(fresh, header.substr(0, cut));
    std::string notice;
    auto journal = MustOpen(fresh, Config(), &notice);
    CHECK(notice.find("cut short while being created") != std::string::npos);
    CHECK(journal->size() == 0);
    journal.reset();
    CHECK(Slurp(fresh) == header);
  }

  // A cut header written under other settings is not ours to rewrite.
  fresh = dir.File("other");
  MustOpen(fresh, Config("other"));
  std::string other = Slurp(fresh);
  Spit(fresh, other.substr(0, other.size() - 1));
  std::string notice, err;
  CHECK_FALSE(Journal::Open(fresh, Config(), &notice, &err));
  CHECK(err.find("corrupt header") != std::string::npos);
}

TEST_CASE("Journal cuts off a torn tail and keeps every record before it") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  std::vector<uint64_t> ends;  // File size after each record.
  {
    auto journal = MustOpen(path, Config());
    std::string err;
    for (uint32_t i = 0; i < 5; ++i) {
      std::vector<float> v = Vector(16, i);
      REQUIRE(journal->Append(keys.Key(std::to_string(i)), i, v.data(), 16, &err));
      REQUIRE(journal->Sync(&err));
      ends.push_back(journal->bytes());
    }
  }
  REQUIRE(truncate(path.c_str(), static_cast<off_t>(ends[4] - 10)) == 0);
  std::string notice;
  auto journal = MustOpen(path, Config(), &notice);
  CHECK(notice == "journal " + path +
                      ": cut off a torn or corrupt tail (incomplete record at "
                      "byte " + std::to_string(ends[3]) + ", " +
                      std::to_string(ends[4] - 10 - ends[3]) +
                      " bytes dropped); kept 4 records (" +
                      std::to_string(ends[3]) + " bytes)");
  CHECK(journal->size() == 4);
  CHECK(std::filesystem::file_size(path) == ends[3]);
  for (uint32_t i = 0; i < 4; ++i)
    CheckHolds(*journal, keys.Key(std::to_string(i)), Vector(16, i), i);

  // Appends continue after the last good record.
  std::string err;
  std::vector<float> v = Vector(16, 9);
  REQUIRE(journal->Append(keys.Key("9"), 9, v.data(), 16, &err));
  REQUIRE(journal->Sync(&err));
  journal.reset();
  journal = MustOpen(path, Config());
  CHECK(journal->size() == 5);
  CheckHolds(*journal, keys.Key("9"), v, 9);
}

TEST_CASE("Journal cuts at a corrupt record; a corrupt header is refused") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  std::vector<uint64_t> ends;
  size_t header_size;
  {
    auto journal = MustOpen(path, Config());
    header_size = journal->bytes();
    std::string err;
    for (uint32_t i = 0; i < 5; ++i) {
      std::vector<float> v = Vector(4, i);
      REQUIRE(journal->Append(keys.Key(std::to_string(i)), i, v.data(), 4, &err));
      ends.push_back(journal->bytes());
    }
  }
  std::string good = Slurp(path);
  std::string bad = good;
  bad[ends[1] + 30] ^= 0x01;  // Inside record 2's key.
  Spit(path, bad);
  std::string notice, err;
  auto journal = MustOpen(path, Config(), &notice);
  CHECK(notice.find("bad checksum at byte " + std::to_string(ends[1])) !=
        std::string::npos);
  CHECK(notice.find("kept 2 records") != std::string::npos);
  CHECK(journal->size() == 2);
  journal.reset();

  bad = good;
  bad[ends[2]] ^= 0x01;  // Record 3's length, now not 40 + 4 * dims.
  Spit(path, bad);
  journal = MustOpen(path, Config(), &notice);
  CHECK(notice.find("bad record length") != std::string::npos);
  CHECK(journal->size() == 3);
  journal.reset();

  bad = good;
  bad[header_size - 2] ^= 0x20;  // Inside the settings.
  Spit(path, bad);
  CHECK_FALSE(Journal::Open(path, Config(), &notice, &err));
  CHECK(err == "journal " + path + " has a corrupt header; refusing to use it");
  CHECK(Slurp(path) == bad);
}

TEST_CASE("Journal damaged bytes: open with a notice or refuse, never crash") {
  TempDir dir(/*in_memory=*/true);
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  std::vector<uint64_t> ends;
  std::vector<std::vector<float>> vectors;
  uint64_t header_size;
  {
    auto journal = MustOpen(path, Config());
    header_size = journal->bytes();
    std::string err;
    for (uint32_t i = 0; i < 20; ++i) {
      vectors.push_back(Vector(1 + i % 7, i));
      REQUIRE(journal->Append(keys.Key(std::to_string(i)), i,
                              vectors.back().data(),
                              static_cast<uint32_t>(vectors.back().size()),
                              &err));
      ends.push_back(journal->bytes());
    }
  }
  const std::string good = Slurp(path);
  std::mt19937 rng(12345);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes = good;
    size_t damage;  // The first byte that differs or is missing.
    if (round % 3 == 0) {
      damage = rng() % (bytes.size() + 1);
      bytes.resize(damage);
    } else {
      damage = bytes.size();
      for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) {
        size_t at = rng() % bytes.size();
        bytes[at] = static_cast<char>(bytes[at] ^ (1 + rng() % 255));
        damage = std::min(damage, at);
      }
    }
    Spit(path, bytes);
    std::string notice, err;
    auto journal = Journal::Open(path, Config(), &notice, &err);
    CAPTURE(round);
    CAPTURE(damage);
    size_t intact = 0;
    while (intact < ends.size() && ends[intact] <= damage) ++intact;
    if (!journal) {
      // Only a damaged header is refused, and then the file is untouched.
      CHECK(damage < header_size);
      CHECK(Slurp(path) == bytes);
      continue;
    }
    CHECK(journal->size() == intact);
    CHECK(notice.empty() == (damage == good.size() || damage == 0 ||
                             (round % 3 == 0 && intact > 0 &&
                              damage == ends[intact - 1]) ||
                             (round % 3 == 0 && damage == header_size)));
    for (size_t i = 0; i < intact; ++i)
      CheckHolds(*journal, keys.Key(std::to_string(i)), vectors[i],
                 static_cast<uint32_t>(i));
    journal.reset();
    // What open cut off stays cut off: the next open is clean.
    MustOpen(path, Config());
  }
}

TEST_CASE("Journal: the later record of a key wins, in the run and on reopen") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  std::vector<float> first = Vector(8, 1), second = Vector(4, 2);
  std::string err;
  {
    auto journal = MustOpen(path, Config());
    REQUIRE(journal->Append(keys.Key("x"), 1, first.data(), 8, &err));
    REQUIRE(journal->Sync(&err));
    REQUIRE(journal->Append(keys.Key("x"), 2, second.data(), 4, &err));
    CHECK(journal->size() == 1);
    CHECK(journal->used() == 1);
    CheckHolds(*journal, keys.Key("x"), second, 2);
  }
  auto journal = MustOpen(path, Config());
  CHECK(journal->size() == 1);
  CheckHolds(*journal, keys.Key("x"), second, 2);
}

TEST_CASE("Journal compaction keeps what the run used, durably, mode 0600") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  std::string err;
  {
    auto journal = MustOpen(path, Config());
    for (uint32_t i = 0; i < 10; ++i) {
      std::vector<float> v = Vector(32, i);
      REQUIRE(journal->Append(keys.Key(std::to_string(i)), i, v.data(), 32, &err));
    }
  }
  chmod(path.c_str(), 0644);
  uint64_t before = std::filesystem::file_size(path);
  auto journal = MustOpen(path, Config());
  for (uint32_t i : {7u, 2u, 5u}) journal->MarkUsed(keys.Key(std::to_string(i)));
  journal->MarkUsed(keys.Key("2"));        // Twice counts once.
  journal->MarkUsed(keys.Key("absent"));   // Ignored.
  CHECK(journal->used() == 3);
  std::vector<float> fresh = Vector(32, 100);
  REQUIRE(journal->Append(keys.Key("new"), 100, fresh.data(), 32, &err));
  REQUIRE_MESSAGE(journal->Compact(&err), err);
  CHECK(journal->size() == 4);
  CHECK(journal->used() == 4);
  CHECK(journal->bytes() == std::filesystem::file_size(path));
  CHECK(journal->bytes() < before);
  CHECK_FALSE(std::filesystem::exists(path + ".compact"));
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  uint32_t dims, tokens;
  CHECK_FALSE(journal->Find(keys.Key("3"), &dims, &tokens));
  for (uint32_t i : {2u, 5u, 7u})
    CheckHolds(*journal, keys.Key(std::to_string(i)), Vector(32, i), i);
  CheckHolds(*journal, keys.Key("new"), fresh, 100);

  // The compacted file keeps file order and takes appends; the lock moved
  // to it with the rename.
  std::string notice;
  CHECK_FALSE(Journal::Open(path, Config(), &notice, &err));
  CHECK(err == "journal " + path + " is in use by another run");
  std::vector<float> later = Vector(32, 200);
  REQUIRE(journal->Append(keys.Key("later"), 200, later.data(), 32, &err));
  REQUIRE(journal->Sync(&err));
  journal.reset();
  journal = MustOpen(path, Config());
  CHECK(journal->size() == 5);
  CheckHolds(*journal, keys.Key("later"), later, 200);
  CheckHolds(*journal, keys.Key("5"), Vector(32, 5), 5);
  std::string bytes = Slurp(path);
  size_t first = bytes.find(std::string(
      reinterpret_cast<const char*>(keys.Key("2").data()), 32));
  size_t last = bytes.find(std::string(
      reinterpret_cast<const char*>(keys.Key("7").data()), 32));
  CHECK(first < last);

  // Compacting to nothing leaves a valid, empty journal.
  journal.reset();
  journal = MustOpen(path, Config());
  REQUIRE(journal->Compact(&err));
  CHECK(journal->size() == 0);
  journal.reset();
  CHECK(MustOpen(path, Config())->size() == 0);
}

TEST_CASE("Journal: a second opener is refused while the first holds it") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  auto journal = MustOpen(path, Config());
  std::string notice, err;
  CHECK_FALSE(Journal::Open(path, Config(), &notice, &err));
  CHECK(err == "journal " + path + " is in use by another run");
  journal.reset();
  MustOpen(path, Config());
}

TEST_CASE("Journal Append refuses bad dims; Read notices later damage") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  auto journal = MustOpen(path, Config());
  std::string err;
  std::vector<float> v(kJournalMaxDims + 1);
  CHECK_FALSE(journal->Append(keys.Key("a"), 1, v.data(), 0, &err));
  CHECK_FALSE(journal->Append(keys.Key("a"), 1, v.data(), kJournalMaxDims + 1, &err));
  CHECK(err.find("dimensions") != std::string::npos);
  REQUIRE(journal->Append(keys.Key("a"), 1, v.data(), kJournalMaxDims, &err));
  REQUIRE(journal->Append(keys.Key("b"), 1, v.data(), 3, &err));
  REQUIRE(journal->Sync(&err));
  CHECK(journal->size() == 2);

  // Someone scribbles on the file under us: Read reports, never misleads.
  int fd = open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  uint64_t end = std::filesystem::file_size(path);
  REQUIRE(pwrite(fd, "\xff", 1, static_cast<off_t>(end - 1)) == 1);
  close(fd);
  std::vector<float> out(3);
  CHECK_FALSE(journal->Read(keys.Key("b"), out.data(), &err));
  CHECK(err.find("damaged") != std::string::npos);
  // Compaction will not copy it: the journal stays as it was.
  std::string before = Slurp(path);
  CHECK_FALSE(journal->Compact(&err));
  CHECK(err.find("damaged") != std::string::npos);
  CHECK(Slurp(path) == before);
  CHECK_FALSE(std::filesystem::exists(path + ".compact"));
  CHECK(journal->size() == 2);
  REQUIRE(truncate(path.c_str(), static_cast<off_t>(end - 20)) == 0);
  CHECK_FALSE(journal->Read(keys.Key("b"), out.data(), &err));
  CHECK(err.find("file shrunk") != std::string::npos);
}

TEST_CASE("Journal writes a large unsynced buffer early; index stays compact") {
  TempDir dir(/*in_memory=*/true);
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  auto journal = MustOpen(path, Config());
  std::vector<float> v = Vector(1536, 4);
  std::string err;
  uint64_t header = journal->bytes();
  for (int i = 0; i < 12000; ++i)  // 74 MB, over the 64 MiB buffer cap.
    REQUIRE(journal->Append(keys.Key(std::to_string(i)), 1, v.data(), 1536, &err));
  CHECK(std::filesystem::file_size(path) > header);
  CHECK(journal->size() == 12000);
  CheckHolds(*journal, keys.Key("0"), v, 1);
  CheckHolds(*journal, keys.Key("11999"), v, 1);
  REQUIRE(journal->Sync(&err));
  // 28-byte slots at a load between 0.4 and 0.8.
  CHECK(journal->index_bytes() <= journal->size() * 70 + 28 * 1024);
}

TEST_CASE("Journal after compaction: dropped keys are gone, can come back") {
  TempDir dir(/*in_memory=*/true);
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  std::vector<float> v = Vector(2, 7);
  std::string err;
  auto journal = MustOpen(path, Config());
  for (int i = 0; i < 3000; ++i)
    REQUIRE(journal->Append(keys.Key(std::to_string(i)), 1, v.data(), 2, &err));
  journal.reset();
  journal = MustOpen(path, Config());
  for (int i = 0; i < 3000; i += 3) journal->MarkUsed(keys.Key(std::to_string(i)));
  REQUIRE(journal->Compact(&err));
  CHECK(journal->size() == 1000);
  uint32_t dims, tokens;
  CHECK_FALSE(journal->Find(keys.Key("1"), &dims, &tokens));
  journal->MarkUsed(keys.Key("1"));  // Gone: ignored.
  CHECK(journal->used() == 1000);
  std::vector<float> back = Vector(3, 8);
  REQUIRE(journal->Append(keys.Key("1"), 5, back.data(), 3, &err));
  CHECK(journal->size() == 1001);
  CheckHolds(*journal, keys.Key("1"), back, 5);
  // Enough new keys to rehash (tombstones count toward the load).
  for (int i = 3000; i < 8000; ++i)
    REQUIRE(journal->Append(keys.Key(std::to_string(i)), 1, v.data(), 2, &err));
  CHECK(journal->size() == 6001);
  for (int i = 0; i < 8000; ++i) {
    bool kept = i == 1 || i % 3 == 0 || i >= 3000;
    CHECK(journal->Find(keys.Key(std::to_string(i)), &dims, &tokens) == kept);
  }
  REQUIRE(journal->Compact(&err));
  CHECK(journal->size() == 6001);
  journal.reset();
  journal = MustOpen(path, Config());
  CHECK(journal->size() == 6001);
  CheckHolds(*journal, keys.Key("1"), back, 5);
  CheckHolds(*journal, keys.Key("7999"), v, 1);
  CheckHolds(*journal, keys.Key("2997"), v, 1);
}

TEST_CASE("Journal OpenForReading looks vectors up and changes nothing") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  KeyMaker keys(Config());
  std::string notice, err;
  CHECK_FALSE(Journal::OpenForReading(path, Config(), &notice, &err));
  CHECK_FALSE(std::filesystem::exists(path));  // never created
  uint64_t end_of_two = 0;
  {
    auto journal = MustOpen(path, Config());
    for (uint32_t i = 0; i < 3; ++i) {
      std::vector<float> v = Vector(8, i);
      REQUIRE(journal->Append(keys.Key(std::to_string(i)), i, v.data(), 8, &err));
      REQUIRE(journal->Sync(&err));
      if (i == 1) end_of_two = journal->bytes();
    }
    // A writer holds it: a reader is refused, as a second writer is.
    CHECK_FALSE(Journal::OpenForReading(path, Config(), &notice, &err));
    CHECK(err == "journal " + path + " is in use by another run");
  }
  uint64_t torn = end_of_two + 7;
  REQUIRE(truncate(path.c_str(), static_cast<off_t>(torn)) == 0);
  std::string before = Slurp(path);

  auto reader = Journal::OpenForReading(path, Config(), &notice, &err);
  REQUIRE_MESSAGE(reader, err);
  CHECK(notice == "journal " + path +
                      ": ignoring a torn or corrupt tail (incomplete record "
                      "at byte " + std::to_string(end_of_two) +
                      "); read 2 records");
  CHECK(reader->size() == 2);
  CheckHolds(*reader, keys.Key("1"), Vector(8, 1), 1);
  std::vector<float> v = Vector(8, 5);
  CHECK_FALSE(reader->Append(keys.Key("5"), 5, v.data(), 8, &err));
  CHECK(err == "journal " + path + " is open for reading only");
  CHECK_FALSE(reader->Sync(&err));
  // Two readers at once are fine; a writer waits for them.
  auto second = Journal::OpenForReading(path, Config(), &notice, &err);
  CHECK(second);
  CHECK_FALSE(Journal::Open(path, Config(), &notice, &err));
  reader.reset();
  second.reset();
  CHECK(Slurp(path) == before);  // byte for byte untouched

  // Other settings are refused, naming the difference, as by Open.
  CHECK_FALSE(Journal::OpenForReading(path, Config("other"), &notice, &err));
  CHECK(err.find("model=text-embedding-3-small, this run uses model=other") !=
        std::string::npos);
}

TEST_CASE("Journal OpenForReading: a creation cut short is an empty journal") {
  TempDir dir;
  std::string path = dir.File("ckpt");
  Spit(path, "");
  std::string notice, err;
  auto reader = Journal::OpenForReading(path, Config(), &notice, &err);
  REQUIRE_MESSAGE(reader, err);
  CHECK(reader->size() == 0);
  reader.reset();
  CHECK(Slurp(path).empty());
}
