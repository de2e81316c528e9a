// relay_bench modes on the database side: the backlog drain by real relays, ceiling (a) (the
// database alone) and the relay store's own claims (diagnostic).

#include <csignal>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "bench_support.hpp"
#include "relay/store.hpp"
#include "relay_bench.hpp"

namespace relay_bench {

using namespace std::chrono_literals;
using bench::proc_cpu_seconds;
using bench::proc_status_kib;
using bench::result;
using bench::seconds_since;
using bench::steady;
using bench::topic_size;

int drain(const options& o) {
  test_support::test_schema schema;
  auto db = schema.connect();
  const auto topic = test_support::unique_name("bench_drain");
  test_support::create_topic(topic, 6);
  fill_outbox(db, topic, o.rows);

  std::vector<std::unique_ptr<test_support::child_process>> relays;
  for (int i = 0; i < o.relays; ++i) relays.push_back(start_relay(schema, o.batch_size));
  for (auto& relay : relays) wait_ready(*relay);
  const auto start = steady::now();
  const auto deadline = start + 30min;
  std::int64_t peak_rss_kib = 0;
  for (;;) {
    const bool empty =
        pqxx::nontransaction(db).exec1("SELECT NOT EXISTS (SELECT 1 FROM outbox_messages)")[0].as<bool>();
    if (empty) break;
    for (auto& relay : relays) {
      if (!relay->running()) throw std::runtime_error("outbox-relay exited during the drain:\n" + relay->log());
      peak_rss_kib = std::max(peak_rss_kib, proc_status_kib(relay->pid(), "VmRSS"));
    }
    if (steady::now() > deadline) throw std::runtime_error("the drain did not finish within 30 minutes");
    std::this_thread::sleep_for(100ms);
  }
  const double elapsed = seconds_since(start);
  std::int64_t hwm_kib = 0;
  double cpu = 0;
  for (auto& relay : relays) {
    hwm_kib = std::max(hwm_kib, proc_status_kib(relay->pid(), "VmHWM"));
    cpu += proc_cpu_seconds(relay->pid());
  }
  for (auto& relay : relays) relay->signal(SIGTERM);
  for (auto& relay : relays) relay->wait(60s);
  const auto published = topic_size(topic);
  fmt::print(
      "# {} relay(s) drained {} rows in {:.2f}s: {:.0f} msgs/s; peak VmHWM {} KiB, relay CPU {:.1f}s; "
      "{} messages in the topic\n",
      o.relays, o.rows, elapsed, static_cast<double>(o.rows) / elapsed, hwm_kib, cpu, published);
  result("rows", o.rows);
  result("relays", static_cast<std::int64_t>(o.relays));
  result("seconds", elapsed);
  result("msgs_per_s", static_cast<double>(o.rows) / elapsed);
  result("vm_hwm_kib", hwm_kib);
  result("vm_rss_peak_kib", peak_rss_kib);
  result("relay_cpu_s", cpu);
  result("published", published);
  if (published < o.rows)
    throw std::runtime_error(fmt::format("only {} of {} rows reached the topic", published, o.rows));
  return 0;
}

// Ceiling (a): the database alone. One statement claims (SKIP LOCKED, in id order) and deletes a
// batch and returns its rows, one batch per transaction, run by pgbench on --clients connections
// (SKIP LOCKED shares the rows out) with the relay's session settings: no relay code, no broker.
int db_ceiling(const options& o) {
  test_support::test_schema schema;
  {
    auto db = schema.connect();
    fill_outbox(db, test_support::unique_name("bench_db"), o.rows);
  }
  const auto settings = relay::session_settings_for(bench_relay_config().outbox);
  const auto script = fmt::format("/tmp/{}.sql", test_support::unique_name("db_ceiling"));
  std::ofstream(script) << fmt::format(
      "WITH c AS (SELECT id FROM outbox_messages ORDER BY id LIMIT {} FOR UPDATE SKIP LOCKED)\n"
      "DELETE FROM outbox_messages o USING c WHERE o.id = c.id\n"
      "RETURNING o.id, o.topic, o.key, o.payload, o.headers::text, o.attempts, o.created_at;\n",
      o.batch_size);
  // Each client runs its share of the batches (one more at most: an empty claim at the end).
  const auto batches = (o.rows + o.batch_size - 1) / o.batch_size;
  const auto per_client = (batches + o.clients - 1) / o.clients;
  const auto clients = std::to_string(o.clients);
  const auto log = fmt::format("/tmp/{}.log", test_support::unique_name("db_ceiling"));
  const auto start = steady::now();
  test_support::child_process pgbench(
      "/usr/bin/pgbench",
      {"-n", "-M", "prepared", "-c", clients, "-j", clients, "-t", std::to_string(per_client), "-f", script,
       schema.url()},
      {{"PGOPTIONS", fmt::format("-c synchronous_commit={}", settings.synchronous_commit ? "on" : "off")}}, log);
  const auto code = pgbench.wait(30min);
  const double elapsed = seconds_since(start);
  std::remove(script.c_str());
  if (code != 0) throw std::runtime_error("pgbench failed:\n" + pgbench.log());
  auto db = schema.connect();
  const auto left = pqxx::nontransaction(db).exec1("SELECT count(*) FROM outbox_messages")[0].as<std::int64_t>();
  if (left != 0) throw std::runtime_error(fmt::format("pgbench left {} rows", left));
  fmt::print(
      "# database alone (pgbench, one statement per batch of {}, {} connection(s)): {} rows in {:.2f}s: {:.0f} "
      "rows/s\n",
      o.batch_size, o.clients, o.rows, elapsed, static_cast<double>(o.rows) / elapsed);
  result("clients", static_cast<std::int64_t>(o.clients));
  result("rows", o.rows);
  result("seconds", elapsed);
  result("msgs_per_s", static_cast<double>(o.rows) / elapsed);
  return 0;
}

int claim_ceiling(const options& o) {
  test_support::test_schema schema;
  auto db = schema.connect();
  fill_outbox(db, test_support::unique_name("bench_claim"), o.rows);
  {
    // Dead letters of other keys, as a system that has had some: the claim's dead_letter_blocks_key
    // probe then walks a real index instead of an empty table.
    pqxx::work tx(db);
    tx.exec0(
        "INSERT INTO outbox_dead_letters (id, topic, key, payload, headers, created_at, attempts, last_error) "
        "SELECT -i, 'bench', 'dead-' || i, '', '{}', now(), 5, 'bench' FROM generate_series(1, 1000) AS i");
    tx.commit();
  }
  auto settings = relay::session_settings_for(bench_relay_config().outbox);
  settings.idle_limit = 10min;  // the bench holds the store without keep-alives
  relay::store store(schema.database_config("relay-bench"), settings);
  std::vector<std::int16_t> all(256);
  for (std::size_t p = 0; p < all.size(); ++p) all[p] = static_cast<std::int16_t>(p);
  const auto owned = store.try_lock_partitions(all, all.size());
  if (owned.size() != all.size()) throw std::runtime_error("could not lease all 256 partitions");

  const auto start = steady::now();
  std::int64_t claimed = 0;
  std::int64_t batches = 0;
  steady::duration claiming{};
  for (;;) {
    const auto claim_started = steady::now();
    auto batch = store.claim(owned, static_cast<std::size_t>(o.batch_size));
    claiming += steady::now() - claim_started;
    if (batch.rows().empty()) {
      batch.commit();
      break;
    }
    claimed += static_cast<std::int64_t>(batch.rows().size());
    batch.commit();  // the claim deleted the rows (the relay's fast path)
    ++batches;
  }
  const double elapsed = seconds_since(start);
  const double claim_ms =
      std::chrono::duration<double, std::milli>(claiming).count() / std::max(1.0, static_cast<double>(batches));
  fmt::print(
      "# claim+delete ceiling: {} rows in {} batches of {} in {:.2f}s: {:.0f} rows/s; claim {:.2f} ms/batch "
      "(dead_letter_blocks_key {})\n",
      claimed, batches, o.batch_size, elapsed, static_cast<double>(claimed) / elapsed, claim_ms,
      settings.dead_letter_blocks_key);
  result("claim_ms_per_batch", claim_ms);
  result("rows", claimed);
  result("seconds", elapsed);
  result("msgs_per_s", static_cast<double>(claimed) / elapsed);
  return claimed == o.rows ? 0 : 1;
}

}  // namespace relay_bench
