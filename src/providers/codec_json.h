// The JSON work every codec shares, so that each provider's codec only
// describes its shapes: reading the vectors of a response (wherever the
// provider puts them, by index or by position, as numbers or base64
// float32) in one SAX pass, writing the inputs array of a request, and
// reading the message and code of an error body in any provider's layout.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "providers/codec.h"

/// Where a response keeps its vectors.
struct VectorLayout {
  /// Object keys from the root to the array of items; empty when the root
  /// itself is that array (TEI's [[...],[...]]).
  std::vector<std::string> list_path;
  /// Each item is an object holding its vector under this key (OpenAI's
  /// "embedding", Gemini's "values"); empty when each item is the vector.
  std::string vector_key;
  /// The key in each item object that says which input it belongs to
  /// (OpenAI's "index"); empty when items come in input order.
  std::string index_key;
  /// Object keys from the root to the provider's token count; empty: none.
  std::vector<std::string> tokens_path;
};

/// Decodes `body` into *out for a request of `count` inputs. A vector is a
/// JSON array of numbers, each a finite float32, or a base64 string of
/// little-endian float32s. Returns false and fills *err (leaving *out
/// empty) unless there are exactly `count` vectors, one per input, all of
/// one length, equal to `expected_dims` when that is not 0.
/// A body with kBodySlack bytes of spare capacity (as the transport leaves
/// it) is read where it lies; any other is first copied into one that has.
bool DecodeVectors(const std::string& body, const VectorLayout& layout,
                   size_t count, size_t expected_dims, Embeddings* out,
                   std::string* err);

/// Reads an error body in any of the shapes providers use:
/// {"error":{"message","type"|"status","code"}} (OpenAI, Azure, Gemini),
/// {"error":"...","error_type":"..."} (TEI, Ollama), {"message":"..."}
/// (Cohere), {"object":"error","message","type","code"} (vLLM, Mistral)
/// and {"detail":"..."} (Voyage, Jina). A numeric code is given as its
/// decimal text. Without a message: "HTTP <status>", or the transport error.
ApiError ParseErrorBody(const HttpResponse& response);

/// The header lines of a JSON POST, plus `auth_prefix` + `key` when the
/// key is not empty (e.g. "Authorization: Bearer ", "api-key: ").
std::vector<std::string> JsonHeaders(std::string_view auth_prefix,
                                     std::string_view key);

/// `base` without trailing slashes, then `path`.
std::string JoinUrl(std::string_view base, std::string_view path);

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

/// Writes the texts of `batch` as a JSON array of strings, in order.
void WriteTexts(const Batch& batch, JsonWriter* w);

/// A string buffer sized for a request body over `batch`.
void ReserveBody(const Batch& batch, rapidjson::StringBuffer* buffer);

/// The frame of a codec whose requests are one JSON body POSTed to one URL
/// with fixed headers, and whose responses put vectors where a VectorLayout
/// says: a provider's codec then only writes its request body.
class JsonCodec : public Codec {
 public:
  bool DecodeResponse(const HttpResponse& response, const Batch& batch,
                      Embeddings* out, std::string* err) const override;
  ApiError ParseError(const HttpResponse& response) const override;

  /// The largest body a right answer to `inputs` inputs can have: each
  /// vector at the requested dimensions (or kMaxEmbeddingDims when the
  /// model's own size is asked for) at the most bytes a value takes in the
  /// wire encoding. A larger response cannot be decoded, so the transport
  /// stops reading it there rather than at its own, much larger, limit.
  size_t MaxResponseBytes(size_t inputs) const;

 protected:
  /// Requests go to `url`, with JsonHeaders(`auth_prefix`, the key).
  JsonCodec(CodecConfig config, std::string url, std::string_view auth_prefix,
            const VectorLayout& layout);

  /// The request carrying `body`, which embeds `batch`; its response is
  /// bounded by MaxResponseBytes.
  HttpRequest Post(const Batch& batch,
                   const rapidjson::StringBuffer& body) const;

  const CodecConfig config_;

 private:
  const std::string url_;
  const std::vector<std::string> headers_;
  const VectorLayout& layout_;
};
