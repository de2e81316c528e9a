// outbox-relay's partition leases under partial failures: one of a relay's two database sessions
// dies alone, or a relay freezes (SIGSTOP) past the freeze bound. Real relays, PostgreSQL, Kafka.

#include <csignal>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <pqxx/pqxx>

#include "relay_harness.hpp"

namespace {

using namespace std::chrono_literals;
using relay_itest::relay_process;
using test_support::wait_until;

std::string session_state(pqxx::connection& db, int pid) {
  pqxx::nontransaction tx(db);
  const auto r = tx.exec_params("SELECT state FROM pg_stat_activity WHERE pid = $1", pid);
  return r.empty() || r[0][0].is_null() ? std::string("gone") : r[0][0].as<std::string>();
}

// Relays A and B on `t`'s schema (batches of 500, the given lease and delivery timeouts), both
// ready and each holding its 128 of the 256 partitions before the test adds a backlog.
struct relay_pair {
  relay_process a;
  relay_process b;
};
relay_pair start_relay_pair(const relay_itest::relay_setup& t, const std::string& lease_timeout,
                            const std::string& delivery_timeout) {
  const std::map<std::string, std::string> env{{"RELAY_OUTBOX_BATCH_SIZE", "500"},
                                               {"RELAY_OUTBOX_LEASE_TIMEOUT", lease_timeout},
                                               {"RELAY_OUTBOX_DELIVERY_TIMEOUT", delivery_timeout}};
  relay_process a(t.schema, env);
  INFO("relay A log: " << a.log_path());
  REQUIRE(a.wait_ready());
  relay_process b(t.schema, env);
  INFO("relay B log: " << b.log_path());
  REQUIRE(b.wait_ready());
  REQUIRE(wait_until(
      [&] {
        return relay_itest::relay_metric(a, "relay_partitions_owned").value_or(0) == 128 &&
               relay_itest::relay_metric(b, "relay_partitions_owned").value_or(0) == 128;
      },
      30s, 100ms));
  return {std::move(a), std::move(b)};
}

}  // namespace

// Pins review finding #3: the pipelining claims session held row locks but no leases, so when only
// the main session died another relay took the partitions, skipped the locked rows and published
// later rows of their keys first. A is frozen while its claims session holds the claimed-ahead batch
// (the review's deterministic interleaving), so that B has every chance to take over meanwhile.
TEST_CASE(
    "relay leases: relay A's main backend terminated while its claims session holds a batch, first "
    "appearances stay in id order",
    "[relay][integration][leases]") {
  relay_itest::relay_setup t("relay_split_session", 6);
  // Bounds: A's claims session ends 2 x delivery_timeout + lease_timeout (13 s) after its last statement.
  auto [a, b] = start_relay_pair(t, "3s", "5s");
  INFO("relay A log: " << a.log_path());
  INFO("relay B log: " << b.log_path());
  const auto [a_main, a_claims] = relay_itest::relay_backends(a, t.db);
  REQUIRE(a_main != 0);
  REQUIRE(a_claims != 0);

  const auto rows = relay_itest::insert_rows(t.db, t.topic, 200000, "'k' || (i % 1000)");
  // The moment of the review's interleaving: a batch claimed ahead on the claims session.
  REQUIRE(wait_until([&] { return session_state(t.db, a_claims) == "idle in transaction"; }, 60s, 1ms));
  a.signal(SIGSTOP);
  {
    pqxx::nontransaction tx(t.db);
    CHECK(tx.exec_params1("SELECT pg_terminate_backend($1)", a_main)[0].as<bool>());
  }
  const auto backlog_at_kill = relay_itest::pending_rows(t.db);
  // B drains everything, A's partitions once A's claims session is gone (not before: its row locks
  // would be skipped).
  REQUIRE(relay_itest::wait_drained(t.db, 240s));
  CHECK(session_state(t.db, a_claims) == "gone");
  a.signal(SIGCONT);
  REQUIRE(wait_until([&] { return a.log_contains("database recovered"); }, 30s, 100ms));
  relay_itest::stop_gracefully(a);
  relay_itest::stop_gracefully(b);
  WARN("backlog when A's main backend was terminated: " << backlog_at_kill);
  relay_itest::require_ordered_and_complete(t.topic, rows, "main session terminated", 180s);
}

// Pins review finding #3's second half and issue item 1: a relay frozen outside (or inside) a
// transaction kept its partitions forever (session advisory locks never expire), and once woken it
// could still send a batch it no longer owned.
TEST_CASE(
    "relay leases: a relay SIGSTOPped past the freeze bound loses its partitions, the other drains them, and "
    "after SIGCONT no first appearance is out of order",
    "[relay][integration][leases][freeze]") {
  relay_itest::relay_setup t("relay_freeze", 6);
  // Freeze bound: lease_timeout (2 s) between batches, 2 x delivery_timeout + lease_timeout (8 s) with a
  // batch open.
  auto [a, b] = start_relay_pair(t, "2s", "3s");
  INFO("relay A log: " << a.log_path());
  INFO("relay B log: " << b.log_path());
  const auto [a_main, a_claims] = relay_itest::relay_backends(a, t.db);
  REQUIRE(a_main != 0);

  auto rows = relay_itest::insert_rows(t.db, t.topic, 100000, "'k' || (i % 1000)");
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(t.db) < 80000; }, 60s, 5ms));
  a.signal(SIGSTOP);
  const auto frozen_at = std::chrono::steady_clock::now();

  // The server ends A's sessions; B takes every partition and drains what A had.
  REQUIRE(wait_until([&] { return session_state(t.db, a_main) == "gone" && session_state(t.db, a_claims) == "gone"; },
                     30s, 100ms));
  const auto bound = std::chrono::duration<double>(std::chrono::steady_clock::now() - frozen_at).count();
  REQUIRE(wait_until([&] { return relay_itest::relay_metric(b, "relay_partitions_owned").value_or(0) == 256; }, 30s,
                     100ms));
  REQUIRE(relay_itest::wait_drained(t.db, 120s));

  // A wakes up: whatever it held is gone; it reconnects and shares the next rows.
  a.signal(SIGCONT);
  REQUIRE(wait_until([&] { return a.log_contains("database recovered"); }, 30s, 100ms));
  const auto more = relay_itest::insert_rows(t.db, t.topic, 20000, "'k' || (i % 1000)", 100001);
  rows.insert(rows.end(), more.begin(), more.end());
  REQUIRE(relay_itest::wait_drained(t.db, 120s));
  relay_itest::stop_gracefully(a);
  relay_itest::stop_gracefully(b);
  WARN(
      fmt::format("SIGSTOP: A's sessions ended {:.1f}s after the freeze (bound 2 s idle, 8 s in a batch, plus the "
                  "server's timeout check)",
                  bound));
  relay_itest::require_ordered_and_complete(t.topic, rows, "SIGSTOP past the bound", 180s);
}
