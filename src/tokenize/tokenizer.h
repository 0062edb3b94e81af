// The exact tokenizers of OpenAI's public encodings cl100k_base and
// o200k_base: tiktoken's encode_ordinary and decode, and its model map. The
// vocabularies are embedded in the binary; nothing is read at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenize/pretokenizer.h"
#include "tokenize/vocab.h"

enum class Encoding { kCl100kBase, kO200kBase };

/// Sets *encoding to the one named `name` ("cl100k_base" or "o200k_base");
/// false if there is none.
bool EncodingByName(std::string_view name, Encoding* encoding);
/// Sets *encoding to the one tiktoken's model map gives `model`: exact names
/// ("text-embedding-3-small", "gpt-4o", ...) first, then name prefixes
/// ("gpt-4o-", "gpt-4-", ...) in tiktoken's order. False for a model that
/// maps to neither encoding.
bool EncodingForModel(std::string_view model, Encoding* encoding);
/// "cl100k_base" or "o200k_base".
std::string_view EncodingName(Encoding encoding);

class Tokenizer {
 public:
  /// The tokenizer of `encoding`, built on the first call for that encoding
  /// from the embedded vocabulary (a one-time cost of some tens of
  /// milliseconds). Thread-safe; the result lives until exit and may be used
  /// from any number of threads at once.
  static const Tokenizer& Get(Encoding encoding);

  /// Appends to *ids the tokens of `text` as tiktoken's encode_ordinary gives
  /// them: special-token text such as "<|endoftext|>" is plain text. `text`
  /// should be valid UTF-8; invalid bytes are encoded too, each on its own
  /// terms (not as U+FFFD), so decoding always gives back `text`.
  void Encode(std::string_view text, std::vector<uint32_t>* ids) const;
  /// The number of tokens Encode would append. Each thread that counts
  /// keeps a cache of recent pieces' counts per encoding (96 KiB), made at
  /// its first Count.
  size_t Count(std::string_view text) const;

  /// Appends the bytes of `ids`, each below vocab_size(), to *bytes.
  /// Decoding what Encode gave yields the text it was given; decoding a
  /// prefix of that yields a prefix of the text, which may end inside a
  /// UTF-8 sequence.
  void Decode(std::span<const uint32_t> ids, std::string* bytes) const;
  /// The number of bytes Decode would append: for a prefix of Encode's ids,
  /// the offset in the text where that prefix ends.
  size_t DecodedSize(std::span<const uint32_t> ids) const;
  /// The bytes of token `id` < vocab_size().
  std::string_view TokenBytes(uint32_t id) const { return vocab_.Bytes(id); }
  /// The number of ordinary tokens, ids 0 to vocab_size() - 1. Special
  /// tokens (<|endoftext|> ...) are above these and never produced.
  uint32_t vocab_size() const { return vocab_.size(); }

 private:
  explicit Tokenizer(Encoding encoding);

  Encoding encoding_;
  PiecePattern pattern_;
  Vocab vocab_;
};
