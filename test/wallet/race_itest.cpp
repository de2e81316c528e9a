// The race of the issue: 200 concurrent withdrawals for one user whose balance covers exactly 100.
// Exactly 100 succeed, the balance ends at exactly 0, and each success has exactly one outbox
// row whose payload parses back to that withdrawal.

#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "wallet_process.hpp"

using json = nlohmann::json;

TEST_CASE("200 concurrent withdrawals against a balance for 100: exactly 100 succeed", "[wallet][race]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  const std::int64_t user = 77;
  // 0.01 is not exact in binary floating point: a float anywhere on the path would show here.
  {
    auto client = wallet.client();
    REQUIRE(client.post_json("/v1/accounts/77/deposits", R"({"amount": "1.00"})").status == 200);
    // Another user's money must not move.
    REQUIRE(client.post_json("/v1/accounts/78/deposits", R"({"amount": "5"})").status == 200);
  }

  constexpr int requests = 200;
  struct answer {
    unsigned status = 0;
    std::string body;
    std::string to_address;
  };
  std::vector<answer> answers(requests);
  std::vector<std::thread> threads;
  threads.reserve(requests);
  for (int i = 0; i < requests; ++i) {
    threads.emplace_back([&, i] {
      auto& a = answers[static_cast<std::size_t>(i)];
      // A distinct lower-case destination per request, so each payload can be matched to its request.
      a.to_address = fmt::format("0x{:040x}", i + 1);
      try {
        auto client = wallet.client();
        const auto res = client.post_json(
            "/v1/withdrawals",
            json{{"user_id", user}, {"to_address", a.to_address}, {"amount", "0.01"}, {"chain", "eth"}}.dump());
        a.status = res.status;
        a.body = res.body;
      } catch (const std::exception& e) {
        a.body = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();

  std::map<std::int64_t, std::string> created;  // withdrawal id -> to_address
  int refused = 0;
  for (const auto& a : answers) {
    INFO(a.status << " " << a.body);
    if (a.status == 201) {
      created.emplace(json::parse(a.body).at("withdrawal_id").get<std::int64_t>(), a.to_address);
    } else {
      REQUIRE(a.status == 409);
      CHECK(json::parse(a.body)["error"]["code"] == "insufficient_balance");
      ++refused;
    }
  }
  CHECK(created.size() == 100);
  CHECK(refused == 100);
  CHECK(wallet_test::balance_of(schema, user) == "0.000000000000000000");
  CHECK(wallet_test::balance_of(schema, 78) == "5.000000000000000000");

  auto connection = schema.connect();
  pqxx::nontransaction tx(connection);
  CHECK(tx.exec1("SELECT count(*) FROM withdrawals WHERE user_id = 77 AND status = 'pending' AND amount = 0.01")[0]
            .as<long>() == 100);
  const auto rows = tx.exec("SELECT topic, key, convert_from(payload, 'UTF8') FROM outbox_messages ORDER BY id");
  REQUIRE(rows.size() == 100);
  std::set<std::int64_t> seen;
  for (const auto& row : rows) {
    CHECK(row[0].as<std::string>() == "wallet_events_withdrawal");
    CHECK(row[1].as<std::string>() == "77");
    const auto payload = json::parse(row[2].as<std::string>());
    const auto id = payload.at("withdrawal_id").get<std::int64_t>();
    INFO(payload.dump());
    REQUIRE(created.contains(id));
    CHECK(seen.insert(id).second);  // one row per withdrawal
    CHECK(payload == json{{"withdrawal_id", id},
                          {"user_id", user},
                          {"to_address", created.at(id)},
                          {"amount", "0.01"},
                          {"chain", "eth"}});
  }
  // Each outbox row matches its withdrawal row in the database too.
  CHECK(tx.exec1("SELECT count(*) FROM outbox_messages o JOIN withdrawals w "
                 "ON w.id = (convert_from(o.payload, 'UTF8')::jsonb->>'withdrawal_id')::bigint "
                 "AND w.to_address = convert_from(o.payload, 'UTF8')::jsonb->>'to_address' "
                 "AND w.amount = (convert_from(o.payload, 'UTF8')::jsonb->>'amount')::numeric")[0]
            .as<long>() == 100);
}
