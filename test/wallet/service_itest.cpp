// wallet-service as a process: database down, bearer tokens (and their reload), deposits switched
// off, metrics, graceful SIGTERM with a request in flight, configuration errors.

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "wallet_process.hpp"

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

using wallet_test::code_of;
using wallet_test::other_digest;
using wallet_test::s3cret_digest;
using wallet_test::withdrawal;

std::string temp_file(const std::string& name, const std::string& content) {
  const auto path = std::filesystem::temp_directory_path() / test_support::unique_name(name);
  std::ofstream(path) << content;
  return path.string();
}

}  // namespace

TEST_CASE("database unreachable: 503 and nothing written", "[wallet][service]") {
  // Nothing listens on port 1: every connection attempt is refused.
  wallet_test::wallet_process wallet("postgresql://outbox@127.0.0.1:1/outbox");
  auto client = wallet.client();
  const auto res = client.post_json("/v1/withdrawals", withdrawal(1, "1"), {{"Idempotency-Key", "k1"}});
  CHECK(res.status == 503);
  CHECK(code_of(res) == "database_unavailable");
  CHECK_THAT(json::parse(res.body)["error"]["message"].get<std::string>(), Catch::Contains("nothing was written"));
  CHECK(res.header("retry-after") == "1");
  CHECK(client.get("/v1/accounts/1").status == 503);
  CHECK(client.get("/v1/withdrawals/1").status == 503);
  const auto health = client.get("/healthz");
  CHECK(health.status == 503);
  CHECK_THAT(health.body, Catch::Contains("database unreachable"));
  // Validation still answers first: a bad request is a 400 whatever the database does.
  CHECK(client.post_json("/v1/withdrawals", withdrawal(1, "0")).status == 400);
  CHECK(client.get("/metrics").status == 200);
  CHECK(wallet.process().running());
  CHECK_FALSE(wallet.process().log_contains("database reachable: ready"));
}

TEST_CASE("connections the server dropped are replaced: the withdrawal succeeds once", "[wallet][service]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  {
    auto client = wallet.client();
    REQUIRE(client.post_json("/v1/accounts/11/deposits", R"({"amount": "5"})").status == 200);
  }
  // Several requests at once leave several idle connections in the pool.
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto client = wallet.client();
      if (client.post_json("/v1/withdrawals", withdrawal(11, "0.1")).status == 201) ++created;
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(created == 8);

  // What a server restart does to the pool: every backend of this wallet-service is terminated.
  auto admin = schema.connect();
  const auto backends = test_support::database_backends(wallet.process().pid(), admin);
  pqxx::nontransaction tx(admin);
  const auto terminated = tx.exec_params1("SELECT count(pg_terminate_backend(pid)) FROM unnest($1::int[]) AS pid",
                                          "{" + fmt::format("{}", fmt::join(backends, ",")) + "}")[0]
                              .as<long>();
  REQUIRE(terminated >= 1);

  auto client = wallet.client();
  const auto res = client.post_json("/v1/withdrawals", withdrawal(11, "1"), {{"Idempotency-Key", "after-restart"}});
  INFO(res.body);
  CHECK(res.status == 201);
  CHECK(wallet_test::balance_of(schema, 11) == "3.200000000000000000");
  const auto state = wallet_test::read_state(schema);
  CHECK(state.withdrawals == 9);
  CHECK(state.outbox == 9);
  CHECK(client.get("/healthz").status == 200);
}

TEST_CASE("with a tokens file every API route needs a listed bearer token", "[wallet][service][auth]") {
  test_support::test_schema schema;
  const auto tokens = temp_file("tokens", std::string("# test tokens\n") + s3cret_digest + "\n");
  wallet_test::wallet_process wallet(schema.url(),
                                     {{"WALLET_AUTH_TOKENS_FILE", tokens}, {"WALLET_AUTH_DISABLED", "false"}});
  auto client = wallet.client();
  const std::map<std::string, std::string> good = {{"Authorization", "Bearer s3cret-token"}};

  REQUIRE(client.post_json("/v1/accounts/3/deposits", R"({"amount": "2"})", good).status == 200);
  const auto before = wallet_test::read_state(schema);

  const auto anonymous = client.post_json("/v1/withdrawals", withdrawal(3, "1"));
  CHECK(anonymous.status == 401);
  CHECK(code_of(anonymous) == "unauthorized");
  CHECK(anonymous.header("www-authenticate") == "Bearer");
  CHECK(client.post_json("/v1/withdrawals", withdrawal(3, "1"), {{"Authorization", "Bearer wrong"}}).status == 401);
  CHECK(
      client
          .post_json("/v1/withdrawals", withdrawal(3, "1"), {{"Authorization", std::string("Bearer ") + s3cret_digest}})
          .status == 401);
  CHECK(client.post_json("/v1/accounts/3/deposits", R"({"amount": "2"})").status == 401);
  CHECK(client.get("/v1/accounts/3").status == 401);
  CHECK(client.get("/v1/withdrawals/1").status == 401);
  CHECK(client.get("/v1/no-such-route").status == 401);  // which routes exist is not told either
  CHECK(wallet_test::read_state(schema) == before);

  CHECK(client.get("/healthz").status == 200);
  CHECK(client.get("/metrics").status == 200);
  CHECK(client.post_json("/v1/withdrawals", withdrawal(3, "1"), good).status == 201);
  CHECK(client.get("/v1/accounts/3", good).status == 200);

  // SIGHUP re-reads the tokens file: the old token stops working, the new one starts.
  std::ofstream(tokens) << other_digest << "\n";
  wallet.process().signal(SIGHUP);
  REQUIRE(test_support::wait_until([&] { return wallet.process().log_contains("reloaded"); }, 10s));
  CHECK(client.get("/v1/accounts/3", good).status == 401);
  CHECK(client.get("/v1/accounts/3", {{"Authorization", "Bearer other-token"}}).status == 200);
}

TEST_CASE("deposits are refused unless api.enable_deposits", "[wallet][service]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url(), {{"WALLET_API_ENABLE_DEPOSITS", "false"}});
  auto client = wallet.client();
  const auto res = client.post_json("/v1/accounts/3/deposits", R"({"amount": "2"})");
  CHECK(res.status == 404);
  CHECK_THAT(res.body, Catch::Contains("api.enable_deposits"));
  CHECK(wallet_test::read_state(schema) == wallet_test::db_state{});
}

TEST_CASE("metrics count requests by route and status, and show the pool", "[wallet][service]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  auto client = wallet.client();
  REQUIRE(client.post_json("/v1/accounts/4/deposits", R"({"amount": "1"})").status == 200);
  REQUIRE(client.post_json("/v1/withdrawals", withdrawal(4, "0.5")).status == 201);
  REQUIRE(client.post_json("/v1/withdrawals", withdrawal(4, "0.6")).status == 409);
  REQUIRE(client.post_json("/v1/withdrawals", withdrawal(4, "x")).status == 400);
  REQUIRE(client.get("/healthz").status == 200);

  const auto metrics = client.get("/metrics");
  REQUIRE(metrics.status == 200);
  CHECK_THAT(metrics.header("content-type"), Catch::StartsWith("text/plain"));
  const auto& text = metrics.body;
  CHECK_THAT(text, Catch::Contains(R"(wallet_http_requests_total{route="create_withdrawal",status="201"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(wallet_http_requests_total{route="create_withdrawal",status="409"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(wallet_http_requests_total{route="create_withdrawal",status="400"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(wallet_http_requests_total{route="deposit",status="200"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(wallet_http_requests_total{route="healthz",status="200"} 1)"));
  CHECK_THAT(text, Catch::Contains(R"(wallet_http_request_duration_seconds_count{route="create_withdrawal"} 3)"));
  CHECK_THAT(text,
             Catch::Contains(R"(wallet_http_request_duration_seconds_bucket{route="create_withdrawal",le="0.0005"})"));
  CHECK_THAT(text, Catch::Contains("wallet_withdrawals_created_total 1"));
  CHECK_THAT(text, Catch::Contains("wallet_db_pool_size 16"));
  CHECK_THAT(text, Catch::Contains("wallet_db_pool_in_use 0"));
}

TEST_CASE("SIGTERM stops accepting, finishes the request in flight and exits 0", "[wallet][service]") {
  test_support::test_schema schema;
  // A statement timeout longer than this test holds the lock below.
  wallet_test::wallet_process wallet(schema.url(), {{"WALLET_DATABASE_STATEMENT_TIMEOUT", "120s"}});
  {
    auto client = wallet.client();
    REQUIRE(client.post_json("/v1/accounts/6/deposits", R"({"amount": "1"})").status == 200);
  }

  // Hold the account's row lock so the withdrawal waits inside its transaction.
  wallet_test::account_lock lock(schema, 6);

  test_support::http_response in_flight;
  std::thread request([&] {
    auto client = wallet.client();
    in_flight = client.post_json("/v1/withdrawals", withdrawal(6, "0.25"));
  });
  REQUIRE(lock.wait_for_waiter());

  wallet.process().signal(SIGTERM);
  // New connections are refused once the listener closed...
  REQUIRE(test_support::wait_until(
      [&] {
        try {
          auto late = wallet.client();
          late.get("/healthz");
          return false;
        } catch (const std::exception&) {
          return true;
        }
      },
      30s));
  // ...while the request in flight keeps the process alive until it is answered.
  CHECK(wallet.process().running());
  lock.release();
  request.join();
  CHECK(in_flight.status == 201);
  CHECK(wallet.process().wait(30s) == 0);
  CHECK(wallet_test::balance_of(schema, 6) == "0.750000000000000000");
  CHECK(wallet_test::read_state(schema).outbox == 1);
}

TEST_CASE("configuration errors exit with code 2 naming the key", "[wallet][service]") {
  auto run = [](std::vector<std::string> args, std::map<std::string, std::string> env) {
    test_support::child_process p(test_support::bin_path("wallet-service"), std::move(args), std::move(env),
                                  test_support::new_log_path("wallet_config"));
    const auto code = p.wait(30s);
    return std::make_pair(code, p.log());
  };
  const std::string dev = OUTBOX_SOURCE_DIR "/conf/wallet.toml";

  auto [bad_port, log1] = run({"--config", dev}, {{"WALLET_HTTP_PORT", "eighty"}});
  CHECK(bad_port == 2);
  CHECK_THAT(log1, Catch::Contains("WALLET_HTTP_PORT"));

  const auto unknown = temp_file("wallet_toml", "[chains.eth]\ndecimals = 18\n[api]\nenable_deposit = true\n");
  auto [unknown_key, log2] = run({"--config", unknown}, {});
  CHECK(unknown_key == 2);
  CHECK_THAT(log2, Catch::Contains("api.enable_deposit"));

  const auto bad_tokens = temp_file("tokens", "s3cret-token\n");
  auto [tokens_code, log3] = run({"--config", dev}, {{"WALLET_AUTH_TOKENS_FILE", bad_tokens}});
  CHECK(tokens_code == 2);
  CHECK_THAT(log3, Catch::Contains("sha256sum"));

  CHECK(run({}, {}).first == 2);
  CHECK(run({"--config", "/nonexistent/wallet.toml"}, {}).first == 2);
  CHECK(run({"--config", dev, "--check-config"}, {}).first == 0);
  const std::string production = OUTBOX_SOURCE_DIR "/conf/wallet.production.toml";
  const auto tokens = temp_file("tokens", std::string(s3cret_digest) + " gateway withdraw,read\n");
  CHECK(run({"--config", production, "--check-config"}, {{"WALLET_AUTH_TOKENS_FILE", tokens}}).first == 0);

  // Review finding #9: no tokens used to mean no authentication. Now the service refuses to start
  // and names both ways out.
  auto [open_code, log4] = run({"--config", production, "--check-config"}, {});
  CHECK(open_code == 2);
  CHECK_THAT(log4, Catch::Contains("auth.tokens_file") && Catch::Contains("auth.disabled = true"));
  auto [dev_open, log5] = run({"--config", dev, "--check-config"}, {{"WALLET_AUTH_DISABLED", "false"}});
  CHECK(dev_open == 2);
  CHECK_THAT(log5, Catch::Contains("WALLET_AUTH_DISABLED"));

  const auto bad_scope = temp_file("tokens", std::string(s3cret_digest) + " gateway pay\n");
  auto [scope_code, log6] = run({"--config", dev}, {{"WALLET_AUTH_TOKENS_FILE", bad_scope}});
  CHECK(scope_code == 2);
  CHECK_THAT(log6, Catch::Contains("withdraw, read, deposit"));
}

TEST_CASE("a second wallet-service on a taken gRPC port fails instead of sharing it", "[wallet][service][grpc]") {
  test_support::test_schema schema;
  wallet_test::wallet_process first(schema.url());
  test_support::child_process second(test_support::bin_path("wallet-service"),
                                     {"--config", OUTBOX_SOURCE_DIR "/conf/wallet.toml"},
                                     {{"DATABASE_URL", schema.url()},
                                      {"WALLET_HTTP_PORT", "0"},
                                      {"WALLET_GRPC_PORT", std::to_string(first.grpc_port())}},
                                     test_support::new_log_path("wallet_second"));
  CHECK(second.wait(30s) == 1);
  CHECK_THAT(second.log(), Catch::Contains("grpc.port"));
}
