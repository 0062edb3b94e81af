// Checkpoint journal (--checkpoint FILE): saves every vector the API
// returned, durably, before its output line may be written, so that a killed
// run resumes where it stopped, a rerun over a corpus that changed a little
// pays only for what changed, and identical texts in one run are sent once.
// Modeled on ninja's build and deps logs: a versioned header, append-only
// records, a torn tail cut off at open, compaction through a temporary file.
//
// On-disk format v1 (every integer is u32 little-endian):
//
//   "embedpipe journal v1\n"                magic line, 21 bytes
//   u32 len, u32 crc32c(payload), payload   header frame; payload (<= 64 KiB):
//       u32 count, then count times: u32 n, name[n], u32 v, value[v]
//       (the settings, sorted by name then value: EncodeJournalSettings)
//   u32 len, u32 crc32c(payload), payload   record frame, repeated; payload:
//       key[32], u32 tokens, u32 dims, dims x float32 (IEEE 754, LE)
//       with len == 40 + 4 * dims and 1 <= dims <= kJournalMaxDims
//
// A key is SHA-256 over "embedpipe journal key v1\n", the encoded settings
// and the normalized text (KeyMaker). The file holds no text and no secret:
// only the settings it is given (callers must never pass credentials), keys
// and vectors. Vectors still say something about the texts, hence mode 0600.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "journal/digest.h"

/// What changes a vector: provider, model, dimensions, normalization,
/// over-long policy... Written in the journal header; a journal is only
/// reused by a run whose settings are the same. Order does not matter (the
/// settings are sorted); a name given twice is refused by Journal::Open.
struct JournalConfig {
  std::vector<std::pair<std::string, std::string>> settings;
};

using JournalKey = std::array<uint8_t, 32>;  ///< SHA-256, see KeyMaker.

/// Largest vector a record holds (the index packs dims in 16 bits).
constexpr uint32_t kJournalMaxDims = 65535;

/// The canonical byte encoding of `config` (header payload format above),
/// shared by the header and by KeyMaker.
std::string EncodeJournalSettings(const JournalConfig& config);

/// Makes the key of a normalized text under a configuration. The settings
/// are hashed once into a prefix state that each Key() call copies, so a key
/// costs one SHA-256 pass over the text. Equal (text, settings) give equal
/// keys across runs and machines. Not for concurrent use: Key() reuses one
/// working state, so a key allocates nothing.
class KeyMaker {
 public:
  explicit KeyMaker(const JournalConfig& config);
  JournalKey Key(std::string_view text);

 private:
  Sha256 prefix_;
  Sha256 work_;
};

/// An open journal file, indexed in memory. Single-threaded, except that
/// const methods may run concurrently with each other.
///
/// Durability contract (the pipeline's side): for each API response, Append()
/// its vectors, then Sync() once, and only then release their output lines.
/// A Sync() costs one write() and one fdatasync(), which is small beside a
/// request taking 100 ms or more, so the granularity is "one sync per batch
/// of results that arrived together" (one event-loop turn), never per record.
///
/// After an I/O error in Append, Sync or Compact, those three keep failing
/// with the first error (after a failed fsync the kernel may have dropped
/// the dirty pages, so a retry could falsely succeed); records synced before
/// stay readable, here and on the next open.
class Journal {
 public:
  /// Opens `path`, or creates it with mode 0600 (and fsyncs its directory).
  /// Takes an exclusive flock: a journal in use by another run is refused.
  /// Returns null and sets *err when:
  ///  - the header's settings differ from `config`: *err names the first
  ///    differing setting (by name) and both values, e.g. "journal x was
  ///    written with model=a, this run uses model=b";
  ///  - the file is not a journal (it is never overwritten), has another
  ///    format version, or its header is corrupt;
  ///  - `config` names a setting twice, or on any I/O error.
  /// On success *notice is empty, unless something was cut off:
  ///  - a torn or corrupt tail (short frame, bad length, bad checksum) is
  ///    cut off with ftruncate, keeping every record before it; *notice says
  ///    why, where, how many bytes were dropped and how many records and
  ///    bytes were kept;
  ///  - a file that is a strict prefix of the header this run would write
  ///    (a creation cut short: it holds no record) is started afresh, with
  ///    a notice unless it was empty. So an empty file (as from mktemp)
  ///    becomes a journal. Any other bad header is refused, never rewritten.
  /// Records of one key: the later one wins.
  static std::unique_ptr<Journal> Open(const std::string& path,
                                       const JournalConfig& config,
                                       std::string* notice, std::string* err);

  /// Opens an existing journal to look vectors up without changing it
  /// (--dry-run): a shared flock (a run writing it holds it exclusively, so
  /// it is refused as in use), the same checks as Open, but a torn tail is
  /// only left out of the index (*notice says so) and a header cut short is
  /// an empty journal. Append, Sync and Compact fail.
  static std::unique_ptr<Journal> OpenForReading(const std::string& path,
                                                 const JournalConfig& config,
                                                 std::string* notice,
                                                 std::string* err);

  /// Best-effort Sync(); call Sync() first to see errors.
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// Whether `key` has a saved vector (synced or not); if so fills *dims
  /// and *tokens. No I/O.
  bool Find(const JournalKey& key, uint32_t* dims, uint32_t* tokens) const;

  /// Copies the saved vector of `key` into out[0..dims), dims as Find()
  /// gives, bit for bit as appended. Reads with one preadv (or from the
  /// unwritten buffer) and checks the record's checksum and full key. False
  /// and *err if `key` is absent, on an I/O error, or if the record no
  /// longer matches its checksum.
  bool Read(const JournalKey& key, float* out, std::string* err) const;

  /// Appends a record of `key`, replacing any earlier one in the index, and
  /// marks it used. Buffered in memory: not durable until Sync() returns
  /// true (a buffer over 64 MiB is written out early, still without fsync).
  /// False and *err if dims is 0 or over kJournalMaxDims, or on an I/O error.
  bool Append(const JournalKey& key, uint32_t tokens, const float* vector,
              uint32_t dims, std::string* err);

  /// Writes the buffered records with one pwrite and fdatasyncs the file.
  /// When it returns true every appended record survives a crash or power
  /// loss. A no-op when nothing was appended since the last Sync().
  bool Sync(std::string* err);

  /// Marks `key`, if present, as used by this run, so Compact() keeps it.
  void MarkUsed(const JournalKey& key);

  /// Rewrites the journal to the records marked used (MarkUsed or Append),
  /// in their file order: Sync(), write "<path>.compact" (mode 0600), fsync
  /// it, rename it over the journal, fsync the directory. On failure before
  /// the rename the journal is unchanged and the temporary file removed.
  /// The index is updated in place (extra memory: 12 bytes a kept record
  /// while compacting).
  bool Compact(std::string* err);

  /// Grows the index for `records` keys at once (or rehashes away
  /// tombstones), so that appending up to that many rehashes nowhere on the
  /// way: each rehash holds the old table beside the new one, and the
  /// freed tables need not go back to the system.
  void Reserve(size_t records);

  size_t size() const { return count_; }  ///< Keys indexed.
  size_t used() const { return used_; }   ///< Keys marked used.
  /// Bytes of the journal, written or buffered.
  uint64_t bytes() const { return file_end_ + pending_.size(); }
  const std::string& path() const { return path_; }

  /// Bytes of index memory (the slot array), for tests and benchmarks.
  size_t index_bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  /// One index entry, 28 bytes, in an open-addressing table (linear
  /// probing, load <= 0.8, so 35 to 70 bytes a record). It holds the first
  /// 16 bytes of the key: keys are SHA-256, so two distinct keys share a
  /// 128-bit prefix with probability about n^2 / 2^129 (1e-25 for 10^7
  /// records); Read() still compares the full key stored in the file.
  /// Offset 0 (inside the header, so never a record's) marks a tombstone:
  /// a key dropped by Compact(), kept until the next rehash.
  struct Slot {
    uint8_t key[16];
    uint32_t tokens;
    uint32_t offset_lo;  ///< Bits 0..31 of the record's file offset.
    /// Bits 0..14: offset bits 32..46 (journals up to 128 TiB); bit 15:
    /// used; bits 16..31: dims, 0 for an empty slot.
    uint32_t packed;
  };

  Journal(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  static std::unique_ptr<Journal> OpenWith(const std::string& path,
                                           const JournalConfig& config,
                                           bool read_only, std::string* notice,
                                           std::string* err);
  bool Load(const std::string& settings_payload,
            const std::vector<std::pair<std::string, std::string>>& run,
            uint64_t size, std::string* notice, std::string* err);
  bool Initialize(uint64_t old_size, const std::string& header,
                  std::string* notice, std::string* err);
  bool WritePending(std::string* err);
  bool Fail(const std::string& message, std::string* err);
  /// Reads the 48-byte frame head and the `dims` floats of the record at
  /// `offset` into head and body, and checks length, dims and checksum.
  bool ReadRecord(uint64_t offset, uint32_t dims, char* head, char* body,
                  std::string* err) const;

  static uint64_t Offset(const Slot& s);
  static uint32_t Dims(const Slot& s) { return s.packed >> 16; }
  static bool Used(const Slot& s) { return s.packed & 0x8000; }
  static constexpr size_t kNoSlot = ~size_t{0};
  /// The index in slots_ of `key`, or kNoSlot.
  size_t Lookup(const JournalKey& key) const;
  /// Indexes a record (later wins); returns false if offset is too large.
  bool Insert(const uint8_t* key, uint32_t tokens, uint32_t dims,
              uint64_t offset, bool used);
  /// Table size for `records` at load <= 0.8 (a power of two).
  static size_t SlotsFor(size_t records);
  void Rehash(size_t slots);

  std::string path_;       ///< As given, for messages.
  std::string real_path_;  ///< Symlinks resolved: compaction renames here.
  int fd_;
  bool read_only_ = false;
  std::string header_;     ///< Magic line and header frame, as on disk.
  uint64_t file_end_ = 0;  ///< Bytes written to the file.
  std::string pending_;    ///< Appended records not yet written.
  bool unsynced_ = false;  ///< Bytes written since the last fdatasync.
  std::string failed_;     ///< The first I/O error of a write or sync.
  std::vector<Slot> slots_;  ///< Capacity a power of two.
  size_t count_ = 0;     ///< Live keys.
  size_t occupied_ = 0;  ///< Live keys and tombstones.
  size_t used_ = 0;
};
