// Fuzz target: the normalizer and both tokenizers. Normalization must be
// idempotent and give valid, non-empty UTF-8; tokenizing must round-trip:
// decoding the ids gives back the normalized bytes exactly, the count agrees
// with the ids, and every prefix of the ids decodes to a prefix of the text.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "input/normalizer.h"
#include "tokenize/tokenizer.h"
#include "input/utf8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t mode = data[0];
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  NormalizeConfig config;
  config.form = mode % 3 == 0   ? NormalForm::kNfc
                : mode % 3 == 1 ? NormalForm::kNfkc
                                : NormalForm::kNone;
  config.invalid_utf8 = mode & 4 ? InvalidUtf8::kReject : InvalidUtf8::kReplace;
  std::string text, reason;
  if (!Normalize(in, config, &text, &reason)) {
    if (reason.empty()) std::abort();
    return 0;
  }
  if (text.empty()) std::abort();
  for (size_t i = 0, n, sub; i < text.size(); i += n)
    if ((n = Utf8SequenceLength(text, i, &sub)) == 0) std::abort();
  std::string again;
  if (!Normalize(text, config, &again, &reason) || again != text) std::abort();

  const Tokenizer& tok =
      Tokenizer::Get(mode & 8 ? Encoding::kO200kBase : Encoding::kCl100kBase);
  std::vector<uint32_t> ids;
  tok.Encode(text, &ids);
  if (tok.Count(text) != ids.size()) std::abort();
  std::string bytes;
  for (uint32_t id : ids)
    if (id >= tok.vocab_size()) std::abort();
  tok.Decode(ids, &bytes);
  if (bytes != text) std::abort();
  // Encoding the raw (unnormalized, maybe invalid) bytes round-trips too.
  ids.clear();
  bytes.clear();
  tok.Encode(in, &ids);
  tok.Decode(ids, &bytes);
  if (bytes != in) std::abort();
  size_t half = ids.size() / 2;
  size_t prefix = tok.DecodedSize(std::span<const uint32_t>(ids.data(), half));
  bytes.clear();
  tok.Decode(std::span<const uint32_t>(ids.data(), half), &bytes);
  if (bytes.size() != prefix || in.substr(0, prefix) != bytes) std::abort();
  return 0;
}
