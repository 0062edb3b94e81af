// The rows a table already holds, as (id, content key) pairs read from
// --known FILE (what `\copy (SELECT id, key FROM t) TO FILE` writes): a run
// compares each record with them, writes only new and changed records, and
// lists the known ids its input no longer carries (--deleted). The table is
// the manifest; nothing here is saved, so a failed load is repaired by the
// next run's export. Held compactly for millions of ids: their bytes in one
// buffer, a 48-byte entry each and an open-addressing index of 4-byte slots.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

class KnownIds {
 public:
  using Key = std::array<uint8_t, 32>;
  static constexpr size_t kNotKnown = SIZE_MAX;

  /// Reads `content` (named `name` in messages): lines of `id<TAB>key` in
  /// PostgreSQL's text COPY format, escapes decoded; the key 64 hex digits,
  /// or \N (a row stored before it had a key: always rewritten). False, with
  /// *err naming the line, for a line without exactly two columns, an id
  /// that is \N, a key that is not hex of 32 bytes, or an id given twice.
  bool Parse(std::string_view content, const std::string& name,
             std::string* err);

  /// Parse() on the file at `path`. False with *err if it cannot be read.
  bool Load(const std::string& path, std::string* err);

  /// The entry of `id` (as the output writes it: a string id's text, a
  /// numeric id as written), or kNotKnown.
  size_t Find(std::string_view id) const;

  /// Notes that an input line carried entry's id: it is never listed among
  /// the deleted, whatever became of the line (rejected ones included).
  void MarkSeen(size_t entry) { entries_[entry].flags |= kSeen; }

  /// Whether the record of entry's id with content `key` can be left out
  /// of the output: true when the table holds that key and no earlier line
  /// of the same id was written. Otherwise the record is written, and so is
  /// every later line of this id: a loader that keeps the last row of an id
  /// then keeps the input's last line, as a full load would.
  bool Unchanged(size_t entry, const Key& key);

  /// Forgets which ids Unchanged() saw written, for a second pass over the
  /// same input (--batch-api) that must decide each line as the first did.
  void ForgetWritten();

  /// The id of entry (decoded, as Find takes it).
  std::string_view Id(size_t entry) const {
    return std::string_view(ids_).substr(entries_[entry].offset,
                                         entries_[entry].length);
  }
  bool Seen(size_t entry) const { return entries_[entry].flags & kSeen; }
  size_t size() const { return entries_.size(); }

 private:
  static constexpr uint8_t kSeen = 1, kWritten = 2, kHasKey = 4;
  static constexpr uint32_t kEmptySlot = UINT32_MAX;

  struct Entry {
    uint64_t offset;  ///< Into ids_.
    uint32_t length;
    uint8_t flags;
    Key key;
  };

  /// The slot where `id` is, or the empty slot where it would go.
  size_t SlotOf(std::string_view id) const;
  void Reserve(size_t file_bytes);
  void Grow();
  /// Adds the whole lines at the front of *data, and removes them; at the
  /// end of the file (`at_end`) a last line without a newline too. Sets
  /// *ended at COPY's end-of-data marker. False on a malformed line.
  bool AddLines(std::string_view* data, bool at_end, const std::string& name,
                size_t* line_number, bool* ended, std::string* err);
  /// Adds one line; `name` and `line_number` say where it is, for *err.
  bool AddLine(std::string_view line, const std::string& name,
               size_t line_number, std::string* err);

  std::string ids_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> slots_;  ///< Entry index or kEmptySlot; size 2^k.
  std::string scratch_;          ///< The id being added, decoded.
};

/// Decodes one field of PostgreSQL's text COPY format into *out: \b \f \n
/// \r \t \v, \ and one to three octal digits, \x and one or two hex digits,
/// and a backslash before any other character stands for that character.
/// False if `field` ends in a lone backslash.
bool DecodeCopyTextField(std::string_view field, std::string* out);
