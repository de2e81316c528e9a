// wallet-service over HTTP against the real PostgreSQL: the withdrawal transaction, its outbox
// event, the read routes, and every refused input leaving the database untouched.

#include <catch2/catch.hpp>

#include <regex>

#include <nlohmann/json.hpp>

#include "wallet_process.hpp"

using json = nlohmann::json;
using test_support::http_response;
using wallet_test::read_state;

namespace {

using wallet_test::address;
using wallet_test::withdrawal;

constexpr const char* traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

void deposit(test_support::http_client& client, std::int64_t user_id, const std::string& amount) {
  const auto res =
      client.post_json("/v1/accounts/" + std::to_string(user_id) + "/deposits", json{{"amount", amount}}.dump());
  REQUIRE(res.status == 200);
}

std::string error_code(const http_response& res) {
  INFO(res.body);
  const auto body = json::parse(res.body);
  REQUIRE(body.contains("error"));
  REQUIRE(body["error"]["message"].get<std::string>().size() > 10);
  return body["error"]["code"].get<std::string>();
}

}  // namespace

TEST_CASE("a withdrawal debits, records and writes its outbox event in one transaction", "[wallet][api]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  auto client = wallet.client();

  deposit(client, 42, "10");
  const auto created = client.post_json("/v1/withdrawals", withdrawal(42, "1.250"), {{"traceparent", traceparent}});
  INFO(created.body);
  REQUIRE(created.status == 201);
  const auto body = json::parse(created.body);
  const auto id = body.at("withdrawal_id").get<std::int64_t>();
  CHECK(body.at("status") == "pending");
  CHECK(created.header("location") == "/v1/withdrawals/" + std::to_string(id));
  CHECK(wallet_test::balance_of(schema, 42) == "8.750000000000000000");

  auto connection = schema.connect();
  pqxx::nontransaction tx(connection);
  const auto row = tx.exec1(
      "SELECT user_id, chain, to_address, amount::text, status, idempotency_key IS NULL "
      "FROM withdrawals");
  CHECK(row[0].as<std::int64_t>() == 42);
  CHECK(row[1].as<std::string>() == "eth");
  CHECK(row[2].as<std::string>() == address);
  CHECK(row[3].as<std::string>() == "1.250000000000000000");
  CHECK(row[4].as<std::string>() == "pending");
  CHECK(row[5].as<bool>());

  const auto outbox = tx.exec("SELECT topic, key, convert_from(payload, 'UTF8'), headers::text FROM outbox_messages");
  REQUIRE(outbox.size() == 1);
  CHECK(outbox[0][0].as<std::string>() == "wallet_events_withdrawal");
  CHECK(outbox[0][1].as<std::string>() == "42");
  // The seed's WithdrawalCreatedEvent, exactly these fields, amount canonical.
  const auto payload = json::parse(outbox[0][2].as<std::string>());
  CHECK(payload ==
        json{{"withdrawal_id", id}, {"user_id", 42}, {"to_address", address}, {"amount", "1.25"}, {"chain", "eth"}});
  CHECK(outbox[0][2].as<std::string>().rfind(R"({"withdrawal_id":)", 0) == 0);
  const auto headers = json::parse(outbox[0][3].as<std::string>());
  CHECK(headers.at("event-type") == "WithdrawalCreated");
  CHECK(std::regex_match(headers.at("event-id").get<std::string>(),
                         std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  CHECK(std::regex_match(headers.at("created-at").get<std::string>(),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
  CHECK(headers.at("traceparent") == traceparent);
  CHECK(headers.size() == 4);

  // A second one without (or with an invalid) traceparent: no traceparent header, its own event id.
  REQUIRE(client.post_json("/v1/withdrawals", withdrawal(42, "0.75"), {{"traceparent", "garbage"}}).status == 201);
  const auto second =
      json::parse(tx.exec1("SELECT headers::text FROM outbox_messages ORDER BY id DESC LIMIT 1")[0].as<std::string>());
  CHECK_FALSE(second.contains("traceparent"));
  CHECK(second.at("event-id") != headers.at("event-id"));
  CHECK(wallet_test::balance_of(schema, 42) == "8.000000000000000000");
}

TEST_CASE("GET routes show withdrawals and accounts", "[wallet][api]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  auto client = wallet.client();

  deposit(client, 7, "3.5");
  deposit(client, 7, "0.000000000000000001");
  const auto account = client.get("/v1/accounts/7");
  REQUIRE(account.status == 200);
  CHECK(json::parse(account.body).at("balance") == "3.500000000000000001");
  CHECK(json::parse(account.body).at("user_id") == 7);

  const auto created = client.post_json("/v1/withdrawals", withdrawal(7, "3.5"));
  REQUIRE(created.status == 201);
  const auto id = json::parse(created.body).at("withdrawal_id").get<std::int64_t>();
  const auto got = client.get("/v1/withdrawals/" + std::to_string(id));
  INFO(got.body);
  REQUIRE(got.status == 200);
  const auto w = json::parse(got.body);
  CHECK(w.at("withdrawal_id") == id);
  CHECK(w.at("user_id") == 7);
  CHECK(w.at("status") == "pending");
  CHECK(w.at("amount") == "3.5");
  CHECK(w.at("to_address") == address);
  CHECK(w.at("chain") == "eth");
  CHECK(w.at("tx_hash").is_null());
  CHECK(w.at("broadcast_at").is_null());
  CHECK(w.at("created_at").is_string());

  // Once the broadcaster recorded the broadcast, the hash shows.
  {
    auto connection = schema.connect();
    pqxx::nontransaction tx(connection);
    tx.exec_params0(
        "UPDATE withdrawals SET status = 'broadcast', from_address = $2, nonce = 0, tx_hash = $3, "
        "raw_tx = '\\x01', signed_at = now(), broadcast_at = now() WHERE id = $1",
        id, address, "0x" + std::string(64, 'a'));
  }
  const auto broadcast = json::parse(client.get("/v1/withdrawals/" + std::to_string(id)).body);
  CHECK(broadcast.at("status") == "broadcast");
  CHECK(broadcast.at("tx_hash") == "0x" + std::string(64, 'a'));
  CHECK(broadcast.at("broadcast_at").is_string());

  CHECK(json::parse(client.get("/v1/accounts/7").body).at("balance") == "0.000000000000000001");
  CHECK(error_code(client.get("/v1/withdrawals/999999")) == "not_found");
  CHECK(client.get("/v1/withdrawals/abc").status == 404);
  CHECK(error_code(client.get("/v1/accounts/8")) == "unknown_user");
  CHECK(client.get("/v1/accounts/8").status == 404);
}

TEST_CASE("every refused withdrawal leaves balances, withdrawals and outbox untouched", "[wallet][api]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  auto client = wallet.client();
  deposit(client, 42, "5");
  REQUIRE(client.post_json("/v1/withdrawals", withdrawal(42, "1")).status == 201);  // state to compare with
  const auto before = read_state(schema);

  struct bad_case {
    std::string name;
    std::string body;
    unsigned status;
    std::string code;
    std::map<std::string, std::string> headers = {};
  };
  const std::string good = withdrawal(42, "1");
  const std::vector<bad_case> cases = {
      {"malformed JSON", R"({"user_id": 42, "amount": )", 400, "invalid_json"},
      {"not an object", "[42]", 400, "invalid_json"},
      {"empty body", "", 400, "invalid_json"},
      {"duplicate field",
       R"({"user_id": 42, "user_id": 43, "to_address": ")" + std::string(address) +
           R"(", "amount": "1", "chain": "eth"})",
       400, "invalid_json"},
      {"missing field", R"({"user_id": 42, "to_address": ")" + std::string(address) + R"(", "chain": "eth"})", 400,
       "missing_field"},
      {"extra field",
       R"({"user_id": 42, "to_address": ")" + std::string(address) + R"(", "amount": "1", "chain": "eth", "fee": "0"})",
       400, "unknown_field"},
      {"user_id as string",
       R"({"user_id": "42", "to_address": ")" + std::string(address) + R"(", "amount": "1", "chain": "eth"})", 400,
       "invalid_type"},
      {"negative user_id", withdrawal(-42, "1"), 400, "invalid_type"},
      {"amount as number",
       R"({"user_id": 42, "to_address": ")" + std::string(address) + R"(", "amount": 1.25, "chain": "eth"})", 400,
       "invalid_type"},
      {"zero amount", withdrawal(42, "0"), 400, "invalid_amount"},
      {"zero amount with decimals", withdrawal(42, "0.000"), 400, "invalid_amount"},
      {"negative amount", withdrawal(42, "-1"), 400, "invalid_amount"},
      {"exponent", withdrawal(42, "1e1"), 400, "invalid_amount"},
      {"over-precise", withdrawal(42, "0.0000000000000000001"), 400, "invalid_amount"},
      {"over the chain maximum", withdrawal(42, "1000000.000000000000000001"), 400, "invalid_amount"},
      {"over 2^256 wei", withdrawal(42, std::string(70, '9')), 400, "invalid_amount"},
      {"unknown chain",
       R"({"user_id": 42, "to_address": ")" + std::string(address) + R"(", "amount": "1", "chain": "btc"})", 400,
       "unknown_chain"},
      {"short address", withdrawal(42, "1", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA"), 400, "invalid_address"},
      {"bad checksum", withdrawal(42, "1", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"), 400, "invalid_address"},
      {"zero address", withdrawal(42, "1", "0x0000000000000000000000000000000000000000"), 400, "invalid_address"},
      {"SQL in the address", withdrawal(42, "1", "0x'; DROP TABLE accounts; --"), 400, "invalid_address"},
      {"unknown user", withdrawal(4242, "1"), 404, "unknown_user"},
      {"insufficient balance", withdrawal(42, "4.000000000000000001"), 409, "insufficient_balance"},
      {"wrong content type", good, 415, "unsupported_media_type", {{"Content-Type", "text/plain"}}},
      {"form content type",
       good,
       415,
       "unsupported_media_type",
       {{"Content-Type", "application/x-www-form-urlencoded"}}},
      {"bad Idempotency-Key", good, 400, "invalid_idempotency_key", {{"Idempotency-Key", std::string(300, 'k')}}},
      {"body over 64 KiB", R"({"user_id": 42, "pad": ")" + std::string(70 * 1024, 'x') + "\"}", 413, "body_too_large"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto fresh = wallet.client();  // a 413 closes the connection
    const auto res = fresh.post_json("/v1/withdrawals", c.body, c.headers);
    INFO(res.body);
    CHECK(res.status == c.status);
    CHECK(error_code(res) == c.code);
    CHECK(read_state(schema) == before);
  }
}

TEST_CASE("routes, methods and deposits refuse what they do not serve", "[wallet][api]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  auto client = wallet.client();
  deposit(client, 1, "1");
  const auto before = read_state(schema);

  auto status_and_code = [&](const http_response& res) { return std::to_string(res.status) + " " + error_code(res); };
  CHECK(status_and_code(client.get("/v1/withdrawals")) == "405 method_not_allowed");
  CHECK(client.get("/v1/withdrawals").header("allow") == "POST");
  CHECK(status_and_code(client.request("DELETE", "/v1/withdrawals/1")) == "405 method_not_allowed");
  CHECK(status_and_code(client.get("/v1/nothing")) == "404 not_found");
  CHECK(status_and_code(client.get("/v1/withdrawals/")) == "404 not_found");
  CHECK(status_and_code(client.post_json("/v1/accounts/0/deposits", R"({"amount": "1"})")) == "404 not_found");
  CHECK(status_and_code(client.post_json("/v1/accounts/1/deposits", R"({"amount": "-1"})")) == "400 invalid_amount");
  CHECK(status_and_code(client.post_json("/v1/accounts/1/deposits", R"({"amount": 1})")) == "400 invalid_type");
  CHECK(status_and_code(client.post_json("/v1/accounts/1/deposits", R"({"amount": "1"})",
                                         {{"Content-Type", "text/plain"}})) == "415 unsupported_media_type");
  // 10^59 is a valid deposit (below 2^256 wei); the tenth would take the balance past what
  // numeric(78, 18) holds: refused, nothing truncated or rounded.
  const auto huge = json{{"amount", "1" + std::string(59, '0')}}.dump();
  for (int i = 0; i < 9; ++i) REQUIRE(client.post_json("/v1/accounts/2/deposits", huge).status == 200);
  const auto full = read_state(schema);
  CHECK(status_and_code(client.post_json("/v1/accounts/2/deposits", huge)) == "400 invalid_amount");
  CHECK(read_state(schema) == full);
  CHECK(wallet_test::balance_of(schema, 1) == "1.000000000000000000");
  CHECK(read_state(schema).withdrawals == before.withdrawals);
}
