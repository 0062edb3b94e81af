// Standard base64 (RFC 4648, with padding), as providers use for float32
// vectors on the wire.
#pragma once

#include <string>
#include <string_view>

/// Decodes `in` into *out. Returns false on a character outside the
/// alphabet, bad padding, or a length that is not a multiple of four.
bool Base64Decode(std::string_view in, std::string* out);

/// Encodes `in` with padding.
std::string Base64Encode(std::string_view in);
