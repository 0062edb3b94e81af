// build/sha256_bench: measures SHA-256 the way embedpipe spends it. "keys"
// makes the checkpoint key of N distinct texts of B bytes with KeyMaker (a
// copy of a state that has absorbed the run's settings, then the text), as
// a run does once per normalized text; "1 MiB" digests 1 MiB messages in one
// call. Each line gives MB/s of message bytes and the time per message.
// Times are the thread's CPU time, the fastest of R passes, so that other
// processes on a busy machine count little.
//
//   sha256_bench [--texts N] [--bytes B] [--repeat R]
// Defaults: 20000 texts of 2048 bytes, 5 passes. Exit 0; 2 on a usage error.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "journal/journal.h"
#include "journal/digest.h"

namespace {

double CpuSeconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9;
}

// Runs `pass` `repeat` times and returns the fastest, in seconds.
template <typename Pass>
double Fastest(int repeat, Pass pass) {
  double best = 0;
  for (int i = 0; i < repeat; ++i) {
    double start = CpuSeconds();
    pass();
    double seconds = CpuSeconds() - start;
    if (i == 0 || seconds < best) best = seconds;
  }
  return best;
}

void Report(const char* what, size_t messages, size_t bytes, double seconds) {
  std::printf("%-22s %8.1f MB/s  %10.0f ns/message\n", what,
              bytes / seconds / 1e6, seconds * 1e9 / messages);
}

}  // namespace

int main(int argc, char** argv) {
  size_t texts = 20000, bytes = 2048;
  int repeat = 5;
  bool usage_ok = argc % 2 == 1;  // Every flag takes a value.
  for (int i = 1; usage_ok && i < argc; i += 2) {
    std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--texts")
      texts = std::strtoul(value, nullptr, 10);
    else if (flag == "--bytes")
      bytes = std::strtoul(value, nullptr, 10);
    else if (flag == "--repeat")
      repeat = std::max(1, std::atoi(value));
    else
      usage_ok = false;
  }
  if (!usage_ok || texts == 0) {
    std::fprintf(stderr,
                 "usage: sha256_bench [--texts N] [--bytes B] [--repeat R]\n");
    return 2;
  }

  // The settings a run with the defaults hashes into every key (pipeline.cc).
  KeyMaker keys({{{"model", "text-embedding-3-small"},
                  {"dimensions", "native"},
                  {"overlong", "split"},
                  {"max_input_tokens", "8191"},
                  {"tokenizer", "cl100k_base"},
                  {"api", "openai-embeddings"}}});
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> printable(' ', '~');
  std::vector<std::string> corpus(texts, std::string(bytes, ' '));
  for (std::string& text : corpus)
    for (char& c : text) c = static_cast<char>(printable(rng));

  // Folding every digest into `sink`, printed at the end, keeps the
  // compiler from dropping the work.
  unsigned sink = 0;
  double seconds = Fastest(repeat, [&] {
    for (const std::string& text : corpus) sink += keys.Key(text)[0];
  });
  std::string what = "keys (" + std::to_string(bytes) + " B texts)";
  Report(what.c_str(), texts, texts * bytes, seconds);

  constexpr size_t kBig = 1 << 20, kBigMessages = 32;
  std::string big(kBig, ' ');
  for (char& c : big) c = static_cast<char>(printable(rng));
  seconds = Fastest(repeat, [&] {
    for (size_t i = 0; i < kBigMessages; ++i) {
      big[0] = static_cast<char>(i);
      sink += Sha256Of(big)[0];
    }
  });
  Report("1 MiB messages", kBigMessages, kBigMessages * kBig, seconds);
  std::printf("(check %u)\n", sink);
  return 0;
}
