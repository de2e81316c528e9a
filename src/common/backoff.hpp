#pragma once
// Capped exponential backoff with full jitter: the n-th delay is uniform in
// [0, min(max, initial * 2^n)]. Spreads retries of many processes hitting the same outage.
// Not thread-safe.

#include <chrono>
#include <random>

namespace common {

class backoff {
 public:
  backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  /// The delay before the next attempt; grows until reset().
  std::chrono::milliseconds next();
  /// The delay before attempt number `attempt` (0 = the first retry), without touching the state:
  /// for per-item schedules kept elsewhere (e.g. an outbox row's attempts column).
  std::chrono::milliseconds delay_for(unsigned attempt);
  void reset() noexcept { attempt_ = 0; }
  unsigned attempt() const noexcept { return attempt_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  unsigned attempt_ = 0;
  std::mt19937_64 random_;
};

}  // namespace common
