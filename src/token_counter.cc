#include "token_counter.h"

namespace {

// Every token of a byte-level BPE or byte-fallback vocabulary covers at least
// one byte, so the UTF-8 length never undercounts.
class ByteEstimateCounter : public TokenCounter {
 public:
  uint32_t Count(std::string_view text) const override {
    return static_cast<uint32_t>(text.size());
  }
  bool exact() const override { return false; }
  std::string_view name() const override { return "estimate"; }
};

}  // namespace

std::unique_ptr<TokenCounter> NewTokenCounter(std::string_view model,
                                              std::string_view tokenizer,
                                              std::string* err) {
  (void)model;
  if (tokenizer.empty() || tokenizer == "estimate")
    return std::make_unique<ByteEstimateCounter>();
  *err = "unknown tokenizer '" + std::string(tokenizer) +
         "' (known: estimate)";
  return nullptr;
}
