#include "tokenize/tokenizer.h"

#include <cstdlib>
#include <memory>
#include <mutex>

#include "app/diag.h"
#include "tokenize/bpe.h"
#include "tokenize/piece_count_cache.h"
#include "tokenize/vocab_data.h"

namespace {

constexpr Encoding kO200k = Encoding::kO200kBase;
constexpr Encoding kCl100k = Encoding::kCl100kBase;

struct ModelEncoding {
  std::string_view model;
  Encoding encoding;
};

// tiktoken/model.py MODEL_TO_ENCODING, the entries for these encodings.
constexpr ModelEncoding kModels[] = {
    {"o1", kO200k},
    {"o3", kO200k},
    {"o4-mini", kO200k},
    {"gpt-5", kO200k},
    {"gpt-4.1", kO200k},
    {"gpt-4o", kO200k},
    {"gpt-4", kCl100k},
    {"gpt-3.5-turbo", kCl100k},
    {"gpt-3.5", kCl100k},
    {"gpt-35-turbo", kCl100k},
    {"davinci-002", kCl100k},
    {"babbage-002", kCl100k},
    {"text-embedding-ada-002", kCl100k},
    {"text-embedding-3-small", kCl100k},
    {"text-embedding-3-large", kCl100k},
};

// tiktoken/model.py MODEL_PREFIX_TO_ENCODING, in its order, which matters:
// the first prefix that matches wins ("ft:gpt-4o" before "ft:gpt-4").
constexpr ModelEncoding kModelPrefixes[] = {
    {"o1-", kO200k},
    {"o3-", kO200k},
    {"o4-mini-", kO200k},
    {"gpt-5-", kO200k},
    {"gpt-4.5-", kO200k},
    {"gpt-4.1-", kO200k},
    {"chatgpt-4o-", kO200k},
    {"gpt-4o-", kO200k},
    {"gpt-4-", kCl100k},
    {"gpt-3.5-turbo-", kCl100k},
    {"gpt-35-turbo-", kCl100k},
    {"ft:gpt-4o", kO200k},
    {"ft:gpt-4", kCl100k},
    {"ft:gpt-3.5-turbo", kCl100k},
    {"ft:davinci-002", kCl100k},
    {"ft:babbage-002", kCl100k},
};

constexpr size_t kEncodingCount = 2;

}  // namespace

bool EncodingByName(std::string_view name, Encoding* encoding) {
  for (Encoding e : {kCl100k, kO200k}) {
    if (name == EncodingName(e)) {
      *encoding = e;
      return true;
    }
  }
  return false;
}

bool EncodingForModel(std::string_view model, Encoding* encoding) {
  for (const ModelEncoding& m : kModels) {
    if (model == m.model) {
      *encoding = m.encoding;
      return true;
    }
  }
  for (const ModelEncoding& m : kModelPrefixes) {
    if (model.starts_with(m.model)) {
      *encoding = m.encoding;
      return true;
    }
  }
  return false;
}

std::string_view EncodingName(Encoding encoding) {
  return encoding == kCl100k ? "cl100k_base" : "o200k_base";
}

const Tokenizer& Tokenizer::Get(Encoding encoding) {
  static std::once_flag once[kEncodingCount];
  // Never freed: other threads may use a tokenizer until the process ends.
  static const Tokenizer* tokenizers[kEncodingCount];
  size_t i = static_cast<size_t>(encoding);
  std::call_once(once[i], [&] { tokenizers[i] = new Tokenizer(encoding); });
  return *tokenizers[i];
}

Tokenizer::Tokenizer(Encoding encoding)
    : encoding_(encoding),
      pattern_(encoding == kCl100k ? PiecePattern::kCl100k
                                   : PiecePattern::kO200k) {
  std::string err;
  std::string_view ranks = encoding == kCl100k ? EmbeddedCl100kBaseRanks()
                                               : EmbeddedO200kBaseRanks();
  // The build verified the data's sha256, so this only fails on a defect.
  if (!vocab_.Parse(ranks, &err)) {
    diag::Error("embedded " + std::string(EncodingName(encoding)) +
                " vocabulary: " + err);
    std::abort();
  }
}

void Tokenizer::Encode(std::string_view text,
                       std::vector<uint32_t>* ids) const {
  PreTokenizer pieces(pattern_, text);
  std::string_view piece;
  while (pieces.Next(&piece)) BytePairEncode(vocab_, piece, ids);
}

size_t Tokenizer::Count(std::string_view text) const {
  // One cache per thread, so that threads share no state, and per encoding,
  // whose pieces count differently.
  thread_local std::unique_ptr<PieceCountCache> caches[kEncodingCount];
  std::unique_ptr<PieceCountCache>& cache =
      caches[static_cast<size_t>(encoding_)];
  if (!cache) cache = std::make_unique<PieceCountCache>();
  auto count_piece = [this](std::string_view piece) {
    return BytePairEncode(vocab_, piece, nullptr);
  };

  PreTokenizer pieces(pattern_, text);
  std::string_view piece;
  size_t count = 0;
  while (pieces.Next(&piece)) {
    // BytePairEncode counts pieces of one or two bytes from a direct table
    // already, as fast as a cache hit.
    bool cached =
        piece.size() > 2 && piece.size() <= PieceCountCache::kMaxPiece;
    count += cached ? cache->Count(piece, count_piece) : count_piece(piece);
  }
  return count;
}

void Tokenizer::Decode(std::span<const uint32_t> ids,
                       std::string* bytes) const {
  bytes->reserve(bytes->size() + DecodedSize(ids));
  for (uint32_t id : ids) bytes->append(vocab_.Bytes(id));
}

size_t Tokenizer::DecodedSize(std::span<const uint32_t> ids) const {
  size_t size = 0;
  for (uint32_t id : ids) size += vocab_.Bytes(id).size();
  return size;
}
