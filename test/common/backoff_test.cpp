#include <catch2/catch.hpp>

#include "common/backoff.hpp"

using namespace std::chrono_literals;

TEST_CASE("backoff grows, stays within its cap and never spins", "[backoff]") {
  common::backoff b(100ms, 2s);
  std::chrono::milliseconds largest{0};
  for (int i = 0; i < 50; ++i) {
    const auto d = b.next();
    CHECK(d >= 1ms);
    CHECK(d <= 2s);
    largest = std::max(largest, d);
  }
  // After many attempts the ceiling is the cap; a delay below a tenth of it would be a busy loop.
  for (int i = 0; i < 20; ++i) CHECK(b.next() >= 200ms);
  CHECK(largest > 100ms);
  b.reset();
  CHECK(b.attempt() == 0);
  CHECK(b.next() <= 100ms);
}
