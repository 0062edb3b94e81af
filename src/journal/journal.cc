#include "journal/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "journal/crc32c.h"

namespace {

constexpr char kMagic[] = "embedpipe journal v1\n";
constexpr size_t kMagicSize = sizeof(kMagic) - 1;
constexpr char kMagicStem[] = "embedpipe journal v";
constexpr size_t kMagicStemSize = sizeof(kMagicStem) - 1;
constexpr char kKeyDomain[] = "embedpipe journal key v1\n";

constexpr size_t kFrameHead = 8;       // u32 len, u32 crc
constexpr uint32_t kFixedPayload = 40;  // key[32], u32 tokens, u32 dims
constexpr size_t kRecordHead = kFrameHead + kFixedPayload;
constexpr uint32_t kMaxHeaderPayload = 64 << 10;
constexpr uint32_t kMaxPayload = kFixedPayload + 4 * kJournalMaxDims;
constexpr uint64_t kMaxOffset = uint64_t{1} << 47;
// Reads while scanning and copy size while compacting; larger than any
// frame, so a frame always fits in the scan buffer.
constexpr size_t kChunk = 4 << 20;
// Append writes the buffer out (without fsync) past this size, so a caller
// that syncs rarely still has bounded memory.
constexpr size_t kMaxPending = 64 << 20;
constexpr size_t kMinSlots = 1024;
constexpr uint64_t kMaxReserve = 4 << 20;  // Records; 4M slots = 112 MiB.

constexpr bool kLittleEndian = std::endian::native == std::endian::little;

using Settings = std::vector<std::pair<std::string, std::string>>;

void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

void AppendU32(std::string* out, uint32_t v) {
  char b[4];
  PutU32(b, v);
  out->append(b, 4);
}

uint32_t GetU32(const char* p) {
  const unsigned char* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 |
         uint32_t{u[3]} << 24;
}

// Converts n float32 between host order and little-endian, in place.
void SwapFloatsIfBigEndian(char* p, size_t n) {
  if constexpr (!kLittleEndian) {
    for (size_t i = 0; i < n; ++i, p += 4) {
      std::swap(p[0], p[3]);
      std::swap(p[1], p[2]);
    }
  } else {
    (void)p;
    (void)n;
  }
}

std::string ErrnoText(int e) { return std::strerror(e); }

Settings Sorted(const JournalConfig& config) {
  Settings s = config.settings;
  std::sort(s.begin(), s.end());
  return s;
}

std::string Encode(const Settings& sorted) {
  std::string out;
  AppendU32(&out, static_cast<uint32_t>(sorted.size()));
  for (const auto& [name, value] : sorted) {
    AppendU32(&out, static_cast<uint32_t>(name.size()));
    out += name;
    AppendU32(&out, static_cast<uint32_t>(value.size()));
    out += value;
  }
  return out;
}

// Parses a header payload; false if it is not exactly a settings encoding.
bool Decode(std::string_view in, Settings* out) {
  auto take_u32 = [&in](uint32_t* v) {
    if (in.size() < 4) return false;
    *v = GetU32(in.data());
    in.remove_prefix(4);
    return true;
  };
  auto take_str = [&](std::string* s) {
    uint32_t n;
    if (!take_u32(&n) || n > in.size()) return false;
    s->assign(in.data(), n);
    in.remove_prefix(n);
    return true;
  };
  uint32_t count;
  if (!take_u32(&count)) return false;
  for (uint32_t i = 0; i < count; ++i) {
    std::pair<std::string, std::string> setting;
    if (!take_str(&setting.first) || !take_str(&setting.second)) return false;
    out->push_back(std::move(setting));
  }
  return in.empty();
}

// Names the first setting (by name) whose value differs; empty if equal.
std::string Difference(const std::string& path, const Settings& journal,
                       const Settings& run) {
  auto j = journal.begin(), r = run.begin();
  const std::string head = "journal " + path + " was written with";
  while (j != journal.end() || r != run.end()) {
    if (r == run.end() || (j != journal.end() && j->first < r->first))
      return head + " " + j->first + "=" + j->second + ", this run has no " +
             j->first + " setting";
    if (j == journal.end() || r->first < j->first)
      return head + "out a " + r->first + " setting, this run uses " +
             r->first + "=" + r->second;
    if (j->second != r->second)
      return head + " " + j->first + "=" + j->second + ", this run uses " +
             r->first + "=" + r->second;
    ++j;
    ++r;
  }
  return "";
}

// The magic line and header frame of a journal with these settings.
std::string HeaderFor(const std::string& payload) {
  std::string header(kMagic, kMagicSize);
  AppendU32(&header, static_cast<uint32_t>(payload.size()));
  AppendU32(&header, Crc32c(payload.data(), payload.size()));
  return header + payload;
}

bool Refuse(const std::string& message, std::string* err) {
  *err = message;
  return false;
}

bool PwriteAll(int fd, const char* data, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t w = pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return true;
}

// Reads exactly the bytes of `iov` (two buffers) at offset; a file too
// short fails with errno 0.
bool PreadvAll(int fd, iovec iov[2], uint64_t offset) {
  int first = 0;
  while (first < 2) {
    ssize_t r = preadv(fd, iov + first, 2 - first, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = 0;
      return false;
    }
    offset += static_cast<uint64_t>(r);
    size_t left = static_cast<size_t>(r);
    while (first < 2 && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (first < 2) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return true;
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Whether a record's 48-byte head and its dims floats (as on disk) agree
// with its length, dims and checksum fields.
bool RecordIsIntact(const char* head, const char* body, uint32_t dims) {
  size_t body_size = size_t{dims} * 4;
  uint32_t crc = Crc32cExtend(Crc32c(head + kFrameHead, kFixedPayload), body,
                              body_size);
  return GetU32(head) == kFixedPayload + body_size &&
         GetU32(head + 4) == crc && GetU32(head + kFrameHead + 36) == dims;
}

bool PreadAll(int fd, char* data, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = pread(fd, data, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = 0;
      return false;
    }
    data += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

// Makes a create or rename in the directory of `path` durable.
bool SyncDir(const std::string& path, std::string* err) {
  std::string dir = DirName(path);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    *err = "cannot sync directory " + dir + ": " + ErrnoText(errno);
    if (fd >= 0) close(fd);
    return false;
  }
  close(fd);
  return true;
}

// Sequential reads of [0, size) of a file, through a buffer larger than any
// frame.
class Scanner {
 public:
  // A small file gets a small buffer: it still holds the whole file.
  Scanner(int fd, uint64_t size)
      : fd_(fd),
        size_(size),
        buf_(static_cast<size_t>(std::clamp<uint64_t>(size, 1, kChunk))) {}

  /// Makes min(n, bytes left) bytes available at data(); n <= kChunk.
  bool Ensure(size_t n, std::string* err) {
    if (end_ - begin_ >= n) return true;
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    while (end_ < n && read_ < size_) {
      size_t want = static_cast<size_t>(
          std::min<uint64_t>(buf_.size() - end_, size_ - read_));
      ssize_t r = pread(fd_, buf_.data() + end_, want,
                        static_cast<off_t>(read_));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        *err = ErrnoText(errno);
        return false;
      }
      if (r == 0) {  // Shrunk under us: what is left is what there is.
        size_ = read_;
        break;
      }
      end_ += static_cast<size_t>(r);
      read_ += static_cast<uint64_t>(r);
    }
    return true;
  }
  const char* data() const { return buf_.data() + begin_; }
  size_t available() const { return end_ - begin_; }
  void Skip(size_t n) { begin_ += n; }

 private:
  int fd_;
  uint64_t size_;
  uint64_t read_ = 0;  // File bytes read into buf_ so far.
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;
};

}  // namespace

std::string EncodeJournalSettings(const JournalConfig& config) {
  return Encode(Sorted(config));
}

KeyMaker::KeyMaker(const JournalConfig& config) {
  // The settings encoding is self-delimiting, so the text needs no length.
  prefix_.Update(kKeyDomain);
  prefix_.Update(EncodeJournalSettings(config));
}

JournalKey KeyMaker::Key(std::string_view text) {
  work_.CopyFrom(prefix_);
  work_.Update(text);
  return work_.Final();
}

std::unique_ptr<Journal> Journal::Open(const std::string& path,
                                       const JournalConfig& config,
                                       std::string* notice, std::string* err) {
  return OpenWith(path, config, false, notice, err);
}

std::unique_ptr<Journal> Journal::OpenForReading(const std::string& path,
                                                 const JournalConfig& config,
                                                 std::string* notice,
                                                 std::string* err) {
  return OpenWith(path, config, true, notice, err);
}

std::unique_ptr<Journal> Journal::OpenWith(const std::string& path,
                                           const JournalConfig& config,
                                           bool read_only, std::string* notice,
                                           std::string* err) {
  notice->clear();
  Settings run = Sorted(config);
  for (size_t i = 1; i < run.size(); ++i) {
    if (run[i].first == run[i - 1].first) {
      *err = "journal setting " + run[i].first + " is given twice";
      return nullptr;
    }
  }
  std::string payload = Encode(run);
  if (payload.size() > kMaxHeaderPayload) {
    *err = "journal settings are too large for the header";
    return nullptr;
  }

  bool created = false;
  int fd = open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && !read_only) {
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    created = fd >= 0;
    if (fd < 0 && errno == EEXIST)  // Lost a race: open what is there.
      fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (fd < 0) {
    *err = "cannot open journal " + path + ": " + ErrnoText(errno);
    return nullptr;
  }
  std::unique_ptr<Journal> journal(new Journal(path, fd));
  if (read_only) {
    journal->read_only_ = true;
    journal->failed_ = "journal " + path + " is open for reading only";
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    *err = "cannot stat journal " + path + ": " + ErrnoText(errno);
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    *err = "journal " + path + " is not a regular file";
    return nullptr;
  }
  if (flock(fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    *err = errno == EWOULDBLOCK
               ? "journal " + path + " is in use by another run"
               : "cannot lock journal " + path + ": " + ErrnoText(errno);
    return nullptr;
  }
  char real[PATH_MAX];
  journal->real_path_ = realpath(path.c_str(), real) ? real : path;
  if (created && !SyncDir(journal->real_path_, err)) return nullptr;
  if (!journal->Load(payload, run, static_cast<uint64_t>(st.st_size), notice,
                     err))
    return nullptr;
  return journal;
}

bool Journal::Initialize(uint64_t old_size, const std::string& header,
                         std::string* notice, std::string* err) {
  if (old_size > 0) {
    *notice = "journal " + path_ + " was cut short while being created (" +
              std::to_string(old_size) +
              " bytes, no record); starting it afresh";
  }
  header_ = header;
  // Mode 0600 also for an existing empty file: it is about to hold vectors.
  if ((old_size > 0 && ftruncate(fd_, 0) != 0) || fchmod(fd_, 0600) != 0 ||
      !PwriteAll(fd_, header_.data(), header_.size(), 0) || fsync(fd_) != 0) {
    *err = "cannot write journal " + path_ + ": " + ErrnoText(errno);
    return false;
  }
  file_end_ = header_.size();
  Reserve(0);
  return true;
}

bool Journal::Load(const std::string& payload, const Settings& run,
                   uint64_t size, std::string* notice, std::string* err) {
  Scanner in(fd_, size);
  std::string read_err;
  auto read_failed = [&] {
    *err = "cannot read journal " + path_ + ": " + read_err;
    return false;
  };

  // The header. A strict prefix of the one this run would write is a
  // creation cut short (it holds no record, so nothing is lost by starting
  // afresh); anything else must parse in full, or it is not ours to touch.
  std::string expected = HeaderFor(payload);
  if (!in.Ensure(expected.size(), &read_err)) return read_failed();
  if (size < expected.size() &&
      std::memcmp(in.data(), expected.data(), in.available()) == 0) {
    if (!read_only_) return Initialize(size, expected, notice, err);
    Reserve(0);
    return true;
  }
  size_t have = std::min(in.available(), kMagicSize);
  if (have < kMagicSize || std::memcmp(in.data(), kMagic, kMagicSize) != 0) {
    if (have >= kMagicStemSize &&
        std::memcmp(in.data(), kMagicStem, kMagicStemSize) == 0) {
      *err = "journal " + path_ +
             " has a format version this embedpipe does not read (it reads "
             "v1)";
    } else {
      *err = path_ + " is not an embedpipe journal; refusing to overwrite it";
    }
    return false;
  }
  in.Skip(kMagicSize);
  const std::string corrupt =
      "journal " + path_ + " has a corrupt header; refusing to use it";
  if (!in.Ensure(kFrameHead, &read_err)) return read_failed();
  if (in.available() < kFrameHead) return Refuse(corrupt, err);
  uint32_t header_len = GetU32(in.data());
  uint32_t header_crc = GetU32(in.data() + 4);
  if (header_len > kMaxHeaderPayload) return Refuse(corrupt, err);
  if (!in.Ensure(kFrameHead + header_len, &read_err)) return read_failed();
  if (in.available() < kFrameHead + header_len) return Refuse(corrupt, err);
  Settings journal;
  std::string_view settings(in.data() + kFrameHead, header_len);
  if (Crc32c(settings.data(), header_len) != header_crc ||
      !Decode(settings, &journal))
    return Refuse(corrupt, err);
  std::string difference = Difference(path_, journal, run);
  if (!difference.empty()) return Refuse(difference, err);
  header_.assign(kMagic, kMagicSize);
  header_.append(in.data(), kFrameHead + header_len);
  in.Skip(kFrameHead + header_len);

  // The records, up to the first that is incomplete or damaged.
  uint64_t end = header_.size();
  size_t kept = 0;
  const char* damage = nullptr;
  Reserve(0);
  for (;;) {
    if (!in.Ensure(kFrameHead, &read_err)) return read_failed();
    if (in.available() == 0) break;
    if (in.available() < kFrameHead) {
      damage = "incomplete record";
      break;
    }
    uint32_t len = GetU32(in.data());
    uint32_t crc = GetU32(in.data() + 4);
    if (len < kFixedPayload || len > kMaxPayload ||
        (len - kFixedPayload) % 4 != 0) {
      damage = "bad record length";
      break;
    }
    if (!in.Ensure(kFrameHead + len, &read_err)) return read_failed();
    if (in.available() < kFrameHead + len) {
      damage = "incomplete record";
      break;
    }
    const char* body = in.data() + kFrameHead;
    uint32_t dims = GetU32(body + 36);
    if (Crc32c(body, len) != crc) {
      damage = "bad checksum";
      break;
    }
    if (dims != (len - kFixedPayload) / 4 || dims == 0) {
      damage = "bad record length";
      break;
    }
    // Size the index for a file of records like the first, up to a cap: a
    // tiny first record before gigabytes of anything must not reserve
    // gigabytes (growth handles real journals past it).
    if (kept == 0)
      Reserve(static_cast<size_t>(std::min<uint64_t>(
          (size - end) / (kFrameHead + len), kMaxReserve)));
    if (!Insert(reinterpret_cast<const uint8_t*>(body), GetU32(body + 32),
                dims, end, false)) {
      damage = "record beyond 128 TiB";
      break;
    }
    end += kFrameHead + len;
    ++kept;
    in.Skip(kFrameHead + len);
  }
  if (damage && read_only_) {
    *notice = "journal " + path_ + ": ignoring a torn or corrupt tail (" +
              damage + " at byte " + std::to_string(end) + "); read " +
              std::to_string(kept) + " records";
  } else if (damage) {
    // Cut it off now, so that appends follow the last good record.
    if (ftruncate(fd_, static_cast<off_t>(end)) != 0 || fdatasync(fd_) != 0) {
      *err = "cannot truncate journal " + path_ + ": " + ErrnoText(errno);
      return false;
    }
    *notice = "journal " + path_ + ": cut off a torn or corrupt tail (" +
              damage + " at byte " + std::to_string(end) + ", " +
              std::to_string(size - end) + " bytes dropped); kept " +
              std::to_string(kept) + " records (" + std::to_string(end) +
              " bytes)";
  }
  file_end_ = end;
  return true;
}

Journal::~Journal() {
  std::string ignored;
  Sync(&ignored);
  close(fd_);
}

uint64_t Journal::Offset(const Slot& s) {
  return uint64_t{s.offset_lo} | uint64_t{s.packed & 0x7FFF} << 32;
}

size_t Journal::Lookup(const JournalKey& key) const {
  // The key is a hash already: its first bytes pick the slot.
  uint64_t h;
  std::memcpy(&h, key.data(), sizeof h);
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (Dims(s) == 0) return kNoSlot;
    if (std::memcmp(s.key, key.data(), sizeof s.key) == 0)
      return Offset(s) != 0 ? i : kNoSlot;  // A key is in one slot at most.
  }
}

size_t Journal::SlotsFor(size_t records) {
  size_t slots = kMinSlots;
  while (slots * 4 < records * 5) slots *= 2;  // load <= 0.8
  return slots;
}

void Journal::Reserve(size_t records) {
  size_t want = SlotsFor(records);
  if (want > slots_.size() || occupied_ > count_)
    Rehash(std::max(want, slots_.size()));
}

void Journal::Rehash(size_t slots) {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(slots, Slot{});
  size_t mask = slots - 1;
  for (const Slot& s : old) {
    if (Dims(s) == 0 || Offset(s) == 0) continue;  // Empty, tombstone.
    uint64_t h;
    std::memcpy(&h, s.key, sizeof h);
    size_t i = h & mask;
    while (Dims(slots_[i]) != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
  occupied_ = count_;
}

bool Journal::Insert(const uint8_t* key, uint32_t tokens, uint32_t dims,
                     uint64_t offset, bool used) {
  if (offset >= kMaxOffset) return false;
  if ((occupied_ + 1) * 5 > slots_.size() * 4) Reserve(count_ + 1);
  uint64_t h;
  std::memcpy(&h, key, sizeof h);
  size_t mask = slots_.size() - 1;
  size_t i = h & mask;
  while (Dims(slots_[i]) != 0 &&
         std::memcmp(slots_[i].key, key, sizeof slots_[i].key) != 0)
    i = (i + 1) & mask;
  Slot& s = slots_[i];
  if (Dims(s) == 0) {
    ++count_;
    ++occupied_;
  } else if (Offset(s) == 0) {
    ++count_;  // A tombstone comes back to life.
  } else if (Used(s)) {
    used = true;  // Once used in this run, a newer record still is.
    --used_;
  }
  std::memcpy(s.key, key, sizeof s.key);
  s.tokens = tokens;
  s.offset_lo = static_cast<uint32_t>(offset);
  s.packed = static_cast<uint32_t>(offset >> 32) | (used ? 0x8000u : 0) |
             dims << 16;
  if (used) ++used_;
  return true;
}

bool Journal::Find(const JournalKey& key, uint32_t* dims,
                   uint32_t* tokens) const {
  size_t i = Lookup(key);
  if (i == kNoSlot) return false;
  *dims = Dims(slots_[i]);
  *tokens = slots_[i].tokens;
  return true;
}

bool Journal::ReadRecord(uint64_t offset, uint32_t dims, char* head,
                         char* body, std::string* err) const {
  size_t body_size = size_t{dims} * 4;
  if (offset >= file_end_) {
    const char* p = pending_.data() + (offset - file_end_);
    std::memcpy(head, p, kRecordHead);
    std::memcpy(body, p + kRecordHead, body_size);
  } else {
    iovec iov[2] = {{head, kRecordHead}, {body, body_size}};
    if (!PreadvAll(fd_, iov, offset)) {
      *err = "cannot read journal " + path_ + " at byte " +
             std::to_string(offset) + ": " +
             (errno ? ErrnoText(errno) : "file shrunk");
      return false;
    }
  }
  if (!RecordIsIntact(head, body, dims)) {
    *err = "journal " + path_ + ": record at byte " + std::to_string(offset) +
           " was damaged after it was opened";
    return false;
  }
  return true;
}

bool Journal::Read(const JournalKey& key, float* out, std::string* err) const {
  size_t i = Lookup(key);
  if (i == kNoSlot) {
    *err = "key not in journal " + path_;
    return false;
  }
  uint32_t dims = Dims(slots_[i]);
  char head[kRecordHead];
  char* body = reinterpret_cast<char*>(out);
  if (!ReadRecord(Offset(slots_[i]), dims, head, body, err)) return false;
  if (std::memcmp(head + kFrameHead, key.data(), key.size()) != 0) {
    // Only two keys sharing 128 bits could get here.
    *err = "key not in journal " + path_ + " (index prefix collision)";
    return false;
  }
  SwapFloatsIfBigEndian(body, dims);
  return true;
}

bool Journal::Fail(const std::string& message, std::string* err) {
  if (failed_.empty()) failed_ = message;
  *err = failed_;
  return false;
}

bool Journal::Append(const JournalKey& key, uint32_t tokens,
                     const float* vector, uint32_t dims, std::string* err) {
  if (!failed_.empty()) return Fail(failed_, err);
  if (dims == 0 || dims > kJournalMaxDims) {
    *err = "cannot journal a vector of " + std::to_string(dims) +
           " dimensions (1 to " + std::to_string(kJournalMaxDims) + ")";
    return false;
  }
  uint64_t offset = bytes();
  uint32_t len = kFixedPayload + 4 * dims;
  // Appended rather than resized and filled: no zeroing of 6 KB a record.
  char head[kRecordHead];
  PutU32(head, len);
  PutU32(head + 4, 0);  // The checksum, set below.
  std::memcpy(head + kFrameHead, key.data(), key.size());
  PutU32(head + kFrameHead + 32, tokens);
  PutU32(head + kFrameHead + 36, dims);
  size_t start = pending_.size();
  pending_.append(head, kRecordHead);
  pending_.append(reinterpret_cast<const char*>(vector), size_t{dims} * 4);
  char* p = pending_.data() + start;
  SwapFloatsIfBigEndian(p + kRecordHead, dims);
  PutU32(p + 4, Crc32c(p + kFrameHead, len));
  if (!Insert(key.data(), tokens, dims, offset, true)) {
    pending_.resize(start);
    *err = "journal " + path_ + " is full (128 TiB)";
    return false;
  }
  if (pending_.size() >= kMaxPending) return WritePending(err);
  return true;
}

bool Journal::WritePending(std::string* err) {
  if (pending_.empty()) return true;
  if (!PwriteAll(fd_, pending_.data(), pending_.size(), file_end_)) {
    std::string message =
        "cannot write journal " + path_ + ": " + ErrnoText(errno);
    // Drop a partial write, so the file ends on a whole record even if we
    // are not reopened. Harmless if it fails: open cuts torn tails.
    if (ftruncate(fd_, static_cast<off_t>(file_end_)) != 0) {
    }
    return Fail(message, err);
  }
  file_end_ += pending_.size();
  pending_.clear();
  if (pending_.capacity() > kMaxPending) pending_.shrink_to_fit();
  unsynced_ = true;
  return true;
}

bool Journal::Sync(std::string* err) {
  if (!failed_.empty()) return Fail(failed_, err);
  if (!WritePending(err)) return false;
  if (!unsynced_) return true;
  // fdatasync also flushes the file size, which appends change.
  if (fdatasync(fd_) != 0)
    return Fail("cannot sync journal " + path_ + ": " + ErrnoText(errno), err);
  unsynced_ = false;
  return true;
}

void Journal::MarkUsed(const JournalKey& key) {
  size_t i = Lookup(key);
  if (i == kNoSlot || Used(slots_[i])) return;
  slots_[i].packed |= 0x8000;
  ++used_;
}

bool Journal::Compact(std::string* err) {
  if (!Sync(err)) return false;
  // Used records in file order: sequential reads, and the order they were
  // first saved in. Sorted as 12-byte entries rather than slot numbers, so
  // the sort and the copy touch the table once per record, not per compare.
  struct Kept {
    uint32_t offset_lo;
    uint32_t offset_hi_dims;  // Offset bits 32..46 above, dims below.
    uint32_t slot;
    uint64_t offset() const {
      return uint64_t{offset_hi_dims >> 16} << 32 | offset_lo;
    }
    uint32_t dims() const { return offset_hi_dims & 0xFFFF; }
  };
  std::vector<Kept> order;
  order.reserve(used_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (Dims(s) == 0 || Offset(s) == 0 || !Used(s)) continue;
    order.push_back({s.offset_lo, (s.packed & 0x7FFF) << 16 | Dims(s),
                     static_cast<uint32_t>(i)});
  }
  std::sort(order.begin(), order.end(), [](const Kept& a, const Kept& b) {
    return a.offset() < b.offset();
  });

  std::string temp = real_path_ + ".compact";
  int fd = open(temp.c_str(),
                O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    *err = "cannot create " + temp + ": " + ErrnoText(errno);
    return false;
  }
  auto abandon = [&](const std::string& message) {
    *err = message;
    close(fd);
    unlink(temp.c_str());
    return false;
  };
  // A stale temporary file keeps its old mode through O_TRUNC; the lock
  // carries over to the new journal at the rename.
  if (fchmod(fd, 0600) != 0 || flock(fd, LOCK_EX | LOCK_NB) != 0)
    return abandon("cannot prepare " + temp + ": " + ErrnoText(errno));

  std::string out = header_;
  uint64_t written = 0;
  auto flush = [&] {
    if (!PwriteAll(fd, out.data(), out.size(), written)) return false;
    written += out.size();
    out.clear();
    return true;
  };
  // Records come in file order, so the old file is read in large chunks
  // (one pread per chunk, not per record), skipping wide unused gaps.
  std::string window;
  uint64_t window_start = 0;
  for (const Kept& kept : order) {
    uint64_t offset = kept.offset();
    uint32_t dims = kept.dims();
    size_t size = kRecordHead + size_t{dims} * 4;
    if (offset < window_start || offset + size > window_start + window.size()) {
      window.resize(static_cast<size_t>(
          std::min<uint64_t>(std::max(size, kChunk), file_end_ - offset)));
      window_start = offset;
      errno = 0;
      if (window.size() < size ||
          !PreadAll(fd_, window.data(), window.size(), offset))
        return abandon("cannot read journal " + path_ + " at byte " +
                       std::to_string(offset) + ": " +
                       (errno ? ErrnoText(errno) : "file shrunk"));
    }
    const char* p = window.data() + (offset - window_start);
    if (!RecordIsIntact(p, p + kRecordHead, dims))
      return abandon("journal " + path_ + ": record at byte " +
                     std::to_string(offset) +
                     " was damaged after it was opened");
    out.append(p, size);
    if (out.size() >= kChunk && !flush())
      return abandon("cannot write " + temp + ": " + ErrnoText(errno));
  }
  if (!flush() || fsync(fd) != 0)
    return abandon("cannot write " + temp + ": " + ErrnoText(errno));
  if (rename(temp.c_str(), real_path_.c_str()) != 0)
    return abandon("cannot rename " + temp + " to " + real_path_ + ": " +
                   ErrnoText(errno));

  // The new file is the journal now, whatever follows. The index is updated
  // in place, without a second table: kept slots get their new offsets,
  // the others become tombstones (offset 0), which keep probe chains intact
  // and are dropped at the next rehash.
  uint64_t offset = header_.size();
  for (const Kept& kept : order) {
    Slot& s = slots_[kept.slot];
    s.offset_lo = static_cast<uint32_t>(offset);
    s.packed = (s.packed & ~0x7FFFu) | static_cast<uint32_t>(offset >> 32);
    offset += kRecordHead + size_t{kept.dims()} * 4;
  }
  for (Slot& s : slots_) {
    if (Dims(s) != 0 && !Used(s)) {
      s.offset_lo = 0;
      s.packed &= ~0x7FFFu;
    }
  }
  count_ = used_ = order.size();
  // Give back most of a table that is now far too large.
  if (SlotsFor(count_) * 4 <= slots_.size()) Rehash(SlotsFor(count_));
  close(fd_);
  fd_ = fd;
  file_end_ = written;
  return SyncDir(real_path_, err);
}
