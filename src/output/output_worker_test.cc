#include "output/output_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/core.h>

#include "test_util.h"

namespace {

// Records and their vectors, kept alive by whoever holds the shared_ptr,
// as a batch's answer is.
struct Answer {
  std::vector<Record> records;
  std::vector<float> values;  // `dims` a record
  size_t dims = 2;
};

std::shared_ptr<Answer> MakeAnswer(int n, int first_id = 0) {
  auto answer = std::make_shared<Answer>();
  for (int i = 0; i < n; ++i) {
    Record r;
    r.id_json = std::to_string(first_id + i);
    r.text = "some text";
    answer->records.push_back(r);
    answer->values.push_back(static_cast<float>(first_id + i));
    answer->values.push_back(0.5f);
  }
  return answer;
}

void AddAll(const std::shared_ptr<Answer>& answer, OutputWorker* output) {
  for (size_t i = 0; i < answer->records.size(); ++i)
    output->Add(answer, &answer->records[i],
                answer->values.data() + i * answer->dims, answer->dims);
}

std::string Line(int id) {
  return fmt::format("{{\"id\":{},\"embedding\":[{},0.5]}}\n", id, id);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int OpenForWriting(const std::string& path) {
  return open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
}

}  // namespace

TEST_CASE("OutputWorker writes lines and text in the order added") {
  TempDir dir;
  int fd = OpenForWriting(dir.File("out"));
  REQUIRE(fd >= 0);
  // Enough lines for several of FdOutput's 256 KB writes, in many sends.
  // The worker alone keeps each answer alive once it is added, as the
  // pipeline lets go of a batch's answer once its records are released.
  std::vector<std::weak_ptr<Answer>> answers;
  std::string expected = "header\n";
  {
    OutputWorker output(fd, NewJsonlWriter());
    output.AddText("header\n");
    for (int batch = 0; batch < 100; ++batch) {
      auto answer = MakeAnswer(100, batch * 100);
      answers.push_back(answer);
      AddAll(answer, &output);
      for (int i = 0; i < 100; ++i) expected += Line(batch * 100 + i);
      if (batch % 3 == 0) output.Send();
    }
    output.AddText("trailer\n");
    output.AddText("");
    expected += "trailer\n";
    output.Finish();
    CHECK_FALSE(output.failed());
    CHECK_FALSE(output.broken_pipe());
    CHECK(output.error().empty());
    CHECK(output.pending_bytes() == 0);
  }
  close(fd);
  CHECK(ReadFile(dir.File("out")) == expected);
  // Each answer is let go of once its lines are written.
  for (const auto& answer : answers) CHECK(answer.expired());
}

TEST_CASE("OutputWorker writes what it was sent without waiting for more") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  OutputWorker output(fds[1], NewJsonlWriter());
  auto answer = MakeAnswer(1, 7);
  AddAll(answer, &output);
  output.Send();
  // The line arrives while the worker is still open; a worker that kept it
  // for a fuller write would time this poll out.
  pollfd p = {fds[0], POLLIN, 0};
  REQUIRE(poll(&p, 1, 10000) == 1);
  char buf[256];
  ssize_t n = read(fds[0], buf, sizeof buf);
  REQUIRE(n > 0);
  CHECK(std::string(buf, static_cast<size_t>(n)) == Line(7));
  output.Finish();
  close(fds[0]);
  close(fds[1]);
}

TEST_CASE("OutputWorker::WaitUntilPendingBelow sends and waits for the thread") {
  TempDir dir;
  int fd = OpenForWriting(dir.File("out"));
  REQUIRE(fd >= 0);
  OutputWorker output(fd, NewJsonlWriter());
  auto answer = MakeAnswer(3);
  AddAll(answer, &output);
  // The records' texts and vectors, as the pipeline's window counts them.
  CHECK(output.pending_bytes() == 3 * (9 + 2 * sizeof(float)));
  // Nothing was sent: the wait must send, or it would never end.
  output.WaitUntilPendingBelow(1);
  CHECK(output.pending_bytes() == 0);
  CHECK(answer.use_count() == 1);
  output.Finish();
  close(fd);
  CHECK(ReadFile(dir.File("out")) == Line(0) + Line(1) + Line(2));
}

TEST_CASE("OutputWorker: a reader that went away is a broken pipe") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  close(fds[0]);
  // The write raises SIGPIPE on the worker's thread, which blocks it, so
  // the test runner lives on and the write fails with EPIPE.
  OutputWorker output(fds[1], NewJsonlWriter());
  auto answer = MakeAnswer(2);
  AddAll(answer, &output);
  output.Finish();
  CHECK(output.failed());
  CHECK(output.broken_pipe());
  CHECK(output.error().empty());
  CHECK(answer.use_count() == 1);
  close(fds[1]);
}

TEST_CASE("OutputWorker: a failed write is an error, and the rest let go") {
  int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  OutputWorker output(fd, NewJsonlWriter());
  auto first = MakeAnswer(2);
  AddAll(first, &output);
  output.WaitUntilPendingBelow(1);  // written, and failed
  CHECK(output.failed());
  auto second = MakeAnswer(2, 2);
  AddAll(second, &output);
  output.Finish();
  CHECK_FALSE(output.broken_pipe());
  CHECK(output.error() == "No space left on device");
  CHECK(output.pending_bytes() == 0);
  CHECK(second.use_count() == 1);
  close(fd);
}

TEST_CASE("OutputWorker's thread takes no SIGINT or SIGTERM") {
  // The main loop's poll must be the one a signal interrupts. The thread is
  // found by its name; its blocked set is SigBlk in /proc, in hex.
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  OutputWorker output(fd, NewJsonlWriter());
  // Once the thread has written something it runs with its own mask (while
  // it starts, glibc holds every signal blocked).
  output.AddText("x\n");
  output.WaitUntilPendingBelow(1);
  std::string blocked;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name != "embedpipe-out") continue;
    std::ifstream status(task.path() / "status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("SigBlk:", 0) == 0) blocked = line.substr(7);
  }
  REQUIRE_FALSE(blocked.empty());
  unsigned long long mask = std::stoull(blocked, nullptr, 16);
  CHECK((mask >> (SIGINT - 1) & 1) == 1);
  CHECK((mask >> (SIGTERM - 1) & 1) == 1);
  CHECK((mask >> (SIGPIPE - 1) & 1) == 1);
  output.Finish();
  close(fd);
}
