// build/float_bench: measures the text writers' float formatting. It draws
// vectors like embeddings (each of D dims a normalized Gaussian vector, so
// values are about N(0, 1/sqrt(D))) from a fixed seed, then formats N floats
// through AppendVectorText in JSON style, one vector after another into a
// string emptied per vector, and reports ns per float and bytes per float.
// Times are the thread's CPU time, so that other processes on a busy machine
// do not count.
//
//   float_bench [--floats N] [--dims D] [--repeat R]
// Defaults: 20,000,000 floats, 1536 dims, 3 passes; the fastest pass counts.
// Exit 0; 2 on a usage error.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "output/record_writer.h"

namespace {

double CpuSeconds() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9;
}

// `count` vectors of `dims` floats, each of unit length.
std::vector<float> RandomVectors(size_t count, size_t dims) {
  std::mt19937_64 random(42);
  std::normal_distribution<double> normal;
  std::vector<float> values(count * dims);
  std::vector<double> v(dims);
  for (size_t i = 0; i < count; ++i) {
    double squares = 0;
    for (double& x : v) {
      x = normal(random);
      squares += x * x;
    }
    double norm = std::sqrt(squares);
    for (size_t d = 0; d < dims; ++d)
      values[i * dims + d] = static_cast<float>(v[d] / norm);
  }
  return values;
}

}  // namespace

int main(int argc, char** argv) {
  size_t floats = 20000000;
  size_t dims = 1536;
  int repeat = 3;
  for (int arg = 1; arg < argc; ++arg) {
    std::string_view option = argv[arg];
    bool has_value = arg + 1 < argc;
    if (option == "--floats" && has_value) {
      floats = std::strtoull(argv[++arg], nullptr, 10);
    } else if (option == "--dims" && has_value) {
      dims = std::strtoull(argv[++arg], nullptr, 10);
    } else if (option == "--repeat" && has_value) {
      repeat = std::max(1, std::atoi(argv[++arg]));
    } else {
      std::fprintf(stderr,
                   "usage: float_bench [--floats N] [--dims D] [--repeat R]\n");
      return 2;
    }
  }
  if (dims == 0 || floats < dims) {
    std::fprintf(stderr,
                 "float_bench: need --dims >= 1 and --floats >= dims\n");
    return 2;
  }

  size_t count = floats / dims;
  std::vector<float> values = RandomVectors(count, dims);
  std::string out;
  size_t bytes = 0;
  double seconds = 0;
  for (int pass = 0; pass < repeat; ++pass) {
    bytes = 0;
    double start = CpuSeconds();
    for (size_t i = 0; i < count; ++i) {
      out.clear();
      AppendVectorText(VectorStyle::kJson, &values[i * dims], dims, &out);
      bytes += out.size();
    }
    double pass_seconds = CpuSeconds() - start;
    if (pass == 0 || pass_seconds < seconds) seconds = pass_seconds;
  }
  double n = static_cast<double>(count * dims);
  std::printf(
      "float_bench: %zu vectors x %zu dims = %zu floats; fastest of %d "
      "passes %.3f s: %.2f ns/float, %.2f bytes/float\n",
      count, dims, count * dims, repeat, seconds, seconds * 1e9 / n, bytes / n);
  return 0;
}
