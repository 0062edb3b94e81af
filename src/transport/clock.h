// The time source the scheduler and retry logic read, behind an interface so
// tests can move time by hand instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>

class Clock {
 public:
  virtual ~Clock() = default;
  /// Monotonic milliseconds; only differences mean anything.
  virtual int64_t NowMs() const = 0;
  /// Wall-clock seconds since the Unix epoch, for HTTP dates.
  virtual int64_t UnixSeconds() const = 0;
};

class SystemClock : public Clock {
 public:
  int64_t NowMs() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t UnixSeconds() const override {
    using namespace std::chrono;
    return duration_cast<seconds>(system_clock::now().time_since_epoch())
        .count();
  }
};
