// Byte pair encoding of one pre-tokenized piece against a Vocab, giving
// exactly tiktoken's tokens, in O(n log n) time on long pieces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tokenize/vocab.h"

/// Returns the number of tokens tiktoken gives the non-empty `piece`, and
/// appends their ranks to *ids unless `ids` is null (counting only): the
/// piece's own rank if the whole piece is a token; otherwise, starting from
/// single bytes, the result of repeatedly merging the adjacent pair whose
/// concatenation has the lowest rank (the leftmost such pair on ties) until
/// no adjacent pair forms a token.
size_t BytePairEncode(const Vocab& vocab, std::string_view piece,
                      std::vector<uint32_t>* ids);
