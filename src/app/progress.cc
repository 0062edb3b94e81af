#include "app/progress.h"

#include <algorithm>

#include <fmt/core.h>

#include "app/summary.h"

namespace {

// A terminal line is redrawn this often: smooth enough to see it move,
// rare enough to cost nothing.
constexpr int64_t kBarIntervalMs = 250;
// The rate and time left are measured over about this much recent time,
// so that they follow a run that speeds up (checkpoint hits at the start)
// or slows down (rate limits).
constexpr int64_t kRateWindowMs = 20000;
constexpr int kBarWidth = 20;

}  // namespace

bool ParseProgressMode(std::string_view name, bool stderr_is_terminal,
                       ProgressMode* mode) {
  if (name == "auto")
    *mode = stderr_is_terminal ? ProgressMode::kBar : ProgressMode::kLog;
  else if (name == "bar")
    *mode = ProgressMode::kBar;
  else if (name == "log")
    *mode = ProgressMode::kLog;
  else if (name == "none")
    *mode = ProgressMode::kNone;
  else
    return false;
  return true;
}

ProgressMeter::ProgressMeter(ProgressMode mode, int64_t log_interval_ms)
    : mode_(mode),
      interval_ms_(mode == ProgressMode::kBar ? kBarIntervalMs
                                              : log_interval_ms),
      // The first log line comes after one interval: a short run under
      // cron logs its summary only.
      next_ms_(mode == ProgressMode::kBar ? 0 : log_interval_ms) {}

bool ProgressMeter::Due(int64_t now_ms) {
  if (mode_ == ProgressMode::kNone || now_ms < next_ms_) return false;
  next_ms_ = now_ms + interval_ms_;
  return true;
}

std::string ProgressMeter::Line(const RunStats& s) {
  uint64_t done = s.embedded + s.rejected;
  samples_.push_back({s.elapsed_ms, done});
  while (samples_.size() > 2 &&
         s.elapsed_ms - samples_[1].ms >= kRateWindowMs)
    samples_.pop_front();
  const Sample& first = samples_.front();
  double window_s = (s.elapsed_ms - first.ms) / 1000.0;
  double rate = window_s > 0 ? (done - first.records) / window_s : 0;

  // The records to expect: those read, scaled by the share of the input's
  // bytes read so far; exact once it is all read. Reading runs ahead of
  // records done, so the share is of records done, not of bytes read.
  bool sized = s.input_bytes_total > 0 && s.input_bytes_done > 0;
  bool all_read = sized && s.input_bytes_done >= s.input_bytes_total;
  double expected = 0;
  if (sized)
    expected = static_cast<double>(s.read) *
               static_cast<double>(s.input_bytes_total) /
               static_cast<double>(s.input_bytes_done);

  std::string line = "[" + FormatDuration(s.elapsed_ms / 1000) + "] ";
  if (expected > 0) {
    double fraction = std::min(1.0, done / expected);
    if (mode_ == ProgressMode::kBar) {
      int filled = static_cast<int>(fraction * kBarWidth);
      line += "[" + std::string(filled, '#') +
              std::string(kBarWidth - filled, '.') + "] ";
    }
    line += fmt::format("{:.0f}% {}/{}{} records", fraction * 100,
                        GroupThousands(done), all_read ? "" : "~",
                        GroupThousands(static_cast<uint64_t>(expected + 0.5)));
  } else {
    line += GroupThousands(done) + " records";
  }
  line += fmt::format(", {} tokens, {} in flight", ShortCount(s.tokens_sent),
                      s.in_flight);
  if (window_s > 0)
    line += fmt::format(", {} records/s",
                        GroupThousands(static_cast<uint64_t>(rate + 0.5)));
  if (s.retries.total())
    line += fmt::format(", {} retries ({} rate-limited)",
                        GroupThousands(s.retries.total()),
                        GroupThousands(s.retries.rate_limited));
  if (s.rejected) line += fmt::format(", {} rejected", GroupThousands(s.rejected));
  // Under --batch-api records are done only once the jobs end: their
  // progress is the API's.
  if (s.batch_jobs.jobs) line += "; " + BatchJobsText(s.batch_jobs);
  if (expected > done && rate > 0)
    line += ", " +
            FormatDuration(static_cast<int64_t>((expected - done) / rate + 0.5)) +
            " left";
  return line;
}

std::string ShortCount(uint64_t n) {
  if (n < 10000) return std::to_string(n);
  const char* units = "kMGT";
  double v = static_cast<double>(n);
  int unit = -1;
  while (v >= 999.95 && unit < 3) {
    v /= 1000;
    ++unit;
  }
  if (v < 99.95) return fmt::format("{:.1f}{}", v, units[unit]);
  return fmt::format("{:.0f}{}", v, units[unit]);
}

std::string FormatDuration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  int64_t h = seconds / 3600, m = seconds / 60 % 60, s = seconds % 60;
  if (h) return fmt::format("{}:{:02}:{:02}", h, m, s);
  return fmt::format("{}:{:02}", m, s);
}
