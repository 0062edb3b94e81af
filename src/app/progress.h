// Progress while a run goes on: what the progress line says (records, share
// of the input, tokens, requests in flight, rate, retries, time left) and
// when one is due: redrawn a few times a second on a terminal, a plain line
// every --progress-interval seconds otherwise (cron logs). Drawing is the
// caller's (diag.h); this file decides text and timing only.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "app/run_stats.h"

enum class ProgressMode { kNone, kBar, kLog };

/// Reads --progress: "bar", "log", "none", or "auto" (a bar when stderr is
/// a terminal, log lines when it is not). False for any other name.
bool ParseProgressMode(std::string_view name, bool stderr_is_terminal,
                       ProgressMode* mode);

class ProgressMeter {
 public:
  /// `log_interval_ms`: time between lines in kLog mode.
  ProgressMeter(ProgressMode mode, int64_t log_interval_ms);

  /// Whether a line is due at `now_ms` (never in kNone). When it is, the
  /// caller shows Line(); Due() then counts it as shown.
  bool Due(int64_t now_ms);

  /// The progress line for `stats` (elapsed_ms is "now"), without the
  /// program name or a newline. Rates are over the last 20 seconds. When
  /// the input's size is known, the records to expect are estimated from
  /// the records read and the share of bytes read (exact once all is read),
  /// and the share and time left are of those. Batch API jobs, if any,
  /// follow with their states and request counts.
  std::string Line(const RunStats& stats);

  ProgressMode mode() const { return mode_; }

 private:
  struct Sample {
    int64_t ms;
    uint64_t records;  ///< Done: embedded or rejected.
  };

  ProgressMode mode_;
  int64_t interval_ms_;
  int64_t next_ms_ = 0;
  std::deque<Sample> samples_;  // For the recent rate; a few seconds' worth.
};

/// 5234567 -> "5.2M": a count in at most four significant characters.
std::string ShortCount(uint64_t n);

/// 3725 s -> "1:02:05", 65 s -> "1:05".
std::string FormatDuration(int64_t seconds);
