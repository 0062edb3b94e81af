#include "providers/base64.h"

#include <openssl/evp.h>

#include <cstring>

bool Base64Decode(std::string_view in, std::string* out) {
  out->clear();
  if (in.empty()) return true;
  if (in.size() % 4 != 0) return false;
  // EVP_DecodeBlock takes '=' as a zero digit wherever it stands, which
  // RFC 4648 allows only in the last two places. It also trims white space
  // at either end before decoding: that shows as fewer bytes than the
  // length promises, and is refused below.
  size_t padding = in.back() != '=' ? 0 : in[in.size() - 2] == '=' ? 2 : 1;
  std::string_view digits = in.substr(0, in.size() - padding);
  if (std::memchr(digits.data(), '=', digits.size()) != nullptr) return false;
  out->resize(in.size() / 4 * 3);
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n != static_cast<int>(out->size())) {
    out->clear();
    return false;
  }
  out->resize(out->size() - padding);
  return true;
}

std::string Base64Encode(std::string_view in) {
  std::string out((in.size() + 2) / 3 * 4 + 1, '\0');  // EVP adds a NUL.
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}
