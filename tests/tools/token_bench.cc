// build/token_bench: measures the tokenizer and gives its counts for
// comparison with tiktoken (scripts/bench-tokenizer). It reads JSONL records
// {"text":...} from FILE (or stdin) into memory, counts each record's tokens
// with ENCODING, and prints one count per line on stdout. On stderr it
// reports the one-time vocabulary load, then bytes, tokens, seconds, MB/s
// and tokens/s of the counting alone (no I/O, no JSON). Times are the
// thread's CPU time, so that other processes on a busy machine do not count.
//
//   token_bench cl100k_base|o200k_base [--encode|--normalize] [--repeat N]
//               [FILE]
// --encode times Encode (ids into a vector) instead of Count; --normalize
// times Normalize with the default NFC, the step before counting, and
// prints each normalized text's size in bytes instead; --repeat
// counts everything N times and reports the fastest pass, for a steadier
// figure on a busy machine.
// Exit 0; 2 on a usage, I/O or JSON error.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "input/normalizer.h"
#include "tokenize/tokenizer.h"

namespace {

double CpuSeconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9;
}

bool ReadTexts(std::istream& in, std::vector<std::string>* texts) {
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    if (!doc.IsObject() || !doc.HasMember("text") || !doc["text"].IsString()) {
      std::fprintf(stderr, "token_bench: line %zu: no \"text\" string\n",
                   number);
      return false;
    }
    texts->emplace_back(doc["text"].GetString(), doc["text"].GetStringLength());
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Encoding encoding;
  bool encode = false;
  bool normalize = false;
  int repeat = 1;
  const char* path = nullptr;
  int arg = 2;
  for (; arg < argc && argv[arg][0] == '-' && argv[arg][1] != 0; ++arg) {
    std::string_view option = argv[arg];
    if (option == "--encode") {
      encode = true;
    } else if (option == "--normalize") {
      normalize = true;
    } else if (option == "--repeat" && arg + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++arg]));
    } else {
      break;
    }
  }
  if (arg < argc) path = argv[arg++];
  if (argc < 2 || argc != arg || !EncodingByName(argv[1], &encoding)) {
    std::fprintf(stderr,
                 "usage: token_bench cl100k_base|o200k_base "
                 "[--encode|--normalize] [--repeat N] [FILE]\n");
    return 2;
  }

  std::vector<std::string> texts;
  bool read_ok;
  if (path) {
    std::ifstream file(path);
    if (!file) {
      std::fprintf(stderr, "token_bench: cannot open %s\n", path);
      return 2;
    }
    read_ok = ReadTexts(file, &texts);
  } else {
    read_ok = ReadTexts(std::cin, &texts);
  }
  if (!read_ok) return 2;

  double start = CpuSeconds();
  const Tokenizer& tokenizer = Tokenizer::Get(encoding);
  double load_seconds = CpuSeconds() - start;

  std::vector<size_t> counts(texts.size());
  std::vector<uint32_t> ids;
  std::string normalized, reason;
  size_t bytes = 0;
  size_t tokens = 0;
  double seconds = 0;
  for (int pass = 0; pass < repeat; ++pass) {
    bytes = tokens = 0;
    start = CpuSeconds();
    for (size_t i = 0; i < texts.size(); ++i) {
      if (normalize) {
        Normalize(texts[i], NormalizeConfig(), &normalized, &reason);
        counts[i] = normalized.size();
      } else if (encode) {
        ids.clear();
        tokenizer.Encode(texts[i], &ids);
        counts[i] = ids.size();
      } else {
        counts[i] = tokenizer.Count(texts[i]);
      }
      bytes += texts[i].size();
      tokens += counts[i];
    }
    double pass_seconds = CpuSeconds() - start;
    if (pass == 0 || pass_seconds < seconds) seconds = pass_seconds;
  }

  std::string out;
  for (size_t count : counts) out += std::to_string(count) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (normalize) {
    std::fprintf(stderr,
                 "token_bench: normalize: %zu records, %zu bytes in, %zu "
                 "out in %.3f s: %.1f MB/s\n",
                 texts.size(), bytes, tokens, seconds, bytes / seconds / 1e6);
    return 0;
  }
  std::fprintf(stderr,
               "token_bench: %s: vocabulary load %.1f ms; %zu records, %zu "
               "bytes, %zu tokens in %.3f s: %.1f MB/s, %.2f M tokens/s\n",
               argv[1], load_seconds * 1e3, texts.size(), bytes, tokens,
               seconds, bytes / seconds / 1e6, tokens / seconds / 1e6);
  return 0;
}
