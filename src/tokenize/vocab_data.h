// The tiktoken rank files, embedded in the binary at build time by
// vocab_data.S from the files scripts/fetch-vocab verified.
#pragma once

#include <string_view>

extern "C" const char embedpipe_cl100k_base_tiktoken[];
extern "C" const char embedpipe_cl100k_base_tiktoken_end[];
extern "C" const char embedpipe_o200k_base_tiktoken[];
extern "C" const char embedpipe_o200k_base_tiktoken_end[];

/// cl100k_base.tiktoken, as pinned by sha256 in scripts/fetch-vocab.
inline std::string_view EmbeddedCl100kBaseRanks() {
  return std::string_view(
      embedpipe_cl100k_base_tiktoken,
      embedpipe_cl100k_base_tiktoken_end - embedpipe_cl100k_base_tiktoken);
}

/// o200k_base.tiktoken, as pinned by sha256 in scripts/fetch-vocab.
inline std::string_view EmbeddedO200kBaseRanks() {
  return std::string_view(
      embedpipe_o200k_base_tiktoken,
      embedpipe_o200k_base_tiktoken_end - embedpipe_o200k_base_tiktoken);
}
