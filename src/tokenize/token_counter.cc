#include "tokenize/token_counter.h"

#include "tokenize/tokenizer.h"

namespace {

// Every token of a byte-level BPE, WordPiece or byte-fallback vocabulary
// covers at least one byte, so the UTF-8 length never undercounts a text's
// own tokens; `added` covers the ones a model puts around it ([CLS] and
// [SEP], BOS and EOS, SentencePiece's leading space mark).
class ByteEstimateCounter : public TokenCounter {
 public:
  explicit ByteEstimateCounter(uint32_t added) : added_(added) {}
  uint32_t Count(std::string_view text) const override {
    return static_cast<uint32_t>(text.size()) + added_;
  }
  bool exact() const override { return false; }
  std::string_view name() const override { return "estimate"; }
  void TokenEndOffsets(std::string_view text,
                       std::vector<size_t>* ends) const override {
    ends->resize(text.size());
    for (size_t i = 0; i < text.size(); ++i) (*ends)[i] = i + 1;
  }

 private:
  uint32_t added_;
};

// tiktoken's count. The vocabulary loads at the first Count, not here, so
// making a counter stays cheap.
class ExactCounter : public TokenCounter {
 public:
  explicit ExactCounter(Encoding encoding) : encoding_(encoding) {}
  uint32_t Count(std::string_view text) const override {
    return static_cast<uint32_t>(Tokenizer::Get(encoding_).Count(text));
  }
  bool exact() const override { return true; }
  std::string_view name() const override { return EncodingName(encoding_); }
  void TokenEndOffsets(std::string_view text,
                       std::vector<size_t>* ends) const override {
    const Tokenizer& tokenizer = Tokenizer::Get(encoding_);
    std::vector<uint32_t> ids;
    tokenizer.Encode(text, &ids);
    ends->resize(ids.size());
    size_t offset = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      offset += tokenizer.TokenBytes(ids[i]).size();
      (*ends)[i] = offset;
    }
  }

 private:
  Encoding encoding_;
};

}  // namespace

std::unique_ptr<TokenCounter> NewTokenCounter(std::string_view model,
                                              std::string_view tokenizer,
                                              uint32_t added_tokens,
                                              std::string* err) {
  Encoding encoding;
  if (tokenizer.empty()) {
    if (EncodingForModel(model, &encoding))
      return std::make_unique<ExactCounter>(encoding);
    return std::make_unique<ByteEstimateCounter>(added_tokens);
  }
  if (tokenizer == "estimate")
    return std::make_unique<ByteEstimateCounter>(added_tokens);
  if (EncodingByName(tokenizer, &encoding))
    return std::make_unique<ExactCounter>(encoding);
  *err = "unknown tokenizer '" + std::string(tokenizer) +
         "' (known: cl100k_base, o200k_base, estimate)";
  return nullptr;
}
