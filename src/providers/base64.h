// Standard base64 (RFC 4648, with padding), as providers use for float32
// vectors on the wire and tiktoken for its rank files. libcrypto does the
// work (it decodes a 1536-float vector about a third faster than a plain
// table loop); this module adds the strictness libcrypto lacks.
#pragma once

#include <string>
#include <string_view>

/// Decodes `in` into *out. Returns false on a character outside the
/// alphabet (white space included, anywhere), padding anywhere but the last
/// one or two characters, or a length that is not a multiple of four.
bool Base64Decode(std::string_view in, std::string* out);

/// Encodes `in` with padding.
std::string Base64Encode(std::string_view in);
