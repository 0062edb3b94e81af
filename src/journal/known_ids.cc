#include "journal/known_ids.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>

#include <fmt/format.h>

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ParseKey(std::string_view hex, KnownIds::Key* key) {
  if (hex.size() != 64) return false;
  for (size_t i = 0; i < 32; ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*key)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

bool DecodeCopyTextField(std::string_view field, std::string* out) {
  out->clear();
  for (size_t i = 0; i < field.size(); ++i) {
    char c = field[i];
    if (c != '\\') {
      out->push_back(c);
      continue;
    }
    if (++i == field.size()) return false;
    c = field[i];
    switch (c) {
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'v': out->push_back('\v'); break;
      case 'x':
        if (i + 1 < field.size() && HexValue(field[i + 1]) >= 0) {
          int v = HexValue(field[++i]);
          if (i + 1 < field.size() && HexValue(field[i + 1]) >= 0)
            v = v << 4 | HexValue(field[++i]);
          out->push_back(static_cast<char>(v));
        } else {
          out->push_back('x');
        }
        break;
      default:
        if (c >= '0' && c <= '7') {
          int v = c - '0';
          for (int k = 0; k < 2 && i + 1 < field.size() && field[i + 1] >= '0' &&
                          field[i + 1] <= '7';
               ++k)
            v = v << 3 | (field[++i] - '0');
          out->push_back(static_cast<char>(v));
        } else {
          out->push_back(c);
        }
    }
  }
  return true;
}

// The shortest line with a key: an empty id, a tab and 64 digits.
constexpr size_t kShortestKeyedLine = 65;

void KnownIds::Reserve(size_t bytes) {
  // Sized from the file, so that ten million ids are not copied by vector
  // doublings (which would briefly need twice the memory). Lines with \N
  // keys are shorter; for them the index grows as it fills.
  size_t lines = bytes / (kShortestKeyedLine + 1) + 1;
  entries_.clear();
  entries_.reserve(lines);
  ids_.clear();
  slots_.assign(std::bit_ceil(lines + lines / 3 + 1), kEmptySlot);
}

void KnownIds::Grow() {
  slots_.assign(std::max<size_t>(16, 2 * slots_.size()), kEmptySlot);
  for (uint32_t e = 0; e < entries_.size(); ++e) slots_[SlotOf(Id(e))] = e;
}

bool KnownIds::AddLine(std::string_view line, const std::string& name,
                       size_t line_number, std::string* err) {
  auto fail = [&](std::string_view why) {
    *err = fmt::format("{}:{}: {}", name, line_number, why);
    return false;
  };
  size_t tab = line.find('\t');
  if (tab == std::string_view::npos || line.find('\t', tab + 1) != std::string_view::npos)
    return fail("expected two tab-separated columns, id and key");
  std::string_view id_field = line.substr(0, tab), key_field = line.substr(tab + 1);
  if (id_field == "\\N") return fail("the id is NULL (\\N)");
  if (!DecodeCopyTextField(id_field, &scratch_))
    return fail("the id ends in a lone backslash");
  Entry entry{ids_.size(), static_cast<uint32_t>(scratch_.size()), 0, {}};
  if (key_field != "\\N") {
    if (!ParseKey(key_field, &entry.key))
      return fail("the key is not 64 hexadecimal digits (embedpipe's key column)");
    entry.flags |= kHasKey;
  }
  if (entries_.size() >= kEmptySlot - 1) return fail("too many ids");
  if ((entries_.size() + 1) * 4 > slots_.size() * 3) Grow();
  size_t slot = SlotOf(scratch_);
  if (slots_[slot] != kEmptySlot)
    return fail(fmt::format("id {} is given twice", scratch_));
  slots_[slot] = static_cast<uint32_t>(entries_.size());
  ids_.append(scratch_);
  entries_.push_back(entry);
  return true;
}

bool KnownIds::AddLines(std::string_view* data, bool at_end,
                        const std::string& name, size_t* line_number,
                        bool* ended, std::string* err) {
  while (!*ended && !data->empty()) {
    size_t end = data->find('\n');
    if (end == std::string_view::npos && !at_end) break;  // a partial line
    std::string_view line = data->substr(0, end);
    data->remove_prefix(end == std::string_view::npos ? data->size() : end + 1);
    if (line == "\\.") {  // COPY's end-of-data marker
      *ended = true;
    } else if (!AddLine(line, name, ++*line_number, err)) {
      return false;
    }
  }
  return true;
}

bool KnownIds::Parse(std::string_view content, const std::string& name,
                     std::string* err) {
  Reserve(content.size());
  size_t line_number = 0;
  bool ended = false;
  return AddLines(&content, true, name, &line_number, &ended, err);
}

bool KnownIds::Load(const std::string& path, std::string* err) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    *err = fmt::format("cannot read {}: {}", path, strerror(errno));
    if (fd >= 0) close(fd);
    return false;
  }
  Reserve(static_cast<size_t>(st.st_size));
  // Read in chunks: the file is as large as the index again, and need not
  // be held whole.
  std::string buffer;
  size_t line_number = 0;
  bool ended = false, ok = true;
  char chunk[1 << 16];
  while (ok && !ended) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *err = fmt::format("cannot read {}: {}", path, strerror(errno));
      ok = false;
      break;
    }
    buffer.append(chunk, static_cast<size_t>(n));
    std::string_view data(buffer);
    ok = AddLines(&data, n == 0, path, &line_number, &ended, err);
    buffer.erase(0, buffer.size() - data.size());
    if (n == 0) ended = true;
  }
  close(fd);
  return ok;
}

size_t KnownIds::SlotOf(std::string_view id) const {
  size_t mask = slots_.size() - 1;
  for (size_t slot = std::hash<std::string_view>{}(id) & mask;; slot = (slot + 1) & mask) {
    uint32_t e = slots_[slot];
    if (e == kEmptySlot || Id(e) == id) return slot;
  }
}

size_t KnownIds::Find(std::string_view id) const {
  if (slots_.empty()) return kNotKnown;
  uint32_t e = slots_[SlotOf(id)];
  return e == kEmptySlot ? kNotKnown : e;
}

bool KnownIds::Unchanged(size_t entry, const Key& key) {
  Entry& e = entries_[entry];
  if (!(e.flags & kWritten) && (e.flags & kHasKey) && e.key == key) return true;
  e.flags |= kWritten;
  return false;
}

void KnownIds::ForgetWritten() {
  for (Entry& e : entries_) e.flags &= static_cast<uint8_t>(~kWritten);
}
