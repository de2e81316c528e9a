// outbox-relay against pieces of a system failing: a node of a 3-node Kafka cluster killed, a
// second one stopped, a topic that does not exist, PostgreSQL restarted (fast and kill -9), a
// replica promoted. Label `cluster`: needs `OUTBOX_KAFKA_NODES=3 OUTBOX_KAFKA_AUTO_CREATE=false
// scripts/services up` (scripts/test runs it after the single-node suites); the PostgreSQL tests
// run instances of their own through scripts/services (OUTBOX_PG_DIR, free ports).

#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <thread>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <pqxx/pqxx>

#include "common/kafka.hpp"
#include "relay_harness.hpp"
#include "wallet/wallet_process.hpp"

namespace {

using namespace std::chrono_literals;
using relay_itest::relay_process;
using test_support::wait_until;

int read_pid(const std::string& path) {
  std::ifstream in(path);
  int pid = 0;
  in >> pid;
  return pid;
}

// --- the Kafka cluster ---

void require_cluster() {
  const char* nodes = std::getenv("OUTBOX_KAFKA_NODES");
  if (nodes == nullptr || std::string(nodes) != "3") {
    FAIL(
        "the cluster suite needs the 3-node cluster: OUTBOX_KAFKA_NODES=3 OUTBOX_KAFKA_AUTO_CREATE=false "
        "scripts/services up, then eval \"$(scripts/services env)\" (scripts/test does it)");
  }
}

int node_pid(int node) {
  return read_pid(fmt::format("{}/kafka/node-{}/kafka.pid", test_support::require_env("OUTBOX_SERVICES_ROOT"), node));
}

// Partition -> leader node id of `topic`, from the cluster's metadata.
std::map<std::int32_t, std::int32_t> leaders(const std::string& topic) {
  common::kafka::kafka_config config;
  config.bootstrap_servers = test_support::require_env("KAFKA_BOOTSTRAP_SERVERS");
  auto client = common::kafka::make_producer(common::kafka::make_conf(config, {}));
  rd_kafka_topic_t* handle = rd_kafka_topic_new(client.get(), topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  const auto code = rd_kafka_metadata(client.get(), 0, handle, &metadata, 10000);
  rd_kafka_topic_destroy(handle);
  std::map<std::int32_t, std::int32_t> out;
  if (code != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  for (int t = 0; t < metadata->topic_cnt; ++t) {
    const auto& md = metadata->topics[t];
    if (md.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    for (int p = 0; p < md.partition_cnt; ++p) out[md.partitions[p].id] = md.partitions[p].leader;
  }
  rd_kafka_metadata_destroy(metadata);
  return out;
}

bool topic_exists(const std::string& topic) { return !leaders(topic).empty(); }

// Some relay_publish_blocked{topic="<topic>",...} sample of `relay` is 1.
bool publish_blocked(relay_process& relay, const std::string& topic) {
  const auto body = relay.http_get("/metrics").body;
  const auto label = fmt::format("topic=\"{}\"", topic);
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("relay_publish_blocked{", 0) == 0 && line.find(label) != std::string::npos &&
        line.substr(line.rfind(' ') + 1) == "1") {
      return true;
    }
  }
  return false;
}

// Starts every node that is not running when the test leaves, however it leaves.
struct cluster_restorer {
  ~cluster_restorer() {
    try {
      test_support::services("up", "kafka");
    } catch (const std::exception& e) {
      fmt::print(stderr, "relay_cluster_itest: could not restart the cluster: {}\n", e.what());
    }
  }
};

// --- PostgreSQL instances of the test's own ---

std::uint16_t free_port_pair() {
  for (std::uint16_t port = static_cast<std::uint16_t>(55600 + 2 * (getpid() % 150));; port += 2) {
    bool free = true;
    for (std::uint16_t p : {port, static_cast<std::uint16_t>(port + 1)}) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(p);
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) free = false;
      ::close(fd);
    }
    if (free) return port;
  }
}

// A primary (and with `replica`, a streaming replica on port + 1) run by scripts/services with
// their data under /tmp; stopped and deleted at destruction.
class own_postgres {
 public:
  explicit own_postgres(bool replica)
      : port_(free_port_pair()), dir_(fmt::format("/tmp/outbox-pg-{}-{}", getpid(), port_)), replica_(replica) {
    try {
      run("up postgres" + std::string(replica ? " postgres-replica" : ""));
    } catch (...) {
      clean_up();
      throw;
    }
  }
  ~own_postgres() { clean_up(); }
  own_postgres(const own_postgres&) = delete;
  own_postgres& operator=(const own_postgres&) = delete;

  /// `scripts/services <arguments>` for this instance; throws when it fails and `check`.
  void run(const std::string& arguments, bool check = true) const {
    const auto command =
        fmt::format("OUTBOX_PG_DIR={} OUTBOX_PG_PORT={} OUTBOX_PG_REPLICA={} \"{}\" {}", dir_ + "/pg", port_,
                    replica_ ? 1 : 0, test_support::require_env("OUTBOX_SERVICES_SCRIPT"), arguments);
    if (std::system(command.c_str()) != 0 && check) throw std::runtime_error("failed: " + command);
  }
  /// Starts the primary again after a crash: until the old backends have gone, it may refuse.
  void start_after_crash() const {
    for (int attempt = 0; attempt < 10; ++attempt) {
      const auto command = fmt::format("OUTBOX_PG_DIR={} OUTBOX_PG_PORT={} \"{}\" up postgres", dir_ + "/pg", port_,
                                       test_support::require_env("OUTBOX_SERVICES_SCRIPT"));
      if (std::system(command.c_str()) == 0) return;
      std::this_thread::sleep_for(1s);
    }
    throw std::runtime_error("postgres did not come back after kill -9");
  }
  int postmaster_pid() const { return read_pid(dir_ + "/pg/postgres.pid"); }
  void clean_up() const {
    run("reset postgres" + std::string(replica_ ? " postgres-replica" : ""), false);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::string url() const { return fmt::format("postgresql://outbox@127.0.0.1:{}/outbox", port_); }
  std::string replica_url() const { return fmt::format("postgresql://outbox@127.0.0.1:{}/outbox", port_ + 1); }
  /// Both nodes; libpq keeps the one that accepts writes.
  std::string failover_url() const {
    return fmt::format("postgresql://outbox@127.0.0.1:{},127.0.0.1:{}/outbox?target_session_attrs=read-write", port_,
                       port_ + 1);
  }

 private:
  std::uint16_t port_;
  std::string dir_;
  bool replica_;
};

}  // namespace

// Pins review finding #5: with auto-creation off, every row of a missing topic was counted as a
// rejection and dead-lettered within a minute.
TEST_CASE(
    "relay cluster: rows for a topic that does not exist are kept (blocked, no dead letters), other topics flow, "
    "and all arrive in order once it is created",
    "[relay][cluster][blocked-topic]") {
  require_cluster();
  const char* auto_create = std::getenv("OUTBOX_KAFKA_AUTO_CREATE");
  if (auto_create == nullptr || std::string(auto_create) != "false") {
    FAIL("needs a cluster with topic auto-creation off: OUTBOX_KAFKA_AUTO_CREATE=false scripts/services up kafka");
  }
  relay_itest::relay_setup t("relay_flowing", 6);
  const auto missing = test_support::unique_name("relay_missing");
  auto rows = relay_itest::insert_rows(t.db, missing, 100, "'k' || (i % 10)");
  const auto flowing = relay_itest::insert_rows(t.db, t.topic, 100, "'k' || (i % 10)", 101);

  // Old behaviour for comparison: 2 attempts 100 ms apart would dead-letter every row in seconds.
  relay_process relay(t.schema, {{"RELAY_OUTBOX_MAX_ATTEMPTS", "2"},
                                 {"RELAY_OUTBOX_RETRY_BACKOFF", "100ms"},
                                 {"RELAY_OUTBOX_DELIVERY_TIMEOUT", "5s"},
                                 {"RELAY_OUTBOX_BROKER_BACKOFF_MAX", "2s"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  const auto blocked_sample = [&] {
    const auto body = relay.http_get("/metrics").body;
    for (const auto* reason : {"unknown_topic", "unknown_topic_or_part"}) {
      const auto sample = fmt::format("relay_publish_blocked{{reason=\"{}\",topic=\"{}\"}}", reason, missing);
      if (test_support::metric_value(body, sample).value_or(0) == 1) return true;
    }
    return false;
  };
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(t.db) == 100; }, 60s, 100ms));  // the other topic went
  REQUIRE(wait_until(blocked_sample, 60s, 200ms));
  CHECK(relay.http_get("/healthz").status == 503);
  std::this_thread::sleep_for(15s);  // many retry rounds
  CHECK(relay_itest::dead_letter_rows(t.db) == 0);
  CHECK(relay_itest::pending_rows(t.db) == 100);
  {
    pqxx::nontransaction tx(t.db);
    CHECK(tx.exec("SELECT 1 FROM outbox_messages WHERE attempts > 0").empty());  // no row was charged
  }
  CHECK_FALSE(topic_exists(missing));  // the relay did not create it either

  test_support::create_topic(missing, 6);
  REQUIRE(relay_itest::wait_drained(t.db, 90s));
  REQUIRE(wait_until([&] { return relay.http_get("/healthz").status == 200 && !blocked_sample(); }, 30s, 200ms));
  CHECK(relay.log_contains("accepts messages again"));
  relay_itest::stop_gracefully(relay);
  relay_itest::require_ordered_and_complete(missing, rows, "missing topic", 240s);
  relay_itest::require_ordered_and_complete(t.topic, flowing, "flowing topic", 240s);
}

// Pins: a leader failover losing or reordering acknowledged rows, and too few in-sync replicas
// (min.insync.replicas=2) dead-lettering rows instead of holding them.
TEST_CASE(
    "relay cluster: the leader SIGKILLed during a 100k-row drain loses nothing, a second node stopped blocks "
    "without dead letters, started again, everything drains in order",
    "[relay][cluster][failover]") {
  require_cluster();
  cluster_restorer restore;
  relay_itest::relay_setup t("relay_cluster", 6);
  REQUIRE(wait_until([&] { return leaders(t.topic).size() == 6; }, 30s, 200ms));
  auto rows = relay_itest::insert_rows(t.db, t.topic, 100000, "'k' || (i % 1000)");

  relay_process relay(t.schema, {{"RELAY_OUTBOX_BATCH_SIZE", "500"},
                                 {"RELAY_OUTBOX_MAX_ATTEMPTS", "2"},
                                 {"RELAY_OUTBOX_DELIVERY_TIMEOUT", "10s"},
                                 {"RELAY_OUTBOX_BROKER_BACKOFF_MAX", "2s"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  REQUIRE(wait_until([&] { return relay_itest::pending_rows(t.db) < 80000; }, 120s, 5ms));
  const auto leader = leaders(t.topic).at(0);
  const int leader_pid = node_pid(leader);
  REQUIRE(leader_pid > 0);
  REQUIRE(::kill(leader_pid, SIGKILL) == 0);
  const auto backlog_at_kill = relay_itest::pending_rows(t.db);
  REQUIRE(relay_itest::wait_drained(t.db, 240s));
  CHECK(relay_itest::dead_letter_rows(t.db) == 0);

  // A second node stopped: one replica left, below min.insync.replicas = 2.
  const int second = leader % 3 + 1;
  test_support::services("down", fmt::format("kafka-{}", second));
  const auto more = relay_itest::insert_rows(t.db, t.topic, 10000, "'k' || (i % 1000)", 100001);
  rows.insert(rows.end(), more.begin(), more.end());
  std::this_thread::sleep_for(30s);  // three delivery timeouts
  CHECK(relay_itest::dead_letter_rows(t.db) == 0);
  CHECK(relay_itest::pending_rows(t.db) > 0);
  CHECK(relay.http_get("/healthz").status == 503);
  CHECK(publish_blocked(relay, t.topic));
  {
    pqxx::nontransaction tx(t.db);
    CHECK(tx.exec("SELECT 1 FROM outbox_messages WHERE attempts > 0").empty());
  }

  test_support::services("up", "kafka");  // both nodes back
  REQUIRE(relay_itest::wait_drained(t.db, 240s));
  CHECK(relay_itest::dead_letter_rows(t.db) == 0);
  CHECK(wait_until([&] { return !publish_blocked(relay, t.topic) && relay.http_get("/healthz").status == 200; }, 30s,
                   200ms));
  relay_itest::stop_gracefully(relay);
  WARN("backlog when the leader (node " << leader << ") was SIGKILLed: " << backlog_at_kill);
  relay_itest::require_ordered_and_complete(t.topic, rows, "leader killed, then two nodes down", 240s);
}

// Pins: a database restart losing or reordering rows, or a relay that reports the database up
// while it is not (relay_database_up).
TEST_CASE("relay cluster: PostgreSQL fast restart and kill -9 of the postmaster mid-drain lose nothing and keep order",
          "[relay][cluster][postgres]") {
  require_cluster();
  own_postgres pg(false);
  test_support::test_schema schema(pg.url());
  auto db = schema.connect();
  const auto topic = test_support::unique_name("relay_pg_restart");
  test_support::create_topic(topic, 6);
  auto rows = relay_itest::insert_rows(db, topic, 100000, "'k' || (i % 1000)");

  relay_process relay(schema, {{"RELAY_OUTBOX_BATCH_SIZE", "500"}, {"RELAY_OUTBOX_BROKER_BACKOFF_MAX", "1s"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  const auto pending = [&] {
    auto c = schema.connect();
    return relay_itest::pending_rows(c);
  };
  const auto database_up = [&] { return relay_itest::relay_metric(relay, "relay_database_up").value_or(-1); };

  REQUIRE(wait_until([&] { return pending() < 75000; }, 120s, 5ms));
  pg.run("down postgres");  // fast shutdown (SIGINT)
  REQUIRE(wait_until([&] { return database_up() == 0; }, 30s, 100ms));
  pg.run("up postgres");
  REQUIRE(wait_until([&] { return database_up() == 1; }, 60s, 100ms));

  REQUIRE(wait_until([&] { return pending() < 40000; }, 120s, 5ms));
  REQUIRE(::kill(pg.postmaster_pid(), SIGKILL) == 0);
  REQUIRE(wait_until([&] { return database_up() == 0; }, 30s, 100ms));
  pg.start_after_crash();  // crash recovery
  REQUIRE(wait_until([&] { return database_up() == 1; }, 60s, 100ms));

  REQUIRE(wait_until([&] { return pending() == 0; }, 240s, 100ms));
  relay_itest::stop_gracefully(relay);
  CHECK(relay.log_contains("database recovered"));
  relay_itest::require_ordered_and_complete(topic, rows, "PostgreSQL restarts", 240s);
}

// Pins: a relay or a wallet that cannot follow a failover (single-host URL, or a session left on
// the old primary), or rows of the new primary lost or reordered.
TEST_CASE(
    "relay cluster: the replica promoted mid-drain (old primary stopped): the relay and the wallet follow the "
    "multi-host URL and every row the new primary holds is delivered, in order",
    "[relay][cluster][postgres][failover]") {
  require_cluster();
  own_postgres pg(true);
  test_support::test_schema schema(pg.failover_url());
  auto db = schema.connect();
  const auto topic = test_support::unique_name("relay_promote");
  test_support::create_topic(topic, 6);
  auto rows = relay_itest::insert_rows(db, topic, 100000, "'k' || (i % 1000)");
  // Asynchronous replication: the replica holds the rows once it replayed the insert.
  REQUIRE(wait_until(
      [&] {
        pqxx::connection replica(pg.replica_url());
        pqxx::nontransaction tx(replica);
        return tx.exec1("SELECT count(*) FROM " + tx.quote_name(schema.name()) + ".outbox_messages")[0].as<int>() ==
               100000;
      },
      60s, 200ms));

  // The wallet writes on the same multi-host URL (its events go to the wallet's topic, which the
  // cluster does not create by itself).
  test_support::create_topic("wallet_events_withdrawal", 6);
  wallet_test::wallet_process wallet(schema.url());
  auto api = wallet.client();
  const std::string payout =
      R"({"user_id":42,"to_address":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","amount":"1.5","chain":"eth"})";
  REQUIRE(api.post_json("/v1/accounts/42/deposits", R"({"amount":"10"})").status == 200);
  REQUIRE(api.post_json("/v1/withdrawals", payout, {{"Idempotency-Key", "before-failover"}}).status == 201);

  relay_process relay(schema, {{"RELAY_OUTBOX_BATCH_SIZE", "500"}, {"RELAY_OUTBOX_BROKER_BACKOFF_MAX", "1s"}});
  INFO("relay log: " << relay.log_path());
  REQUIRE(relay.wait_ready());
  const auto pending = [&] {
    auto c = schema.connect();
    return relay_itest::pending_rows(c);
  };
  REQUIRE(wait_until([&] { return pending() < 60000; }, 120s, 5ms));
  pg.run("down postgres");
  {
    pqxx::connection replica(pg.replica_url());
    pqxx::nontransaction tx(replica);
    REQUIRE(tx.exec1("SELECT pg_promote(true, 60)")[0].as<bool>());
  }
  // Writers go on against the new primary through the same URL.
  auto writer = schema.connect();
  const auto more = relay_itest::insert_rows(writer, topic, 10000, "'k' || (i % 1000)", 100001);
  rows.insert(rows.end(), more.begin(), more.end());
  // The wallet's pooled sessions to the old primary fail; it answers 503 (nothing written, or in
  // doubt: the same key then replays) until it reconnects to the new primary.
  REQUIRE(wait_until(
      [&] {
        const auto status = api.post_json("/v1/withdrawals", payout, {{"Idempotency-Key", "after-failover"}}).status;
        return status == 201 || status == 200;
      },
      60s, 200ms));
  {
    pqxx::nontransaction tx(writer);
    CHECK(tx.exec1("SELECT count(*) FROM withdrawals WHERE user_id = 42")[0].as<int>() == 2);
    CHECK(tx.exec1("SELECT balance::text FROM accounts WHERE user_id = 42")[0].as<std::string>() ==
          "7.000000000000000000");
  }

  REQUIRE(wait_until([&] { return pending() == 0; }, 240s, 100ms));
  CHECK(relay_itest::relay_metric(relay, "relay_database_up").value_or(-1) == 1);
  relay_itest::stop_gracefully(relay);
  relay_itest::require_ordered_and_complete(topic, rows, "replica promoted", 240s);
}
