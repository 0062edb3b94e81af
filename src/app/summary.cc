#include "app/summary.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include <fmt/core.h>

namespace {

double Seconds(const RunStats& s) { return s.elapsed_ms / 1000.0; }

double PerSecond(uint64_t n, const RunStats& s) {
  return s.elapsed_ms > 0 ? n / Seconds(s) : 0;
}

double CostUsd(const RunStats& s) {
  return s.billed_tokens() * s.usd_per_million / 1e6;
}

struct Part {
  uint64_t n;
  const char* what;
};

// " (412 from the checkpoint, 12 split)": the parts that are not zero, in
// parentheses; empty when all are.
std::string Detail(std::initializer_list<Part> parts) {
  std::string out;
  for (const Part& p : parts) {
    if (p.n == 0) continue;
    out += out.empty() ? " (" : ", ";
    out += GroupThousands(p.n) + " " + p.what;
  }
  return out.empty() ? out : out + ")";
}

std::string EmbeddedDetail(const RunStats& s) {
  return Detail({{s.from_journal, "from the checkpoint"},
                 {s.duplicates, s.duplicates == 1 ? "duplicate" : "duplicates"},
                 {s.truncated, "truncated"},
                 {s.split, "split"}});
}

std::string RetryDetail(const RetryCounts& r) {
  return Detail({{r.rate_limited, "rate-limited"},
                 {r.server, "server error"},
                 {r.network, "network"},
                 {r.bad_response, "bad response"}});
}

std::string CostText(const RunStats& s) {
  if (s.usd_per_million < 0)
    return fmt::format("cost unknown for {} (see --price)", s.model);
  // Two significant digits, never an exponent: $0.16, $0.0000025, $12.35.
  double usd = CostUsd(s);
  int decimals = 2;
  if (usd > 0 && usd < 0.1)
    decimals = std::min(12, 1 - static_cast<int>(std::floor(std::log10(usd))));
  return fmt::format("est. ${:.{}f} at ${:g}/M tokens{}", usd, decimals,
                     s.usd_per_million,
                     s.batch_api ? " (Batch API: half the list price)" : "");
}

}  // namespace

std::string GroupThousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string BatchJobsText(const BatchJobCounts& b) {
  std::string states;
  for (const auto& [status, n] : b.states)
    states += fmt::format("{}{} {}", states.empty() ? "" : ", ", n, status);
  return fmt::format("{} ({}), {} of {} requests completed, {} failed",
                     CountNoun(b.jobs, "batch job", "batch jobs"), states,
                     GroupThousands(b.completed), GroupThousands(b.total),
                     GroupThousands(b.failed));
}

std::vector<std::string> FormatSummary(const RunStats& s) {
  std::vector<std::string> out;
  const char* dry = s.dry_run ? "dry run: " : "";
  out.push_back(fmt::format(
      "{}{}: {} {}embedded{}, {} rejected", dry,
      CountNoun(s.read, "record", "records"), GroupThousands(s.embedded),
      s.dry_run ? "would be " : "", EmbeddedDetail(s),
      GroupThousands(s.rejected)));
  if (s.known) out.back() += fmt::format(", {} unchanged", GroupThousands(s.unchanged));
  if (s.other_shards)
    out.back() += fmt::format("; {} left to other shards",
                              CountNoun(s.other_shards, "line", "lines"));
  if (s.known) {
    std::string line = fmt::format(
        "--known: {} unchanged, {} changed, {} new", GroupThousands(s.unchanged),
        GroupThousands(s.changed), GroupThousands(s.new_ids));
    if (s.list_deleted)
      line += s.deletions_withheld.empty()
                  ? fmt::format("; {} deleted", GroupThousands(s.deleted))
                  : "; no deletions written: " + s.deletions_withheld;
    out.push_back(line);
  }
  if (s.dry_run) {
    out.push_back(fmt::format("dry run: {} would send {} tokens; {}",
                              CountNoun(s.batches, "request", "requests"),
                              GroupThousands(s.tokens_sent), CostText(s)));
    // Without a checkpoint the run's savings on repeats depend on timing,
    // so the dry run's count is what a run with one sends: say so.
    if (!s.checkpoint && s.duplicates)
      out.push_back(fmt::format(
          "dry run: {} counted once each, as with --checkpoint; a run "
          "without one sends a repeat again once its first copy is answered",
          CountNoun(s.duplicates, "duplicate", "duplicates")));
  } else {
    std::string gave_up;
    if (s.gave_up)
      gave_up = fmt::format(", {} given up", GroupThousands(s.gave_up));
    out.push_back(fmt::format(
        "{}, {}{}{}; {} tokens; {}",
        CountNoun(s.requests, "request", "requests"),
        CountNoun(s.retries.total(), "retry", "retries"),
        RetryDetail(s.retries), gave_up, GroupThousands(s.billed_tokens()),
        CostText(s)));
  }
  if (s.batch_jobs.jobs) out.push_back(BatchJobsText(s.batch_jobs));
  if (!s.endpoints.empty()) {
    std::string line = "endpoints:";
    for (const EndpointCounts& e : s.endpoints) {
      line += fmt::format(" {} {}", e.url, CountNoun(e.requests, "request",
                                                 "requests"));
      if (e.failures)
        line += fmt::format(" ({} failed, set aside {})", e.failures,
                            CountNoun(e.set_aside, "time", "times"));
      line += ';';
    }
    line.pop_back();
    out.push_back(line);
  }
  auto rate = [&](uint64_t n) {
    return GroupThousands(static_cast<uint64_t>(PerSecond(n, s) + 0.5));
  };
  out.push_back(fmt::format("{:.1f} s, {} records/s, {} tokens/s", Seconds(s),
                            rate(s.read), rate(s.tokens_sent)));
  return out;
}

std::string FormatStatsJson(const RunStats& s, int exit_status) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto count = [&](const char* name, uint64_t n) {
    w.Key(name);
    w.Uint64(n);
  };
  w.StartObject();
  w.Key("dry_run");
  w.Bool(s.dry_run);
  w.Key("exit_status");
  w.Int(exit_status);
  w.Key("model");
  w.String(s.model.data(), static_cast<rapidjson::SizeType>(s.model.size()));

  w.Key("records");
  w.StartObject();
  count("read", s.read);
  count("embedded", s.embedded);
  count("from_checkpoint", s.from_journal);
  count("duplicates", s.duplicates);
  count("truncated", s.truncated);
  count("split", s.split);
  count("rejected", s.rejected);
  count("other_shards", s.other_shards);
  w.EndObject();

  if (s.known) {
    w.Key("known");
    w.StartObject();
    count("unchanged", s.unchanged);
    count("changed", s.changed);
    count("new", s.new_ids);
    count("deleted", s.deleted);
    w.Key("deletions_withheld");
    if (s.deletions_withheld.empty()) {
      w.Null();
    } else {
      w.String(s.deletions_withheld.data(),
               static_cast<rapidjson::SizeType>(s.deletions_withheld.size()));
    }
    w.EndObject();
  }

  w.Key("requests");
  w.StartObject();
  count("batches", s.batches);
  count("sent", s.requests);
  count("rate_limited", s.rate_limited);
  count("gave_up", s.gave_up);
  w.Key("retries");
  w.StartObject();
  count("total", s.retries.total());
  count("rate_limited", s.retries.rate_limited);
  count("server", s.retries.server);
  count("network", s.retries.network);
  count("bad_response", s.retries.bad_response);
  w.EndObject();
  w.EndObject();

  if (!s.endpoints.empty()) {
    w.Key("endpoints");
    w.StartArray();
    for (const EndpointCounts& e : s.endpoints) {
      w.StartObject();
      w.Key("url");
      w.String(e.url.data(), static_cast<rapidjson::SizeType>(e.url.size()));
      count("requests", e.requests);
      count("failures", e.failures);
      count("set_aside", e.set_aside);
      w.EndObject();
    }
    w.EndArray();
  }

  w.Key("tokens");
  w.StartObject();
  count("sent", s.tokens_sent);
  count("unsent", s.tokens_unsent);
  count("reported", s.tokens_reported);
  count("billed", s.billed_tokens());
  w.EndObject();

  w.Key("cost");
  if (s.usd_per_million < 0) {
    w.Null();
  } else {
    w.StartObject();
    w.Key("usd_per_million_tokens");
    w.Double(s.usd_per_million);
    w.Key("usd");
    w.Double(CostUsd(s));
    w.Key("batch_api");
    w.Bool(s.batch_api);
    w.EndObject();
  }
  w.Key("seconds");
  w.Double(Seconds(s));
  w.Key("records_per_second");
  w.Double(PerSecond(s.read, s));
  w.Key("tokens_per_second");
  w.Double(PerSecond(s.tokens_sent, s));
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string CountNoun(uint64_t n, const char* one, const char* many) {
  return GroupThousands(n) + " " + (n == 1 ? one : many);
}
