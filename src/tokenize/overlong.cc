#include "tokenize/overlong.h"

#include <algorithm>
#include <cmath>

bool ParseOverlongPolicy(std::string_view name, OverlongPolicy* policy) {
  if (name == "split") *policy = OverlongPolicy::kSplit;
  else if (name == "truncate") *policy = OverlongPolicy::kTruncate;
  else if (name == "skip") *policy = OverlongPolicy::kSkip;
  else if (name == "fail") *policy = OverlongPolicy::kFail;
  else return false;
  return true;
}

namespace {

bool IsContinuationByte(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

}  // namespace

void CutByTokens(const TokenCounter& counter, std::string_view text,
                 uint32_t max_tokens, bool first_only,
                 std::vector<std::string_view>* pieces,
                 std::vector<uint32_t>* tokens) {
  pieces->clear();
  tokens->clear();
  std::vector<size_t> ends;
  counter.TokenEndOffsets(text, &ends);
  size_t start = 0;
  size_t first_token = 0;  // The first token that ends after `start`.
  while (start < text.size()) {
    size_t budget = max_tokens;
    while (true) {
      size_t last = std::min(first_token + budget, ends.size());
      size_t end = last == 0 ? text.size() : ends[last - 1];
      // Tokens may end inside a character; cut before that character.
      while (end > start && end < text.size() && IsContinuationByte(text[end]))
        --end;
      if (end == start) {
        // One character alone is over the cap: it becomes a piece anyway.
        end = start + 1;
        while (end < text.size() && IsContinuationByte(text[end])) ++end;
      }
      uint32_t count = counter.Count(text.substr(start, end - start));
      if (count <= max_tokens || budget <= 1) {
        pieces->push_back(text.substr(start, end - start));
        tokens->push_back(count);
        start = end;
        break;
      }
      // Cut inside what was one token: the piece re-tokenized differently.
      budget -= std::min<size_t>(budget - 1, count - max_tokens);
    }
    if (first_only) return;
    while (first_token < ends.size() && ends[first_token] <= start) ++first_token;
  }
}

uint32_t LoweredCap(uint32_t tokens, int64_t server_max) {
  uint64_t refused = tokens;
  if (server_max > 0)
    refused = std::min(refused, static_cast<uint64_t>(server_max));
  return static_cast<uint32_t>(std::max<uint64_t>(1, refused * 7 / 8));
}

void CombineWeighted(const std::vector<const float*>& vectors,
                     const std::vector<uint32_t>& weights, size_t dims,
                     float* out) {
  std::vector<double> sum(dims, 0.0);
  for (size_t v = 0; v < vectors.size(); ++v) {
    double w = weights[v];
    for (size_t d = 0; d < dims; ++d) sum[d] += w * vectors[v][d];
  }
  double squares = 0.0;
  for (double x : sum) squares += x * x;
  double norm = std::sqrt(squares);
  for (size_t d = 0; d < dims; ++d)
    out[d] = static_cast<float>(norm > 0 ? sum[d] / norm : 0.0);
}
