// Inputs over the per-input token cap: the policies for them, cutting a text
// into pieces within the cap, and combining the pieces' vectors into one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenize/token_counter.h"

enum class OverlongPolicy {
  kSplit,     ///< Embed every piece; the record's vector is their weighted mean.
  kTruncate,  ///< Embed the first piece only.
  kSkip,      ///< Reject the record.
  kFail,      ///< Reject the record and stop the run.
};

/// Parses "split", "truncate", "skip" or "fail".
bool ParseOverlongPolicy(std::string_view name, OverlongPolicy* policy);

/// Cuts `text` into consecutive pieces that cover it, each of at most
/// `max_tokens` tokens by `counter` (re-counted, so a cut inside what was one
/// token cannot make a piece longer) and each cut between characters. Only a
/// single character that alone has more tokens than `max_tokens` makes a
/// longer piece. Fills *pieces with views into `text` and *tokens with each
/// piece's count. With `first_only`, stops after the first piece.
void CutByTokens(const TokenCounter& counter, std::string_view text,
                 uint32_t max_tokens, bool first_only,
                 std::vector<std::string_view>* pieces,
                 std::vector<uint32_t>* tokens);

/// The cap for a text the server refused as too long though it had
/// `tokens` tokens by embedpipe's count: an eighth below the lower of that
/// count and the limit the server stated (`server_max`; <= 0: none), room
/// for a server whose tokenizer counts more than embedpipe's. At least 1.
uint32_t LoweredCap(uint32_t tokens, int64_t server_max);

/// The mean of `vectors` (each `dims` floats) weighted by `weights`, summed
/// in the order given in double precision, then scaled to unit length, into
/// `out` (dims floats). Deterministic for a given order, so a test can
/// recompute it exactly.
void CombineWeighted(const std::vector<const float*>& vectors,
                     const std::vector<uint32_t>& weights, size_t dims,
                     float* out);
