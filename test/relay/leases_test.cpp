// Partition lease planning: fair shares, what to release, where to start acquiring, and that the
// planning converges to "every partition owned by exactly one live relay" as relays come and go.

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "common/backoff.hpp"
#include "relay/leases.hpp"
#include "relay/sql_arrays.hpp"
#include "relay/redis_publisher.hpp"
#include "relay/store.hpp"

namespace {

std::vector<std::int16_t> range(int from, int to) {
  std::vector<std::int16_t> out;
  for (int p = from; p < to; ++p) out.push_back(static_cast<std::int16_t>(p));
  return out;
}

}  // namespace

TEST_CASE("leases: the fair share is ceil(256 / live relays)", "[relay][leases]") {
  CHECK(relay::lease_target(0) == 256);
  CHECK(relay::lease_target(1) == 256);
  CHECK(relay::lease_target(2) == 128);
  CHECK(relay::lease_target(3) == 86);
  CHECK(relay::lease_target(7) == 37);
  CHECK(relay::lease_target(256) == 1);
  CHECK(relay::lease_target(1000) == 1);
}

TEST_CASE("leases: a relay above its share releases the surplus and acquires nothing", "[relay][leases]") {
  const auto plan = relay::plan_leases(range(0, 256), 2, 17);
  CHECK(plan.release == range(128, 256));
  CHECK(plan.wanted == 0);
  CHECK(plan.candidates.empty());
}

TEST_CASE("leases: a relay below its share tries the others from the start offset, wrapping", "[relay][leases]") {
  const std::vector<std::int16_t> owned = {0, 1, 251};
  const auto plan = relay::plan_leases(owned, 2, 250);
  CHECK(plan.release.empty());
  CHECK(plan.wanted == 125);
  REQUIRE(plan.candidates.size() == 253);
  CHECK(plan.candidates[0] == 250);
  CHECK(plan.candidates[1] == 252);  // 251 is owned
  CHECK(plan.candidates[5] == 2);    // 253, 254, 255, then wrap past 0 and 1
  const std::set<std::int16_t> unique(plan.candidates.begin(), plan.candidates.end());
  CHECK(unique.size() == plan.candidates.size());
  CHECK_FALSE(unique.contains(0));
  CHECK_FALSE(unique.contains(251));
}

TEST_CASE("leases: at the share exactly, nothing to do", "[relay][leases]") {
  const auto plan = relay::plan_leases(range(0, 86), 3, 0);
  CHECK(plan.release.empty());
  CHECK(plan.wanted == 0);
}

// Pins: partitions left without an owner (rows never published) or owned twice (order lost) after
// relays join and die.
TEST_CASE("leases: planning converges to one owner per partition as relays join and die", "[relay][leases]") {
  std::mt19937 random(12345);
  std::map<std::int16_t, int> lock_owner;          // the advisory lock table: partition -> relay
  std::map<int, std::vector<std::int16_t>> owned;  // relay -> partitions it believes it owns
  auto refresh = [&](int relay_id) {
    auto& mine = owned[relay_id];
    const auto start = std::uniform_int_distribution<std::size_t>(0, 255)(random);
    const auto plan = relay::plan_leases(mine, owned.size(), start);
    for (const auto p : plan.release) lock_owner.erase(p);
    mine.resize(mine.size() - plan.release.size());
    std::size_t got = 0;
    for (const auto p : plan.candidates) {
      if (got == plan.wanted) break;
      if (lock_owner.emplace(p, relay_id).second) {  // pg_try_advisory_lock
        mine.push_back(p);
        ++got;
      }
    }
    std::sort(mine.begin(), mine.end());
  };
  auto die = [&](int relay_id) {  // the session ends: its locks go with it
    for (auto it = lock_owner.begin(); it != lock_owner.end();)
      it = it->second == relay_id ? lock_owner.erase(it) : ++it;
    owned.erase(relay_id);
  };
  auto settle = [&] {
    for (int round = 0; round < 4; ++round) {
      for (auto& [id, mine] : owned) refresh(id);
    }
  };
  auto check_consistent = [&] {
    std::size_t total = 0;
    for (const auto& [id, mine] : owned) {
      INFO("relay " << id << " owns " << mine.size() << " with " << owned.size() << " live");
      CHECK(mine.size() <= relay::lease_target(owned.size()));
      CHECK_FALSE(mine.empty());  // nobody starves
      for (const auto p : mine) CHECK(lock_owner.at(p) == id);
      total += mine.size();
    }
    CHECK(total == 256);
    CHECK(lock_owner.size() == 256);
  };

  owned[1];
  settle();
  check_consistent();
  owned[2];
  owned[3];
  settle();
  check_consistent();
  die(2);
  settle();
  check_consistent();
  for (int id = 4; id < 10; ++id) owned[id];
  settle();
  check_consistent();
  die(1);
  die(5);
  die(9);
  settle();
  check_consistent();
}

TEST_CASE("store: array literals for the ANY($1) parameters", "[relay][store]") {
  const std::vector<std::int16_t> partitions = {3, 0, 255};
  CHECK(relay::array_literal(partitions) == "{3,0,255}");
  const std::vector<std::int64_t> ids = {9007199254740993, 1};
  CHECK(relay::array_literal(ids) == "{9007199254740993,1}");
  CHECK(relay::array_literal(std::span<const std::int64_t>()) == "{}");
  const std::vector<std::string> topics{"plain", "with\"quote", "back\\slash"};
  CHECK(relay::array_literal(topics) == R"({"plain","with\"quote","back\\slash"})");
}

TEST_CASE("row retry schedule: doubles per attempt from retry_backoff, capped, never zero", "[relay][backoff]") {
  using namespace std::chrono_literals;
  common::backoff schedule(1s, 60s);
  for (int i = 0; i < 20; ++i) {
    const auto first = schedule.delay_for(0);
    CHECK(first >= 100ms);
    CHECK(first <= 1s);
    const auto fourth = schedule.delay_for(3);
    CHECK(fourth >= 800ms);
    CHECK(fourth <= 8s);
    const auto late = schedule.delay_for(40);
    CHECK(late >= 6s);
    CHECK(late <= 60s);
  }
  CHECK(schedule.attempt() == 0);  // delay_for() keeps no state
}

// Pins: an ACL or a wrong-type key under the stream's name dead-letters every row of the stream.
TEST_CASE(
    "redis errors: passing server conditions fail the batch, stream-wide refusals block it, the rest reject "
    "the row",
    "[relay][redis]") {
  using relay::delivery_status;
  CHECK(relay::classify_redis_error("WRONGTYPE Operation against a key holding the wrong kind of value") ==
        delivery_status::blocked);
  CHECK(relay::classify_redis_error("NOPERM this user has no permissions to access the 'orders' key") ==
        delivery_status::blocked);
  CHECK(relay::classify_redis_error("ERR The ID specified in XADD is equal or smaller") == delivery_status::rejected);
  CHECK(relay::classify_redis_error("OOM command not allowed when used memory > 'maxmemory'.") ==
        delivery_status::failed);
  CHECK(relay::classify_redis_error("LOADING Redis is loading the dataset in memory") == delivery_status::failed);
  CHECK(relay::classify_redis_error("READONLY You can't write against a read only replica.") ==
        delivery_status::failed);
  CHECK(relay::classify_redis_error("MASTERDOWN Link with MASTER is down") == delivery_status::failed);
}
