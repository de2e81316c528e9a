#include <catch2/catch.hpp>

#include <thread>

#include "broadcaster/health.hpp"

using namespace std::chrono_literals;

TEST_CASE("health: starting until ready, then problems only after their grace", "[health]") {
  broadcaster::health h;
  CHECK(h.problem(1h, 1h) == "starting");
  h.set_ready(true);
  h.beat("source");
  CHECK(h.problem(1h, 1h).empty());
  CHECK(h.alive(1h));

  h.set_problem("processing", "eth node down");
  CHECK(h.problem(1h, 1h).empty());                          // a short outage is not unhealthy yet
  CHECK(h.problem(1h, 0ms) == "processing: eth node down");  // past the grace it is
  h.clear_problem("processing");
  CHECK(h.problem(1h, 0ms).empty());
}

TEST_CASE("health: a loop that stops beating is reported and fails the watchdog check", "[health]") {
  broadcaster::health h;
  h.set_ready(true);
  h.beat("tracker");
  std::this_thread::sleep_for(20ms);
  CHECK_FALSE(h.alive(5ms));
  CHECK(h.problem(5ms, 1h).find("tracker loop silent") != std::string::npos);
  h.retire("tracker");
  CHECK(h.alive(5ms));
}
