#include "app/pipeline.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>

#include <doctest/doctest.h>
#include <fmt/core.h>

#include "app/diag.h"
#include "app/exit_status.h"
#include "test_util.h"

namespace {

// Input that is always readable (a regular file) and servers slower than
// it: while the pipeline is reading, a wait only finds the input ready;
// requests are answered once it stops reading (its window is full, or the
// input has ended). So every request the pipeline can have in flight at
// once is in flight before the first answer.
class SlowServers : public FakeTransport {
 public:
  using FakeTransport::FakeTransport;
  void Wait(int timeout_ms, int watch_fd, bool* fd_ready) override {
    if (watch_fd >= 0) {
      input_fd_ = watch_fd;
      *fd_ready = true;
      return;
    }
    if (read_ahead < 0 && input_fd_ >= 0)
      read_ahead = lseek(input_fd_, 0, SEEK_CUR);
    FakeTransport::Wait(timeout_ms, watch_fd, fd_ready);
  }

  /// How far into the input the pipeline had read when it first stopped
  /// reading; -1 if it never did.
  off_t read_ahead = -1;

 private:
  int input_fd_ = -1;
};

// `lines` records of about 4 KB each, every text distinct: a read(2) of the
// input takes a few dozen of them, well short of the pipeline's window.
void WriteInput(const std::string& path, int lines) {
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < lines; ++i) {
    std::string text = fmt::format("record {}:", i);
    while (text.size() < 4000) text += " word";
    out << fmt::format(R"({{"id":"r{}","text":"{}"}})", i, text) << '\n';
  }
}

size_t CountLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

struct PoolRun {
  // Runs `lines` records with -j `concurrency` over `urls`, in batches of
  // at most 50 records and `batch_tokens` tokens.
  PoolRun(std::vector<std::string> urls, int concurrency, int lines,
          int batch_tokens = 300000)
      : transport(&clock, Embed) {
    WriteInput(dir.File("in.jsonl"), lines);
    options.inputs = {dir.File("in.jsonl")};
    options.base_url = urls.front();
    options.endpoints = urls;
    options.concurrency = concurrency;
    options.batch_inputs = 50;
    options.batch_tokens = batch_tokens;
    options.encoding = "float";
    // Limits given: every slot is open from the first request, as in a run
    // past its first answers, whose read-ahead these tests are about.
    options.rpm = 1000000;
    options.tpm = 10000000000;
    int out = open(dir.File("out.jsonl").c_str(),
                   O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(out >= 0);
    diag::SetQuiet(true);  // the summary is not under test here
    status = RunPipeline(options, "key", &transport, &clock, out,
                         ProgressMode::kNone);
    diag::SetQuiet(false);
    close(out);
  }

  TempDir dir;
  FakeClock clock;
  SlowServers transport;
  Options options;
  int status = -1;
};

}  // namespace

TEST_CASE("RunPipeline reads far enough ahead to fill -j slots on every endpoint") {
  PoolRun run({"http://127.0.0.1:1/v1", "http://127.0.0.2:1/v1",
               "http://127.0.0.3:1/v1", "http://127.0.0.4:1/v1"},
              2, 500);
  CHECK(run.status == kExitSuccess);
  CHECK(CountLines(run.dir.File("out.jsonl")) == 500);
  // The eight slots were filled with whole batches: no part-full batch went
  // early for want of window. (After the input ended, the last batches
  // were cut into the slots' shares.)
  REQUIRE(run.transport.sent.size() >= 8);
  for (size_t i = 0; i < 8; ++i) CHECK(Inputs(run.transport.sent[i]).size() == 50);
  CHECK(run.transport.max_active == 8);
}

TEST_CASE("RunPipeline reads no further ahead than two batches per slot") {
  // Each record is about 4 KB, which these options count as about 1,000
  // tokens, so a batch holds three. With both slots busy, reading stops
  // once four batches wait behind them: seven batches with the open one,
  // 21 records (85 KB), plus the rest of the read(2) (128 KB) that took the
  // last of them. The other limits (5 MiB a slot, and lines for two
  // batches per slot and two more: 300) let it read 1.3 MB.
  PoolRun run({"http://127.0.0.1:1/v1"}, 2, 500, 3300);
  CHECK(run.status == kExitSuccess);
  CHECK(CountLines(run.dir.File("out.jsonl")) == 500);
  REQUIRE(!run.transport.sent.empty());
  CHECK(Inputs(run.transport.sent[0]).size() == 3);
  CHECK(run.transport.max_active == 2);  // far enough to fill both slots
  CHECK(run.transport.read_ahead > 0);
  CHECK(run.transport.read_ahead <= 7 * 3 * 4100 + 128 * 1024);
}

TEST_CASE("RunPipeline builds each request for the endpoint it goes to") {
  // However each --base-url ends, each request goes to its endpoint's own
  // /embeddings: four batches (cut into shares for eight slots after the
  // input ends), on every endpoint, the least busy first.
  PoolRun run({"http://127.0.0.1:1/v1/", "http://127.0.0.2:1/v1",
               "http://127.0.0.3:1/x//", "http://127.0.0.4:1"},
              2, 200);
  CHECK(run.status == kExitSuccess);
  CHECK(CountLines(run.dir.File("out.jsonl")) == 200);
  std::map<std::string, int> per_url;
  for (const HttpRequest& request : run.transport.sent) ++per_url[request.url];
  std::string seen;
  for (const auto& [url, n] : per_url) seen += url + "\n";
  CHECK(seen ==
        "http://127.0.0.1:1/v1/embeddings\n"
        "http://127.0.0.2:1/v1/embeddings\n"
        "http://127.0.0.3:1/x/embeddings\n"
        "http://127.0.0.4:1/embeddings\n");
}
