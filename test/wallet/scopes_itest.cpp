// Scoped tokens and mandatory Idempotency-Keys over HTTP (the gRPC side is in grpc_itest.cpp):
// a read token cannot move money (403 forbidden), created_by holds the token's name, a
// money-moving call without a key is refused where keys are required, and deposits honour keys.
// Tokens bound to accounts (users=), over HTTP and gRPC alike.

#include <catch2/catch.hpp>

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "grpc_client.hpp"
#include "wallet_process.hpp"

using json = nlohmann::json;

namespace {

using wallet_test::code_of;
using wallet_test::other_digest;
using wallet_test::s3cret_digest;
using wallet_test::withdrawal;

std::map<std::string, std::string> bearer(const std::string& token, const std::string& key = {}) {
  std::map<std::string, std::string> headers = {{"Authorization", "Bearer " + token}};
  if (!key.empty()) headers["Idempotency-Key"] = key;
  return headers;
}

}  // namespace

TEST_CASE("HTTP: a read token cannot move money, and created_by holds the token's name", "[wallet][auth]") {
  test_support::test_schema schema;
  const auto tokens = std::filesystem::temp_directory_path() / test_support::unique_name("scoped_tokens");
  std::ofstream(tokens) << s3cret_digest << " treasury withdraw,deposit,read\n"
                        << other_digest << " risk-engine read\n";
  wallet_test::wallet_process wallet(schema.url(), {{"WALLET_AUTH_TOKENS_FILE", tokens.string()},
                                                    {"WALLET_AUTH_DISABLED", "false"},
                                                    {"WALLET_API_REQUIRE_IDEMPOTENCY_KEY", "true"}});
  auto client = wallet.client();
  REQUIRE(client.post_json("/v1/accounts/3/deposits", R"({"amount": "2"})", bearer("s3cret-token", "dep-1")).status ==
          200);
  const auto before = wallet_test::read_state(schema);

  const auto denied = client.post_json("/v1/withdrawals", withdrawal(3, "1"), bearer("other-token", "w-1"));
  CHECK(denied.status == 403);
  CHECK(code_of(denied) == "forbidden");
  CHECK_THAT(denied.body, Catch::Contains("risk-engine"));
  CHECK(client.post_json("/v1/accounts/3/deposits", R"({"amount": "2"})", bearer("other-token", "dep-2")).status ==
        403);
  CHECK(client.get("/v1/accounts/3", bearer("other-token")).status == 200);

  // Money-moving calls need a key here (api.require_idempotency_key = true); reads do not.
  const auto no_key = client.post_json("/v1/withdrawals", withdrawal(3, "1"), bearer("s3cret-token"));
  CHECK(no_key.status == 400);
  CHECK(code_of(no_key) == "missing_idempotency_key");
  CHECK(code_of(client.post_json("/v1/accounts/3/deposits", R"({"amount": "2"})", bearer("s3cret-token"))) ==
        "missing_idempotency_key");
  CHECK(wallet_test::read_state(schema) == before);

  const auto created = client.post_json("/v1/withdrawals", withdrawal(3, "1"), bearer("s3cret-token", "w-1"));
  REQUIRE(created.status == 201);
  const auto id = json::parse(created.body).at("withdrawal_id").get<std::int64_t>();
  CHECK(client.get("/v1/withdrawals/" + std::to_string(id), bearer("other-token")).status == 200);

  auto connection = schema.connect();
  pqxx::nontransaction tx(connection);
  CHECK(tx.exec_params1("SELECT created_by FROM withdrawals WHERE id = $1", id)[0].as<std::string>() == "treasury");
  CHECK(tx.exec1("SELECT created_by FROM deposits")[0].as<std::string>() == "treasury");
  CHECK(wallet.process().log_contains(fmt::format("withdrawal {} created by treasury", id)));
}

TEST_CASE("HTTP: a retried deposit with its key credits once", "[wallet][idempotency]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  auto client = wallet.client();
  const std::map<std::string, std::string> key = {{"Idempotency-Key", "deposit-4-1"}};
  const auto first = client.post_json("/v1/accounts/4/deposits", R"({"amount": "2.5"})", key);
  REQUIRE(first.status == 200);
  CHECK(first.header("idempotent-replayed").empty());
  const auto again = client.post_json("/v1/accounts/4/deposits", R"({"amount": "2.50"})", key);
  CHECK(again.status == 200);
  CHECK(again.body == first.body);
  CHECK(again.header("idempotent-replayed") == "true");
  const auto reused = client.post_json("/v1/accounts/4/deposits", R"({"amount": "3"})", key);
  CHECK(reused.status == 409);
  CHECK(code_of(reused) == "idempotency_key_reused");
  // Without a key (allowed by the dev config) each call is a new deposit.
  REQUIRE(client.post_json("/v1/accounts/4/deposits", R"({"amount": "1"})").status == 200);
  CHECK(wallet_test::balance_of(schema, 4) == "3.500000000000000000");
  auto connection = schema.connect();
  pqxx::nontransaction tx(connection);
  CHECK(tx.exec1("SELECT count(*) FROM deposits WHERE user_id = 4")[0].as<long>() == 2);
  // auth.disabled: nobody to name.
  CHECK(tx.exec1("SELECT count(*) FROM deposits WHERE created_by IS NULL")[0].as<long>() == 2);
}

TEST_CASE("a token bound to accounts acts for those only, over HTTP and gRPC", "[wallet][auth][grpc]") {
  test_support::test_schema schema;
  const auto tokens = std::filesystem::temp_directory_path() / test_support::unique_name("bound_tokens");
  std::ofstream(tokens) << s3cret_digest << " treasury withdraw,deposit,read\n"
                        << other_digest << " shop-8 withdraw,deposit,read users=8\n";
  wallet_test::wallet_process wallet(schema.url(),
                                     {{"WALLET_AUTH_TOKENS_FILE", tokens.string()}, {"WALLET_AUTH_DISABLED", "false"}});
  auto client = wallet.client();
  for (const char* user : {"8", "9"}) {
    REQUIRE(client
                .post_json(fmt::format("/v1/accounts/{}/deposits", user), R"({"amount": "2"})",
                           bearer("s3cret-token", fmt::format("dep-{}", user)))
                .status == 200);
  }
  const auto other = client.post_json("/v1/withdrawals", withdrawal(9, "1"), bearer("s3cret-token", "w-9"));
  REQUIRE(other.status == 201);
  const auto other_id = json::parse(other.body).at("withdrawal_id").get<std::int64_t>();
  const auto before = wallet_test::read_state(schema);

  // HTTP: another account is 403 for money and balances, and its withdrawal does not exist.
  const auto denied = client.post_json("/v1/withdrawals", withdrawal(9, "1"), bearer("other-token", "s-1"));
  CHECK(denied.status == 403);
  CHECK(code_of(denied) == "forbidden");
  CHECK_THAT(denied.body, Catch::Contains("shop-8") && Catch::Contains("user_id 9"));
  CHECK(client.post_json("/v1/accounts/9/deposits", R"({"amount": "1"})", bearer("other-token", "s-2")).status == 403);
  CHECK(client.get("/v1/accounts/9", bearer("other-token")).status == 403);
  CHECK(code_of(client.get("/v1/withdrawals/" + std::to_string(other_id), bearer("other-token"))) == "not_found");

  // gRPC: the same decisions.
  wallet_test::grpc_client shop(wallet.grpc_target(), "other-token");
  CHECK(shop.create_withdrawal(9, wallet_test::address, "1", "s-3").code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(shop.deposit(9, "1", "s-4").code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(shop.get_account(9).code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(shop.get_withdrawal(other_id).code() == grpc::StatusCode::NOT_FOUND);
  CHECK(wallet_test::read_state(schema) == before);

  // Its own account: allowed through both.
  const auto own = client.post_json("/v1/withdrawals", withdrawal(8, "1"), bearer("other-token", "s-5"));
  REQUIRE(own.status == 201);
  const auto own_id = json::parse(own.body).at("withdrawal_id").get<std::int64_t>();
  CHECK(client.get("/v1/withdrawals/" + std::to_string(own_id), bearer("other-token")).status == 200);
  const auto own_grpc = shop.create_withdrawal(8, wallet_test::address, "0.5", "s-6");
  REQUIRE(own_grpc.ok());
  CHECK(shop.get_withdrawal(own_grpc.response.withdrawal_id()).ok());
  CHECK(shop.get_account(8).response.balance() == "0.5");
  CHECK(wallet_test::balance_of(schema, 9) == "1.000000000000000000");
}
