#include "output/output_worker.h"

#include <pthread.h>
#include <signal.h>

#include <utility>

OutputWorker::OutputWorker(int fd, std::unique_ptr<RecordWriter> writer)
    : writer_(std::move(writer)), out_(fd) {
  // SIGINT and SIGTERM must interrupt the main thread's wait, so the thread
  // starts with every signal blocked and never takes one.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread_ = std::thread(&OutputWorker::Run, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  // Told apart from the main thread in top -H and perf.
  pthread_setname_np(thread_.native_handle(), "embedpipe-out");
}

OutputWorker::~OutputWorker() { Finish(); }

void OutputWorker::Add(std::shared_ptr<const void> owner, const Record* record,
                       const float* vector, size_t dims) {
  Item item;
  item.owner = std::move(owner);
  item.record = record;
  item.vector = vector;
  item.dims = dims;
  item.bytes = OutputBytes(*record, dims);
  pending_bytes_ += item.bytes;
  adding_.push_back(std::move(item));
}

void OutputWorker::AddText(std::string text) {
  if (text.empty()) return;
  Item item;
  item.bytes = text.size();
  item.text = std::move(text);
  pending_bytes_ += item.bytes;
  adding_.push_back(std::move(item));
}

void OutputWorker::Send() {
  if (adding_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    sent_.push_back(std::move(adding_));
  }
  adding_.clear();
  work_.notify_one();
}

void OutputWorker::WaitUntilPendingBelow(size_t limit) {
  Send();  // what is only added would never drain
  std::unique_lock<std::mutex> lock(mutex_);
  progress_.wait(lock, [&] { return pending_bytes_.load() < limit; });
}

void OutputWorker::Finish() {
  if (!thread_.joinable()) return;
  Send();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finishing_ = true;
  }
  work_.notify_one();
  thread_.join();
}

void OutputWorker::Run() {
  while (true) {
    std::vector<Item> chunk;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_.wait(lock, [&] { return finishing_ || !sent_.empty(); });
      if (sent_.empty()) break;  // finishing, and everything is written
      chunk = std::move(sent_.front());
      sent_.pop_front();
    }
    size_t done = 0;
    for (const Item& item : chunk) {
      // After a failed write the rest is only let go of.
      if (!failed_) Format(item);
      done += item.bytes;
    }
    chunk.clear();  // the owners, before they are counted as gone
    bool idle;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle = sent_.empty();
    }
    if (idle && !failed_ && !out_.Flush()) failed_ = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_bytes_ -= done;
    }
    progress_.notify_all();
  }
}

void OutputWorker::Format(const Item& item) {
  if (item.record)
    writer_->Write(*item.record, item.vector, item.dims, &out_.buffer());
  else
    out_.buffer() += item.text;
  if (!out_.MaybeFlush()) failed_ = true;
}
