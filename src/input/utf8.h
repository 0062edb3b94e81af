// UTF-8 well-formedness as the Unicode Standard defines it (Table 3-7), for
// everything that must only ever emit valid UTF-8: normalized texts and the
// strings copied to output lines.
#pragma once

#include <cstddef>
#include <string_view>

/// U+FFFD REPLACEMENT CHARACTER, encoded.
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

/// Returns the length of the well-formed UTF-8 sequence at s[i], or 0 with
/// *subpart set to the length of the maximal subpart of the ill-formed
/// sequence there (1 to 3): the bytes one U+FFFD replaces.
size_t Utf8SequenceLength(std::string_view s, size_t i, size_t* subpart);
