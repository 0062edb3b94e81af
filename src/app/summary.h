// The account of a run, in two spellings of the same RunStats: lines for a
// person on stderr at the end, and one JSON object for scripts (--stats).
#pragma once

#include <string>
#include <vector>

#include "app/run_stats.h"

/// The closing lines for stderr, without program name or newline: records
/// by outcome; requests, retries by cause, tokens and cost; time and
/// throughput. A dry run says what would be sent.
std::vector<std::string> FormatSummary(const RunStats& stats);

/// `stats` as one JSON object and a newline; see the man page, FILES, for
/// its fields. `exit_status` is the status the run ends with.
std::string FormatStatsJson(const RunStats& stats, int exit_status);

/// "2 batch jobs (1 in_progress, 1 completed), 1,200 of 2,400 requests
/// completed, 3 failed": the jobs' states and request_counts.
std::string BatchJobsText(const BatchJobCounts& jobs);

/// `n` with thousands separated by commas: 19207 -> "19,207". Every count
/// a message shows is written this way.
std::string GroupThousands(uint64_t n);

/// `n` grouped, then the noun that agrees with it: "1 attempt",
/// "1,024 records".
std::string CountNoun(uint64_t n, const char* one, const char* many);
