#pragma once
// What the broadcaster_itest suites (broadcaster_itest.cpp, broadcaster_inputs_itest.cpp) share:
// one test's world and the checks they make on a schema. Not thread-safe.

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pqxx/pqxx>

#include "broadcaster_harness.hpp"

namespace broadcaster_itest {

// Workers that are killed come back within seconds; the group must not wait the default 45 s
// for the dead member's session to expire before handing its partitions to the new one.
inline const std::map<std::string, std::string> fast_group_env{
    {"BROADCASTER_KAFKA_PROPERTIES", "session.timeout.ms=6000;heartbeat.interval.ms=500"}};

// One test's world: schema, node, hot wallet, Kafka topic + DLQ + group.
struct test_bed {
  test_support::test_schema schema;
  pqxx::connection db;
  std::unique_ptr<broadcaster::eth_rpc> node;
  hot_wallet wallet;
  std::uint64_t first_nonce;
  std::string topic;
  std::string dlq;
  std::string group;

  test_bed(std::string_view name, int partitions, std::string_view funding_eth = "1")
      : db(schema.connect()),
        node(connect_node()),
        wallet(funded_hot_wallet(*node, to_wei(funding_eth))),
        first_nonce(node->get_transaction_count(wallet.address, "pending")),
        topic(test_support::unique_name(fmt::format("bcast_{}", name))),
        dlq(topic + "_dlq"),
        group(topic + "_group") {
    test_support::create_topic(topic, partitions);
    test_support::create_topic(dlq, 1);
  }

  worker_setup setup(std::map<std::string, std::string> extra_env = {}) const {
    return worker_setup{&schema, &wallet, topic, group, dlq, "kafka", std::move(extra_env)};
  }

  std::uint64_t mined_nonce() { return node->get_transaction_count(wallet.address, "latest"); }
};

// Distinct amounts, so a payment sent to the wrong recipient shows: 0.001001, 0.001002, ...
inline std::string amount_for(int i) { return fmt::format("0.00{:04}", 1000 + i); }

inline std::vector<std::int64_t> insert_withdrawals(pqxx::connection& db, int count, int users) {
  std::vector<std::int64_t> ids;
  for (int i = 1; i <= count; ++i) {
    ids.push_back(insert_pending_withdrawal(db, {1 + (i - 1) % users, random_address(), amount_for(i)}));
  }
  return ids;
}

inline std::size_t count_not_pending(pqxx::connection& db, const std::vector<std::int64_t>& ids) {
  pqxx::read_transaction tx(db);
  return tx
      .exec_params1("SELECT count(*) FROM withdrawals WHERE id = ANY($1::bigint[]) AND status <> 'pending'",
                    fmt::format("{{{}}}", fmt::join(ids, ",")))[0]
      .as<std::size_t>();
}

// Every account holds `initial` minus its withdrawals that did not fail: debited once each, and
// refunded only for failures.
inline bool balances_consistent(pqxx::connection& db, std::string_view initial) {
  pqxx::read_transaction tx(db);
  return tx
      .exec_params1(
          "SELECT bool_and(a.balance = $1::numeric - coalesce((SELECT sum(w.amount) FROM withdrawals w "
          "WHERE w.user_id = a.user_id AND w.status <> 'failed'), 0)) FROM accounts a",
          std::string(initial))[0]
      .as<bool>();
}

inline std::vector<std::int64_t> released_nonces(pqxx::connection& db, const chain::address& hot) {
  pqxx::read_transaction tx(db);
  std::vector<std::int64_t> out;
  for (const auto& r : tx.exec_params("SELECT nonce FROM hot_wallet_released_nonces WHERE lower(address) = $1 "
                                      "ORDER BY nonce",
                                      hot.to_lower_hex())) {
    out.push_back(r[0].as<std::int64_t>());
  }
  return out;
}

}  // namespace broadcaster_itest
