// SHA-256 through libcrypto's EVP interface. The checkpoint journal keys
// records by the digest of the run's settings and a normalized text (a state
// that has absorbed the settings is copied once per text); --shard assigns
// records by the digest of their id, and the Batch API names its files by
// one. libcrypto comes with the OpenSSL build of libcurl that embedpipe
// links anyway, and chooses the CPU's SHA extensions where it has them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

typedef struct evp_md_ctx_st EVP_MD_CTX;

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  ~Sha256();
  /// Copying forks the message: both go on from the shared prefix.
  Sha256(const Sha256& other);
  Sha256& operator=(const Sha256& other);

  /// Absorbs `n` more bytes of the message. Any split of a message into
  /// Update calls gives the same digest.
  void Update(const void* data, size_t n);
  void Update(std::string_view data) { Update(data.data(), data.size()); }

  /// Pads the message and returns its digest. The object then holds a
  /// finished state: CopyFrom another before hashing more.
  Digest Final();

  /// Makes this state a copy of `other` (its message so far), reusing this
  /// object's allocation: the journal forks its settings prefix once per
  /// text.
  void CopyFrom(const Sha256& other);

 private:
  EVP_MD_CTX* ctx_;
};

/// The digest of `data` in one call.
Sha256::Digest Sha256Of(std::string_view data);

/// Lower-case hex of a digest (64 characters): the output's key column,
/// messages and tests.
std::string HexDigest(const Sha256::Digest& digest);
void AppendHexDigest(const Sha256::Digest& digest, std::string* out);
