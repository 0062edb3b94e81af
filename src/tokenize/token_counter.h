// Counts tokens as a provider counts them, behind one interface, so the
// batcher and the local test server do not care whether a count is exact
// (a public tokenizer) or an upper-bound estimate (a private one).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

class TokenCounter {
 public:
  virtual ~TokenCounter() = default;
  /// Number of tokens in `text`, which is valid UTF-8.
  virtual uint32_t Count(std::string_view text) const = 0;
  /// True when Count() equals the provider's own count, false when it is an
  /// estimate that is never below it.
  virtual bool exact() const = 0;
  /// The name users see and pass to --tokenizer ("estimate", ...).
  virtual std::string_view name() const = 0;
  /// Replaces *ends with the byte offset in `text` where each token ends, in
  /// order (so ends->size() is Count(text) less the tokens a model adds to
  /// every text): where text can be cut between tokens.
  virtual void TokenEndOffsets(std::string_view text,
                               std::vector<size_t>* ends) const = 0;
};

/// Returns the counter named by `tokenizer` ("cl100k_base", "o200k_base" or
/// "estimate"), or when that is empty the one `model` uses: the exact one of
/// its tiktoken encoding, or the estimate for a model with no public one.
/// The estimate counts one token per UTF-8 byte plus `added_tokens` per
/// text, for the special tokens a model may put around it; tiktoken's
/// models add none. Returns null and fills *err for an unknown tokenizer
/// name.
std::unique_ptr<TokenCounter> NewTokenCounter(std::string_view model,
                                              std::string_view tokenizer,
                                              uint32_t added_tokens,
                                              std::string* err);
