#include <catch2/catch.hpp>

#include <chrono>

#include "common/logging.hpp"

TEST_CASE("repeated_warning: a new text at once, the same text once per interval, again after clear", "[logging]") {
  common::repeated_warning warning(std::chrono::hours(1));
  CHECK(warning.warn("node down"));
  CHECK_FALSE(warning.warn("node down"));  // every retry would flood the log
  CHECK(warning.warn("node refused"));     // a different failure is news
  CHECK_FALSE(warning.warn("node refused"));
  CHECK(warning.clear());  // recovered: the caller logs it
  CHECK_FALSE(warning.clear());
  CHECK(warning.warn("node refused"));  // failing again after a recovery is news too

  common::repeated_warning every_time(std::chrono::seconds(0));
  CHECK(every_time.warn("x"));
  CHECK(every_time.warn("x"));
}
