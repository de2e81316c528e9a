#include "common/backoff.hpp"

#include <algorithm>

namespace common {

backoff::backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(initial), max_(max), random_(std::random_device{}()) {}

std::chrono::milliseconds backoff::next() { return delay_for(attempt_++); }

std::chrono::milliseconds backoff::delay_for(unsigned attempt) {
  const auto shift = std::min(attempt, 30U);
  const auto ceiling = std::min<long long>(max_.count(), initial_.count() << shift);
  // Never below a tenth of the ceiling (and 1 ms), so a retry never spins.
  std::uniform_int_distribution<long long> pick(std::max(1LL, ceiling / 10), std::max(1LL, ceiling));
  return std::chrono::milliseconds(pick(random_));
}

}  // namespace common
