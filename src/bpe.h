// Byte pair encoding of one pre-tokenized piece against a Vocab, giving
// exactly tiktoken's tokens, in O(n log n) time on long pieces.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "vocab.h"

/// Appends to *ids the ranks tiktoken gives the non-empty `piece`: its own
/// rank if the whole piece is a token; otherwise, starting from single bytes,
/// the result of repeatedly merging the adjacent pair whose concatenation has
/// the lowest rank (the leftmost such pair on ties) until no adjacent pair
/// forms a token.
void BytePairEncode(const Vocab& vocab, std::string_view piece,
                    std::vector<uint32_t>* ids);
