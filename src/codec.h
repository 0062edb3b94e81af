// The interface every provider API implements: how a batch becomes an HTTP
// request, and how a response becomes vectors placed in the batch's order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "http.h"
#include "record.h"

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
