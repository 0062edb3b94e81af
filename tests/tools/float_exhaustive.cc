// build/float_exhaustive: checks that AppendFloat and AppendVectorText print
// every float32 in a range of bit patterns exactly as fmt's "{}" does
// (fmt::format_to with FMT_COMPILE("{}")), as AppendFloat's contract says.
// Run it over the whole range after changing AppendFloat or upgrading fmt:
// about 5 minutes of CPU. Each pattern is compared alone through
// AppendFloat, and in runs of 1024 through AppendVectorText against fmt's
// texts joined by commas in [..].
//
//   float_exhaustive [FIRST LAST]
// FIRST and LAST are bit patterns (decimal, or hex with 0x), both included;
// the default is every pattern, 0 to 0xffffffff. Split the range to use
// more cores. Prints the first ten mismatches (a pattern through
// AppendFloat, or a run through AppendVectorText) and the count of
// patterns checked and of mismatches. Exit 0 when none; 1 on a mismatch;
// 2 on a usage error.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "output/record_writer.h"

namespace {

constexpr size_t kRun = 1024;
constexpr int kShown = 10;

bool ParseBits(const char* s, uint64_t* bits) {
  char* end;
  *bits = std::strtoull(s, &end, 0);
  return *s != 0 && *end == 0 && *bits <= 0xffffffff;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t first = 0;
  uint64_t last = 0xffffffff;
  if (argc != 1 && (argc != 3 || !ParseBits(argv[1], &first) ||
                    !ParseBits(argv[2], &last) || first > last)) {
    std::fprintf(stderr, "usage: float_exhaustive [FIRST LAST]\n");
    return 2;
  }

  uint64_t mismatches = 0;
  auto report = [&](const std::string& what, std::string_view fmt_text,
                    std::string_view our_text) {
    if (++mismatches > kShown) return;
    std::printf("mismatch: %s: fmt \"%.*s\", ours \"%.*s\"\n", what.c_str(),
                static_cast<int>(fmt_text.size()), fmt_text.data(),
                static_cast<int>(our_text.size()), our_text.data());
  };

  float run[kRun];
  std::string expected_run;
  std::string ours;
  std::string ours_run;
  for (uint64_t start = first; start <= last; start += kRun) {
    size_t count =
        static_cast<size_t>(std::min<uint64_t>(kRun, last - start + 1));
    expected_run.clear();
    expected_run.push_back('[');
    for (size_t i = 0; i < count; ++i) {
      uint32_t bits = static_cast<uint32_t>(start + i);
      run[i] = std::bit_cast<float>(bits);
      char expected[32];
      char* end = fmt::format_to(expected, FMT_COMPILE("{}"), run[i]);
      std::string_view expected_text(expected,
                                     static_cast<size_t>(end - expected));
      if (i) expected_run.push_back(',');
      expected_run.append(expected_text);
      ours.clear();
      AppendFloat(run[i], &ours);
      if (ours != expected_text)
        report(fmt::format("AppendFloat of 0x{:08x}", bits), expected_text,
               ours);
    }
    expected_run.push_back(']');
    ours_run.clear();
    AppendVectorText(VectorStyle::kJson, run, count, &ours_run);
    if (ours_run != expected_run) {
      // The whole run is too long to show: 40 bytes from where they differ.
      size_t at = static_cast<size_t>(
          std::mismatch(ours_run.begin(), ours_run.end(), expected_run.begin(),
                        expected_run.end())
              .first -
          ours_run.begin());
      report(fmt::format("AppendVectorText of 0x{:08x} to 0x{:08x}, at byte {}",
                         start, start + count - 1, at),
             std::string_view(expected_run).substr(at, 40),
             std::string_view(ours_run).substr(at, 40));
    }
  }
  std::printf("checked 0x%08llx to 0x%08llx (%llu patterns): %llu mismatches\n",
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(last),
              static_cast<unsigned long long>(last - first + 1),
              static_cast<unsigned long long>(mismatches));
  return mismatches == 0 ? 0 : 1;
}
