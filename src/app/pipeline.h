// One embedding run, wired end to end: input files -> line reader -> record
// parser -> normalizer -> token counter -> batcher -> scheduler (transport)
// -> reorder buffer -> writers. A single-threaded event loop: reading input,
// running requests and writing output interleave, so a slow producer never
// stalls requests and a slow server never stops reading, within a bounded
// memory window.
#pragma once

#include <string>

#include "app/options.h"
#include "app/progress.h"
#include "transport/clock.h"
#include "transport/transport.h"

/// Runs the job `options` describes, writing embeddings to `out_fd`.
/// `api_key` (may be empty: no Authorization header) is kept out of
/// Options so that it cannot be printed with them. `progress`: how progress
/// shows on stderr (the caller knows whether it is a terminal). Returns the
/// exit status.
int RunPipeline(const Options& options, const std::string& api_key,
                Transport* transport, const Clock* clock, int out_fd,
                ProgressMode progress);
