// build/journal_bench: measures the checkpoint journal on a real file. It
// appends N records of D dims, syncing every B records (one sync per API
// response of B inputs, as the pipeline does), then closes, reopens (the
// index build at open: read, checksum and index every record), reads every
// vector back in random order, and compacts to half of the records. It also
// times KeyMaker over 1 KiB texts and prints the index memory per record.
// Times are wall-clock and include the page cache and fsync of DIR's disk.
//
//   journal_bench [--records N] [--dims D] [--batch B] [--dir DIR]
// Defaults: 100000 records, 1536 dims, batches of 2048, $TMPDIR or /tmp.
// Exit 0; 2 on a usage or journal error.

#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "journal/journal.h"

namespace {

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "journal_bench: %s\n", what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  size_t records = 100000, batch = 2048;
  uint32_t dims = 1536;
  const char* tmp = getenv("TMPDIR");
  std::string base = tmp && *tmp ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) return Fail("usage: journal_bench [--records N] [--dims D] [--batch B] [--dir DIR]");
    std::string value = argv[++i];
    if (arg == "--records") records = std::stoul(value);
    else if (arg == "--dims") dims = static_cast<uint32_t>(std::stoul(value));
    else if (arg == "--batch") batch = std::stoul(value);
    else if (arg == "--dir") base = value;
    else return Fail("unknown flag " + arg);
  }
  std::string dir = base + "/journal_bench_XXXXXX";
  if (!mkdtemp(dir.data())) return Fail("cannot create a directory in " + base);
  std::string path = dir + "/ckpt";
  JournalConfig config = {{{"provider", "openai"},
                           {"model", "text-embedding-3-small"},
                           {"dimensions", std::to_string(dims)}}};
  KeyMaker keys(config);

  // Keys of 1 KiB texts (SHA-256 throughput).
  std::string text(1024, 'x');
  std::vector<JournalKey> key_of(records);
  double t0 = Now();
  for (size_t i = 0; i < records; ++i) {
    std::memcpy(text.data(), &i, sizeof i);
    key_of[i] = keys.Key(text);
  }
  double t_keys = Now() - t0;

  std::vector<float> vector(dims);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (float& f : vector) f = uniform(rng);

  std::string notice, err;
  uint64_t bytes;
  double t_append;
  size_t syncs = 0;
  {
    t0 = Now();
    auto journal = Journal::Open(path, config, &notice, &err);
    if (!journal) return Fail(err);
    for (size_t i = 0; i < records; ++i) {
      vector[0] = static_cast<float>(i);
      if (!journal->Append(key_of[i], 100, vector.data(), dims, &err))
        return Fail(err);
      if ((i + 1) % batch == 0 || i + 1 == records) {
        if (!journal->Sync(&err)) return Fail(err);
        ++syncs;
      }
    }
    t_append = Now() - t0;
    bytes = journal->bytes();
  }

  t0 = Now();
  auto journal = Journal::Open(path, config, &notice, &err);
  double t_open = Now() - t0;
  if (!journal || journal->size() != records) return Fail("reopen: " + err);
  size_t open_index = journal->index_bytes();

  std::vector<size_t> order(records);
  for (size_t i = 0; i < records; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<float> out(dims);
  t0 = Now();
  for (size_t i : order) {
    uint32_t d, tokens;
    if (!journal->Find(key_of[i], &d, &tokens) ||
        !journal->Read(key_of[i], out.data(), &err) ||
        out[0] != static_cast<float>(i))
      return Fail("read back: " + err);
  }
  double t_read = Now() - t0;

  for (size_t i = 0; i < records; i += 2) journal->MarkUsed(key_of[i]);
  t0 = Now();
  if (!journal->Compact(&err)) return Fail(err);
  double t_compact = Now() - t0;
  uint64_t compacted = journal->bytes();
  journal.reset();
  std::filesystem::remove_all(dir);

  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  double mb = static_cast<double>(bytes) / 1e6;
  std::printf("records %zu x %u dims, syncs every %zu (%zu syncs), file %.1f MB\n",
              records, dims, batch, syncs, mb);
  std::printf("keys (1 KiB texts)   %8.3f s  %8.0f keys/s  %6.0f MB/s\n", t_keys,
              records / t_keys, records * 1024 / t_keys / 1e6);
  std::printf("append+sync          %8.3f s  %8.0f records/s  %6.0f MB/s\n",
              t_append, records / t_append, mb / t_append);
  std::printf("reopen (index build) %8.3f s  %8.0f records/s  %6.0f MB/s\n",
              t_open, records / t_open, mb / t_open);
  std::printf("read all, random     %8.3f s  %8.0f records/s\n", t_read,
              records / t_read);
  std::printf("compact to half      %8.3f s  -> %.1f MB\n", t_compact,
              static_cast<double>(compacted) / 1e6);
  std::printf("index at reopen      %zu bytes (%.1f B/record)\n", open_index,
              static_cast<double>(open_index) / records);
  std::printf("max RSS %ld MB\n", usage.ru_maxrss / 1024);
  return 0;
}
