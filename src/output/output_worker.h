// Formats embedded records and writes them to the output on a thread of its
// own. In a client-bound run printing the floats is a third of the work; on
// this thread it runs beside the network loop instead of holding it up.
// Lines come out in the order they are added. The thread writes whenever it
// has nothing more waiting, so a streaming reader still gets each line as
// soon as it is released, and in large writes under load.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "input/record.h"
#include "output/output.h"
#include "output/record_writer.h"

class OutputWorker {
 public:
  /// Starts the thread, which writes to `fd` with `writer`. The writer is
  /// the thread's alone: RecordWriter keeps per-record scratch, so the
  /// caller's own writer (for Accepts) must be another instance.
  OutputWorker(int fd, std::unique_ptr<RecordWriter> writer);
  /// Finishes, if Finish() was not called.
  ~OutputWorker();
  OutputWorker(const OutputWorker&) = delete;
  OutputWorker& operator=(const OutputWorker&) = delete;

  /// Adds the line for `record` and its `dims` floats at `vector`; `owner`
  /// keeps both alive until the line is formatted.
  void Add(std::shared_ptr<const void> owner, const Record* record,
           const float* vector, size_t dims);
  /// Adds text to be written as it is.
  void AddText(std::string text);
  /// Hands what was added since the last call to the thread.
  void Send();

  /// Bytes added and not yet formatted (and written, if nothing more was
  /// waiting then): records' texts and vectors, which stay in memory until
  /// then, and plain text.
  size_t pending_bytes() const { return pending_bytes_.load(); }
  /// Sends, then waits while pending_bytes() is `limit` or more.
  void WaitUntilPendingBelow(size_t limit);

  /// Whether a write failed; from then on nothing more is written.
  bool failed() const { return failed_.load(); }

  /// Sends, waits until everything is written, and stops the thread. After
  /// it, broken_pipe() and error() say how writing ended.
  void Finish();
  /// The reader went away (EPIPE): a normal end of output.
  bool broken_pipe() const { return out_.broken_pipe(); }
  /// Why writing failed otherwise; empty if it did not.
  const std::string& error() const { return out_.error(); }

 private:
  struct Item {
    std::shared_ptr<const void> owner;
    const Record* record = nullptr;  ///< Null: `text` is written as it is.
    const float* vector = nullptr;
    size_t dims = 0;
    std::string text;
    size_t bytes = 0;  ///< What it adds to pending_bytes_.
  };
  void Run();
  void Format(const Item& item);

  std::unique_ptr<RecordWriter> writer_;
  FdOutput out_;  // The thread's only, until Finish() joins it.
  std::vector<Item> adding_;  // The caller's, until Send().

  std::mutex mutex_;
  std::condition_variable work_;      // For the thread: sent, or finishing.
  std::condition_variable progress_;  // For WaitUntilPendingBelow.
  std::deque<std::vector<Item>> sent_;
  bool finishing_ = false;
  std::atomic<size_t> pending_bytes_{0};
  std::atomic<bool> failed_{false};
  std::thread thread_;
};
