#include "input/json_text.h"

#include "input/utf8.h"

namespace {

// The offset just past the JSON value that starts at s[i], or npos when it
// does not end inside s. Only the extent is found: strings are skipped with
// their escapes, containers by depth, and a scalar runs to the next ',' at
// depth 0 or the end.
size_t SkipValue(std::string_view s, size_t i) {
  size_t depth = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\') ++i;
      }
      if (i >= s.size()) return std::string_view::npos;
      if (depth == 0) return i + 1;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return std::string_view::npos;
      if (--depth == 0) return i + 1;
    } else if (c == ',' && depth == 0) {
      return i;
    }
  }
  return depth == 0 ? i : std::string_view::npos;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the four hex digits at s[i]; false when they are not there.
bool Hex4(std::string_view s, size_t i, unsigned* value) {
  if (i + 4 > s.size()) return false;
  unsigned v = 0;
  for (size_t k = i; k < i + 4; ++k) {
    int d = HexDigit(s[k]);
    if (d < 0) return false;
    v = v << 4 | static_cast<unsigned>(d);
  }
  *value = v;
  return true;
}

void AppendUtf8(unsigned cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | cp >> 6));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | cp >> 12));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | cp >> 18));
    out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

bool SplitCarryJson(std::string_view carry_json,
                    std::vector<CarriedField>* fields) {
  fields->clear();
  size_t i = 0;
  while (i < carry_json.size()) {
    if (carry_json[i] != '"') return false;
    size_t key_end = SkipValue(carry_json, i);
    if (key_end == std::string_view::npos || key_end >= carry_json.size() ||
        carry_json[key_end] != ':')
      return false;
    size_t value_end = SkipValue(carry_json, key_end + 1);
    if (value_end == std::string_view::npos || value_end == key_end + 1)
      return false;
    fields->push_back({carry_json.substr(i, key_end - i),
                       carry_json.substr(key_end + 1, value_end - key_end - 1)});
    i = value_end;
    if (i < carry_json.size()) {
      // A separator must be followed by another pair.
      if (carry_json[i] != ',' || i + 1 == carry_json.size()) return false;
      ++i;
    }
  }
  return true;
}

bool AppendJsonStringText(std::string_view json, std::string* out) {
  if (json.size() < 2 || json.front() != '"' || json.back() != '"')
    return false;
  std::string_view s = json.substr(1, json.size() - 2);
  size_t run = 0;  // Start of the bytes not yet appended.
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') return false;  // ends the literal early
    if (s[i] != '\\') continue;
    out->append(s, run, i - run);
    if (++i == s.size()) return false;
    switch (s[i]) {
      case '"': out->push_back('"'); break;
      case '\\': out->push_back('\\'); break;
      case '/': out->push_back('/'); break;
      case 'b': out->push_back('\b'); break;
      case 'f': out->push_back('\f'); break;
      case 'n': out->push_back('\n'); break;
      case 'r': out->push_back('\r'); break;
      case 't': out->push_back('\t'); break;
      case 'u': {
        unsigned cp;
        if (!Hex4(s, i + 1, &cp)) return false;
        i += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned low;
          if (i + 2 >= s.size() || s[i + 1] != '\\' || s[i + 2] != 'u' ||
              !Hex4(s, i + 3, &low) || low < 0xDC00 || low > 0xDFFF)
            return false;
          i += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        AppendUtf8(cp, out);
        break;
      }
      default:
        return false;
    }
    run = i + 1;
  }
  out->append(s, run, std::string_view::npos);
  return true;
}

bool AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  bool valid = true;
  size_t run = 0;  // Start of the bytes not yet appended.
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t subpart;
      size_t n = Utf8SequenceLength(s, i, &subpart);
      if (n != 0) {
        i += n - 1;
        continue;
      }
      valid = false;
      out->append(s, run, i - run);
      out->append(kReplacementCharacter);
      i += subpart - 1;
      run = i + 1;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s, run, i - run);
    run = i + 1;
    out->push_back('\\');
    switch (c) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '\b':
        out->push_back('b');
        break;
      case '\f':
        out->push_back('f');
        break;
      case '\n':
        out->push_back('n');
        break;
      case '\r':
        out->push_back('r');
        break;
      case '\t':
        out->push_back('t');
        break;
      default:
        out->append("u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
    }
  }
  out->append(s, run, std::string_view::npos);
  out->push_back('"');
  return valid;
}

bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}
