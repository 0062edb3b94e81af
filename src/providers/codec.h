// The interface every provider API implements: how a batch becomes an HTTP
// request, and how a response becomes vectors placed in the batch's order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "input/record.h"
#include "transport/http.h"

/// The longest vector a codec accepts: the journal's limit (journal.h
/// kJournalMaxDims). A longer one is a broken or hostile server, and would
/// make the batch's output array inputs x dims floats big.
constexpr size_t kMaxEmbeddingDims = 65535;

/// Vectors for one batch: record i's vector is values[i*dims, (i+1)*dims).
struct Embeddings {
  size_t dims = 0;
  std::vector<float> values;
  uint64_t prompt_tokens = 0;  ///< As the provider reported it, 0 if not.
};

/// What an error response says, as far as the body tells.
struct ApiError {
  std::string message;  ///< The provider's text, or a short fallback.
  std::string type;
  std::string code;
};

/// What a codec needs to know about the run; each codec reads its part.
struct CodecConfig {
  std::string base_url;    ///< Where the provider's API is rooted.
  std::string model;       ///< Model name (Azure: the deployment).
  int dimensions = 0;      ///< 0: omit, the model's native size.
  bool base64 = false;     ///< Ask for base64 float32 where offered.
  std::string api_key;     ///< Empty: no key is sent.
  std::string input_type;  ///< Provider's input/task type; empty: omit.
  bool truncate = false;   ///< Let the server truncate over-long inputs.
  std::string api_version; ///< Azure's api-version.
};

class Codec {
 public:
  virtual ~Codec() = default;

  /// The request that embeds every record of `batch`, in order.
  virtual HttpRequest EncodeRequest(const Batch& batch) const = 0;

  /// Decodes a successful response for `batch`. Returns false and fills
  /// *err when it does not match the request in any way (count, indexes,
  /// dimensions, non-finite values, malformed body); nothing of such a
  /// response may be used.
  virtual bool DecodeResponse(const HttpResponse& response, const Batch& batch,
                              Embeddings* out, std::string* err) const = 0;

  /// Reads the provider's error message and code from an error response.
  virtual ApiError ParseError(const HttpResponse& response) const = 0;
};
