#include "input/record_parser.h"

#include <cstddef>
#include <utility>

#include <fmt/core.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "input/json_text.h"
#include "input/utf8.h"

namespace {

enum class JsonType { kNull, kBoolean, kNumber, kString, kObject, kArray };

const char* TypeName(JsonType type) {
  switch (type) {
    case JsonType::kNull:
      return "null";
    case JsonType::kBoolean:
      return "boolean";
    case JsonType::kNumber:
      return "number";
    case JsonType::kString:
      return "string";
    case JsonType::kObject:
      return "object";
    case JsonType::kArray:
      return "array";
  }
  return "";
}

// "an array", "a number", but plain "null".
std::string WithArticle(JsonType type) {
  std::string name = TypeName(type);
  if (type == JsonType::kNull) return name;
  return (type == JsonType::kArray || type == JsonType::kObject ? "an "
                                                                : "a ") +
         name;
}

// RapidJSON refuses a lone high surrogate escape (\ud800) but decodes a lone
// low one (\udc00) into the bytes of an encoded surrogate. Returns the offset
// of the first lone low surrogate escape in `line`, or npos, so both are the
// same invalid-JSON error. Only lines with a \u escape pay for the scan.
size_t FindLoneLowSurrogate(std::string_view line) {
  auto hex_at = [line](size_t i, unsigned* value) {
    if (i + 6 > line.size() || line[i] != '\\' || line[i + 1] != 'u')
      return false;
    unsigned v = 0;
    for (size_t k = i + 2; k < i + 6; ++k) {
      char c = line[k];
      unsigned d = c >= '0' && c <= '9'   ? c - '0'
                   : c >= 'a' && c <= 'f' ? c - 'a' + 10
                   : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                          : 16;
      if (d == 16) return false;
      v = v << 4 | d;
    }
    *value = v;
    return true;
  };
  for (size_t i = line.find("\\u"); i != std::string_view::npos;
       i = line.find("\\u", i + 1)) {
    // An escape only when an even number of backslashes precedes it.
    size_t slashes = 0;
    while (slashes < i && line[i - 1 - slashes] == '\\') ++slashes;
    if (slashes % 2 != 0) continue;
    unsigned v, high;
    if (!hex_at(i, &v) || v < 0xDC00 || v > 0xDFFF) continue;
    if (i >= 6 && hex_at(i - 6, &high) && high >= 0xD800 && high <= 0xDBFF)
      continue;  // the second half of a pair
    return i;
  }
  return std::string_view::npos;
}

constexpr unsigned kParseFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;

// The parser's slots in its target list.
constexpr size_t kIdTarget = 0;
constexpr size_t kTextTarget = 1;
constexpr size_t kFirstCarryTarget = 2;

}  // namespace

bool SplitFieldPath(std::string_view path, std::vector<std::string>* keys,
                    std::string* err) {
  if (path.empty()) {
    *err = "field path is empty";
    return false;
  }
  keys->clear();
  for (size_t start = 0;;) {
    size_t dot = path.find('.', start);
    std::string_view key = path.substr(start, dot - start);
    if (key.empty()) {
      *err = fmt::format("field path \"{}\" has an empty component", path);
      return false;
    }
    keys->emplace_back(key);
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// The SAX handler. A field path is followed as the events arrive: a target
// is "tracked" to depth d while the containers open at depths 1..d are the
// objects its first d-1 keys lead to, so a key at depth d can only be the
// target's next key if tracked == d.
struct RecordParser::Impl
    : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Impl> {
  // A configured field and its state in the current parse.
  struct Target {
    std::string path;               // As given, for messages and carry_json.
    std::vector<std::string> keys;  // The path split at '.'.
    size_t tracked = 0;
    bool done = false;  // Found, or known to be absent.
    bool found = false;
    JsonType type = JsonType::kNull;
    // The value's compact JSON is capture[begin, end) (carried fields).
    size_t begin = 0;
    size_t end = 0;
  };

  // Targets: the id, the text, then the carried fields.
  std::vector<Target> targets;
  bool require_id = true;
  rapidjson::Reader reader;  // Kept for its string buffer.

  // State of the current parse.
  ParsedRecord* out = nullptr;
  size_t depth = 0;  // Containers open.
  JsonType root = JsonType::kNull;
  size_t undone = 0;            // Targets not done.
  std::vector<size_t> pending;  // Targets whose key was just seen.
  std::string capture;          // Compact JSON of carried values.
  bool id_valid_utf8 = true;
  size_t capture_open = 0;      // Containers open inside a capture.
  // Carried targets whose container value is being captured, with the depth
  // that value started at.
  std::vector<std::pair<size_t, size_t>> open_captures;

  bool Init(const RecordParserConfig& config, std::string* err) {
    std::vector<std::string> paths = {config.id_field, config.text_field};
    for (const std::string& carried : config.carry_fields) {
      for (size_t i = kFirstCarryTarget; i < paths.size(); ++i) {
        if (paths[i] == carried) {
          *err = fmt::format("field \"{}\" is carried twice", carried);
          return false;
        }
      }
      paths.push_back(carried);
    }
    std::vector<Target> configured(paths.size());
    for (size_t i = 0; i < paths.size(); ++i) {
      configured[i].path = paths[i];
      if (!SplitFieldPath(paths[i], &configured[i].keys, err)) return false;
    }
    targets = std::move(configured);
    require_id = config.require_id;
    return true;
  }

  void Start(ParsedRecord* record) {
    out = record;
    depth = 0;
    root = JsonType::kNull;
    undone = targets.size();
    pending.clear();
    capture.clear();
    id_valid_utf8 = true;
    capture_open = 0;
    open_captures.clear();
    for (Target& target : targets) {
      target.tracked = 1;
      target.done = target.found = false;
    }
  }

  void MarkDone(Target* target) {
    target->done = true;
    --undone;
  }

  // Inside a captured container, members and elements after the first need a
  // comma; what was written last tells which.
  void CaptureSeparator() {
    char last = capture.back();
    if (last != '{' && last != '[' && last != ':') capture.push_back(',');
  }

  // The start of any value: a scalar (`token` is its text) or an object or
  // array about to open.
  void Value(JsonType type, std::string_view token) {
    if (depth == 0) {
      root = type;
      // Fields are looked up in a top-level object only.
      if (type != JsonType::kObject) undone = 0;
    }
    bool inside_capture = capture_open > 0;
    if (inside_capture) CaptureSeparator();
    size_t begin = capture.size();
    size_t carried = 0;  // The carried target this value is, if any.
    for (size_t i : pending) {
      Target& target = targets[i];
      if (target.tracked == target.keys.size()) {
        MarkDone(&target);
        target.found = true;
        target.type = type;
        if (i == kIdTarget && type == JsonType::kString)
          id_valid_utf8 = AppendJsonString(&out->id_json, token);
        else if (i == kIdTarget && type == JsonType::kNumber)
          out->id_json.assign(token);
        else if (i == kTextTarget && type == JsonType::kString)
          out->text.assign(token);
        else if (i >= kFirstCarryTarget)
          carried = i;
      } else if (type == JsonType::kObject) {
        ++target.tracked;
      } else {
        MarkDone(&target);  // The path runs into a non-object: absent.
      }
    }
    pending.clear();
    if (!inside_capture && carried == 0) return;
    switch (type) {
      case JsonType::kString:
        AppendJsonString(&capture, token);
        break;
      case JsonType::kObject:
        capture.push_back('{');
        break;
      case JsonType::kArray:
        capture.push_back('[');
        break;
      default:
        capture.append(token);
    }
    if (carried != 0) {
      targets[carried].begin = begin;
      if (type == JsonType::kObject || type == JsonType::kArray)
        open_captures.emplace_back(carried, depth);
      else
        targets[carried].end = capture.size();
    }
    if (type == JsonType::kObject || type == JsonType::kArray) ++capture_open;
  }

  void Close(char bracket) {
    if (capture_open > 0) {
      capture.push_back(bracket);
      --capture_open;
    }
    // First occurrence wins: a target that entered the object closing now
    // never matches again.
    if (undone > 0) {
      for (Target& target : targets) {
        if (!target.done && target.tracked == depth) MarkDone(&target);
      }
    }
    --depth;
    while (!open_captures.empty() && open_captures.back().second == depth) {
      targets[open_captures.back().first].end = capture.size();
      open_captures.pop_back();
    }
  }

  // SAX events.
  bool Null() {
    Value(JsonType::kNull, "null");
    return true;
  }
  bool Bool(bool b) {
    Value(JsonType::kBoolean, b ? "true" : "false");
    return true;
  }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    Value(JsonType::kNumber, std::string_view(str, length));
    return true;
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    Value(JsonType::kString, std::string_view(str, length));
    return true;
  }
  bool StartObject() {
    Value(JsonType::kObject, {});
    ++depth;
    return true;
  }
  bool StartArray() {
    Value(JsonType::kArray, {});
    ++depth;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    Close('}');
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    Close(']');
    return true;
  }
  bool Key(const char* str, rapidjson::SizeType length, bool) {
    std::string_view key(str, length);
    if (capture_open > 0) {
      CaptureSeparator();
      AppendJsonString(&capture, key);
      capture.push_back(':');
    }
    if (undone == 0) return true;
    for (size_t i = 0; i < targets.size(); ++i) {
      const Target& target = targets[i];
      if (!target.done && target.tracked == depth &&
          target.keys[depth - 1] == key)
        pending.push_back(i);
    }
    return true;
  }

  ParseStatus Finish(std::string* field, std::string* reason) {
    if (root != JsonType::kObject) {
      *reason = "expected a JSON object, got " + WithArticle(root);
      return ParseStatus::kError;
    }
    const Target& id = targets[kIdTarget];
    if (id.found ? id.type != JsonType::kString && id.type != JsonType::kNumber
                 : require_id) {
      *field = id.path;
      *reason = id.found ? fmt::format(
                               "field \"{}\" must be a string or "
                               "number, got {}",
                               id.path, TypeName(id.type))
                         : fmt::format("field \"{}\" is missing", id.path);
      return ParseStatus::kError;
    }
    if (!id_valid_utf8) {
      // An id changed by replacement could collide with another one.
      *field = id.path;
      *reason = fmt::format("field \"{}\" is not valid UTF-8", id.path);
      return ParseStatus::kError;
    }
    const Target& text = targets[kTextTarget];
    if (!text.found || text.type != JsonType::kString) {
      *field = text.path;
      *reason = text.found
                    ? fmt::format("field \"{}\" must be a string, got {}",
                                  text.path, TypeName(text.type))
                    : fmt::format("field \"{}\" is missing", text.path);
      return ParseStatus::kError;
    }
    for (size_t i = kFirstCarryTarget; i < targets.size(); ++i) {
      const Target& carried = targets[i];
      if (!carried.found) continue;
      if (!out->carry_json.empty()) out->carry_json.push_back(',');
      AppendJsonString(&out->carry_json, carried.path);
      out->carry_json.push_back(':');
      out->carry_json.append(capture, carried.begin,
                             carried.end - carried.begin);
    }
    return ParseStatus::kRecord;
  }
};

RecordParser::RecordParser() : impl_(std::make_unique<Impl>()) {
  std::string err;
  impl_->Init(RecordParserConfig(), &err);
}

RecordParser::~RecordParser() = default;
RecordParser::RecordParser(RecordParser&&) noexcept = default;
RecordParser& RecordParser::operator=(RecordParser&&) noexcept = default;

bool RecordParser::Init(const RecordParserConfig& config, std::string* err) {
  return impl_->Init(config, err);
}

ParseStatus RecordParser::Parse(std::string_view line, ParsedRecord* out,
                                std::string* field, std::string* reason) {
  out->id_json.clear();
  out->text.clear();
  out->carry_json.clear();
  field->clear();
  reason->clear();
  if (line.find_first_not_of(" \t\n\r") == std::string_view::npos)
    return ParseStatus::kBlank;

  impl_->Start(out);
  rapidjson::MemoryStream stream(line.data(), line.size());
  rapidjson::ParseResult result =
      impl_->reader.Parse<kParseFlags>(stream, *impl_);
  size_t offset = result.Offset();
  rapidjson::ParseErrorCode code = result.Code();
  // The stream ends at a NUL byte as at the end of the line, so a NUL after
  // the object must be caught here.
  if (!result.IsError() && stream.Tell() != line.size()) {
    offset = stream.Tell();
    code = rapidjson::kParseErrorDocumentRootNotSingular;
  }
  if (code == rapidjson::kParseErrorNone) {
    size_t lone = FindLoneLowSurrogate(line);
    if (lone != std::string_view::npos) {
      offset = lone;
      code = rapidjson::kParseErrorStringUnicodeSurrogateInvalid;
    }
  }
  if (code != rapidjson::kParseErrorNone) {
    out->id_json.clear();
    out->text.clear();
    std::string_view message = rapidjson::GetParseError_En(code);
    if (message.ends_with('.')) message.remove_suffix(1);
    unsigned char at = offset < line.size() ? line[offset] : 0;
    // RapidJSON calls a raw control character in a string an invalid
    // escape, though it is one that was never escaped.
    if (code == rapidjson::kParseErrorStringEscapeInvalid && at < 0x20) {
      *reason = fmt::format(
          "invalid JSON at byte {}: unescaped control character U+{:04X} in "
          "a string (JSON writes it as \\u{:04x})",
          offset, at, at);
      return ParseStatus::kError;
    }
    *reason = fmt::format("invalid JSON at byte {}: {}", offset, message);
    // The line reader skips a mark that starts the input; one on a later
    // line is the start of another file, usually joined on with cat.
    if (offset == 0 && line.starts_with("\xEF\xBB\xBF"))
      *reason +=
          " (a UTF-8 byte order mark starts the line; one is skipped only at "
          "the start of a file: were files joined with cat?)";
    return ParseStatus::kError;
  }
  return impl_->Finish(field, reason);
}
