#include "journal/digest.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace {

// Fetched once: EVP_sha256() would make each DigestInit look the
// algorithm up in the provider tables again, which costs more than hashing
// a short id.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// libcrypto fails these calls only when it cannot allocate or has no
// SHA-256 at all; a run cannot go on without keys, and no caller could do
// anything better than stop.
void Check(int ok, const char* what) {
  if (ok == 1) return;
  std::fprintf(stderr, "embedpipe: error: libcrypto: %s failed\n", what);
  std::abort();
}

EVP_MD_CTX* NewContext() {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  Check(ctx != nullptr && Sha256Md() != nullptr, "SHA-256 set-up");
  return ctx;
}

}  // namespace

Sha256::Sha256() : ctx_(NewContext()) {
  Check(EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr), "EVP_DigestInit_ex");
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

Sha256::Sha256(const Sha256& other) : ctx_(NewContext()) { CopyFrom(other); }

Sha256& Sha256::operator=(const Sha256& other) {
  if (this != &other) CopyFrom(other);
  return *this;
}

void Sha256::CopyFrom(const Sha256& other) {
  Check(EVP_MD_CTX_copy_ex(ctx_, other.ctx_), "EVP_MD_CTX_copy_ex");
}

void Sha256::Update(const void* data, size_t n) {
  Check(EVP_DigestUpdate(ctx_, data, n), "EVP_DigestUpdate");
}

Sha256::Digest Sha256::Final() {
  Digest digest;
  unsigned int size = 0;
  Check(EVP_DigestFinal_ex(ctx_, digest.data(), &size), "EVP_DigestFinal_ex");
  return digest;
}

Sha256::Digest Sha256Of(std::string_view data) {
  Sha256::Digest digest;
  Check(EVP_Digest(data.data(), data.size(), digest.data(), nullptr,
                   Sha256Md(), nullptr),
        "EVP_Digest");
  return digest;
}

std::string HexDigest(const Sha256::Digest& digest) {
  std::string out;
  AppendHexDigest(digest, &out);
  return out;
}

void AppendHexDigest(const Sha256::Digest& digest, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (uint8_t byte : digest) {
    out->push_back(kHex[byte >> 4]);
    out->push_back(kHex[byte & 0xF]);
  }
}
