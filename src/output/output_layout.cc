#include "output/output_layout.h"

#include <fmt/core.h>

#include "journal/digest.h"

namespace {

// Splits `s` at commas; an empty item stays (it is then an error).
std::vector<std::string_view> SplitList(std::string_view s) {
  std::vector<std::string_view> items;
  for (size_t start = 0;;) {
    size_t comma = s.find(',', start);
    items.push_back(s.substr(start, comma - start));
    if (comma == std::string_view::npos) return items;
    start = comma + 1;
  }
}

}  // namespace

bool ParseOutputLayout(const OutputConfig& config, OutputLayout* layout,
                       std::string* err) {
  OutputLayout parsed;
  if (config.format == "jsonl") {
    parsed.format = OutputFormat::kJsonl;
  } else if (config.format == "tsv") {
    parsed.format = OutputFormat::kTsv;
  } else if (config.format == "csv") {
    parsed.format = OutputFormat::kCsv;
  } else if (config.format == "binary") {
    parsed.format = OutputFormat::kBinary;
  } else {
    *err = fmt::format("unknown --format \"{}\" (want jsonl, tsv, csv or binary)",
                       config.format);
    return false;
  }
  std::string_view vector = config.vector;
  if (vector.empty())
    vector = parsed.format == OutputFormat::kJsonl ? "json" : "pgvector";
  if (vector == "json") {
    parsed.vector = VectorStyle::kJson;
  } else if (vector == "pgvector") {
    parsed.vector = VectorStyle::kPgvector;
  } else if (vector == "pgarray") {
    parsed.vector = VectorStyle::kPgarray;
  } else if (vector == "halfvec") {
    parsed.vector = VectorStyle::kHalfvec;
  } else {
    *err = fmt::format(
        "unknown --vector \"{}\" (want json, pgvector, pgarray or halfvec)",
        vector);
    return false;
  }
  if (parsed.format == OutputFormat::kBinary &&
      parsed.vector == VectorStyle::kJson) {
    // COPY BINARY carries a type's own binary form; a JSON array has none
    // that a vector or real[] column would take.
    *err = "--format binary needs --vector pgvector, pgarray or halfvec";
    return false;
  }
  parsed.carry_fields = config.carry_fields;
  parsed.model = config.model;
  parsed.id_field = config.id_field;

  // Which columns were named, by kind and by carried field, to refuse
  // repeats (a repeated column is almost certainly a typo in a column list
  // that must match the table's).
  bool seen[OutputColumn::kKey + 1] = {};
  std::vector<bool> carried_seen(config.carry_fields.size());
  auto add_carried = [&](size_t k, std::string_view name) {
    if (carried_seen[k]) {
      *err = fmt::format("--columns names carried field \"{}\" twice", name);
      return false;
    }
    carried_seen[k] = true;
    parsed.columns.push_back({OutputColumn::kCarried, k});
    return true;
  };
  for (std::string_view item : SplitList(config.columns)) {
    OutputColumn::Kind kind;
    if (item == "id") {
      kind = OutputColumn::kId;
    } else if (item == "embedding") {
      kind = OutputColumn::kEmbedding;
    } else if (item == "tokens") {
      kind = OutputColumn::kTokens;
    } else if (item == "model") {
      kind = OutputColumn::kModel;
    } else if (item == "key") {
      kind = OutputColumn::kKey;
    } else if (item == "carried") {
      if (seen[OutputColumn::kCarried]) {
        *err = "--columns names \"carried\" twice";
        return false;
      }
      seen[OutputColumn::kCarried] = true;
      parsed.all_carried_at = parsed.columns.size();
      for (size_t k = 0; k < config.carry_fields.size(); ++k) {
        if (!add_carried(k, config.carry_fields[k])) return false;
      }
      continue;
    } else {
      size_t k = 0;
      while (k < config.carry_fields.size() && config.carry_fields[k] != item)
        ++k;
      if (k == config.carry_fields.size()) {
        *err = fmt::format(
            "--columns: unknown column \"{}\" (want id, embedding, tokens, "
            "model, key, carried, or a field given with --carry)",
            item);
        return false;
      }
      if (!add_carried(k, item)) return false;
      continue;
    }
    if (seen[kind]) {
      *err = fmt::format("--columns names \"{}\" twice", item);
      return false;
    }
    seen[kind] = true;
    parsed.columns.push_back({kind, 0});
  }
  if (!seen[OutputColumn::kEmbedding]) {
    *err = "--columns must include embedding";
    return false;
  }
  *layout = std::move(parsed);
  return true;
}

void ColumnText::Reset(const Record& record) {
  record_ = &record;
  split_done_ = false;
}

void ColumnText::Split() {
  split_done_ = true;
  found_.assign(layout_->carry_fields.size(), -1);
  // RecordParser writes only well-formed pairs; should one not split, its
  // fields read as absent rather than as garbage in a column.
  if (!SplitCarryJson(record_->carry_json, &split_)) split_.clear();
  // The pairs come in --carry order, each field at most once, so one walk
  // matches them.
  size_t k = 0;
  for (size_t i = 0; i < split_.size(); ++i) {
    scratch_.clear();
    if (!AppendJsonStringText(split_[i].path_json, &scratch_)) continue;
    while (k < layout_->carry_fields.size() &&
           layout_->carry_fields[k] != scratch_)
      ++k;
    if (k == layout_->carry_fields.size()) break;
    found_[k++] = static_cast<int>(i);
  }
}

const CarriedField* ColumnText::Carried(size_t carry_index) {
  if (!split_done_) Split();
  int i = found_[carry_index];
  return i < 0 ? nullptr : &split_[i];
}

bool ColumnText::Get(const OutputColumn& column, std::string_view* text) {
  std::string_view json;
  switch (column.kind) {
    case OutputColumn::kId:
      // Only a parser told not to require ids leaves one empty.
      if (record_->id_json.empty()) return false;
      json = record_->id_json;
      break;
    case OutputColumn::kCarried: {
      const CarriedField* field = Carried(column.carry_index);
      if (!field || field->value_json == "null") return false;
      json = field->value_json;
      break;
    }
    case OutputColumn::kTokens:
      scratch_ = fmt::format("{}", record_->tokens);
      *text = scratch_;
      return true;
    case OutputColumn::kModel:
      *text = layout_->model;
      return true;
    case OutputColumn::kKey:
      scratch_.clear();
      AppendHexDigest(record_->key, &scratch_);
      *text = scratch_;
      return true;
    case OutputColumn::kEmbedding:
      return false;  // not a text column; the writers spell vectors
  }
  if (!json.empty() && json.front() == '"') {
    scratch_.clear();
    if (AppendJsonStringText(json, &scratch_)) {
      *text = scratch_;
      return true;
    }
  }
  *text = json;
  return true;
}

bool ColumnText::Storable(std::string* field, std::string* reason) {
  for (const OutputColumn& column : layout_->columns) {
    // Tokens are digits, the model name came from argv (no NUL there), and
    // a non-string carried value is compact JSON, which escapes U+0000.
    if (column.kind != OutputColumn::kId &&
        column.kind != OutputColumn::kCarried)
      continue;
    std::string_view text;
    if (!Get(column, &text) ||
        text.find('\0') == std::string_view::npos)
      continue;
    *field = column.kind == OutputColumn::kId
                 ? layout_->id_field
                 : layout_->carry_fields[column.carry_index];
    *reason = fmt::format(
        "field \"{}\" holds U+0000, which PostgreSQL text cannot store",
        *field);
    return false;
  }
  return true;
}
