// wallet-service over gRPC, with a C++ client against the real process: every status code of the
// issue, idempotent replays and their metadata, the 200-withdrawal race, the health service
// following the database (cut through a TCP forwarder, never the shared PostgreSQL), server
// reflection, the gRPC metrics and a graceful SIGTERM with a call in flight.

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "grpc_client.hpp"
#include "tcp_proxy.hpp"
#include "wallet_process.hpp"

using namespace std::chrono_literals;
using grpc::StatusCode;
namespace v1 = wallet::v1;

namespace {

using wallet_test::address;
using wallet_test::other_digest;
using wallet_test::s3cret_digest;

std::string tokens_file(const std::string& content) {
  const auto path = std::filesystem::temp_directory_path() / test_support::unique_name("grpc_tokens");
  std::ofstream(path) << content;
  return path.string();
}

// The message of every refusal starts with the HTTP API's error code.
std::string code_prefix(const grpc::Status& status) {
  const auto message = status.error_message();
  return message.substr(0, message.find(':'));
}

long count(const test_support::test_schema& schema, const std::string& sql) {
  auto connection = schema.connect();
  pqxx::nontransaction tx(connection);
  return tx.exec1(sql)[0].as<long>();
}

}  // namespace

TEST_CASE("gRPC: every refusal has its canonical status code, its message the HTTP error code", "[wallet][grpc]") {
  test_support::test_schema schema;
  // gateway: every scope (digest alone); risk-engine: read only.
  const auto tokens = tokens_file(std::string(s3cret_digest) + "\n" + other_digest + " risk-engine read\n");
  wallet_test::wallet_process wallet(schema.url(), {{"WALLET_AUTH_TOKENS_FILE", tokens},
                                                    {"WALLET_AUTH_DISABLED", "false"},
                                                    {"WALLET_API_REQUIRE_IDEMPOTENCY_KEY", "true"}});
  wallet_test::grpc_client gateway(wallet.grpc_target(), "s3cret-token");
  wallet_test::grpc_client reader(gateway.channel(), "other-token");
  wallet_test::grpc_client anonymous(gateway.channel(), "");
  wallet_test::grpc_client stranger(gateway.channel(), "wrong-token");

  const auto deposit = gateway.deposit(5, "1", "deposit-5-1");
  REQUIRE(deposit.ok());
  CHECK(deposit.response.balance() == "1");
  CHECK_FALSE(deposit.replayed);
  const auto before = wallet_test::read_state(schema);

  SECTION("UNAUTHENTICATED without a token or with an unknown one") {
    const auto none = anonymous.create_withdrawal(5, address, "0.25", "k1");
    CHECK(none.code() == StatusCode::UNAUTHENTICATED);
    CHECK(code_prefix(none.status) == "unauthorized");
    CHECK(stranger.get_account(5).code() == StatusCode::UNAUTHENTICATED);
  }
  SECTION("PERMISSION_DENIED when the token lacks the scope; reading is allowed") {
    const auto denied = reader.create_withdrawal(5, address, "0.25", "k1");
    CHECK(denied.code() == StatusCode::PERMISSION_DENIED);
    CHECK(code_prefix(denied.status) == "forbidden");
    CHECK_THAT(denied.message(), Catch::Contains("risk-engine") && Catch::Contains("withdraw"));
    CHECK(reader.deposit(5, "1", "k2").code() == StatusCode::PERMISSION_DENIED);
    const auto account = reader.get_account(5);
    REQUIRE(account.ok());
    CHECK(account.response.balance() == "1");
  }
  SECTION("INVALID_ARGUMENT for bad input and for a missing Idempotency-Key") {
    const auto amount = gateway.create_withdrawal(5, address, "1.2.3", "k1");
    CHECK(amount.code() == StatusCode::INVALID_ARGUMENT);
    CHECK(code_prefix(amount.status) == "invalid_amount");
    CHECK(code_prefix(gateway.create_withdrawal(5, address, "0", "k1").status) == "invalid_amount");
    CHECK(code_prefix(gateway.create_withdrawal(5, "0x1234", "1", "k1").status) == "invalid_address");
    CHECK(code_prefix(gateway.create_withdrawal(5, address, "", "k1").status) == "missing_field");
    CHECK(code_prefix(gateway.create_withdrawal(-5, address, "1", "k1").status) == "invalid_type");
    v1::CreateWithdrawalRequest request;
    request.set_user_id(5);
    request.set_to_address(address);
    request.set_amount("0.25");
    request.set_chain("doge");
    request.set_idempotency_key("k1");
    CHECK(code_prefix(gateway.create_withdrawal(request).status) == "unknown_chain");
    const auto no_key = gateway.create_withdrawal(5, address, "0.25");
    CHECK(no_key.code() == StatusCode::INVALID_ARGUMENT);
    CHECK(code_prefix(no_key.status) == "missing_idempotency_key");
    CHECK(code_prefix(gateway.deposit(5, "1").status) == "missing_idempotency_key");
    CHECK(code_prefix(gateway.create_withdrawal(5, address, "0.25", std::string(300, 'k')).status) ==
          "invalid_idempotency_key");
  }
  SECTION("NOT_FOUND for an unknown user or withdrawal") {
    const auto user = gateway.create_withdrawal(999, address, "0.25", "k1");
    CHECK(user.code() == StatusCode::NOT_FOUND);
    CHECK(code_prefix(user.status) == "unknown_user");
    CHECK(code_prefix(gateway.get_account(999).status) == "unknown_user");
    const auto withdrawal = gateway.get_withdrawal(424242);
    CHECK(withdrawal.code() == StatusCode::NOT_FOUND);
    CHECK(code_prefix(withdrawal.status) == "not_found");
  }
  SECTION("FAILED_PRECONDITION when the balance does not cover the amount") {
    const auto poor = gateway.create_withdrawal(5, address, "1.000000000000000001", "k1");
    CHECK(poor.code() == StatusCode::FAILED_PRECONDITION);
    CHECK(code_prefix(poor.status) == "insufficient_balance");
  }
  SECTION("RESOURCE_EXHAUSTED for a request over 16 KiB") {
    const auto huge = gateway.create_withdrawal(5, std::string(20 * 1024, 'a'), "0.25", "k1");
    CHECK(huge.code() == StatusCode::RESOURCE_EXHAUSTED);
  }
  // Nothing a refusal answered moved money or wrote a row.
  CHECK(wallet_test::read_state(schema) == before);
}

TEST_CASE("gRPC: a replay answers as the first call did, says so, and never debits twice", "[wallet][grpc]") {
  test_support::test_schema schema;
  const auto tokens = tokens_file(std::string(s3cret_digest) + " gateway withdraw,read,deposit\n" + other_digest +
                                  " payouts withdraw,read\n");
  wallet_test::wallet_process wallet(schema.url(),
                                     {{"WALLET_AUTH_TOKENS_FILE", tokens}, {"WALLET_AUTH_DISABLED", "false"}});
  wallet_test::grpc_client gateway(wallet.grpc_target(), "s3cret-token");
  wallet_test::grpc_client payouts(gateway.channel(), "other-token");
  REQUIRE(gateway.deposit(8, "2", "dep-8").ok());
  // A retried deposit (same key and amount) credits once and says it was replayed.
  const auto again = gateway.deposit(8, "2.0", "dep-8");
  REQUIRE(again.ok());
  CHECK(again.replayed);
  CHECK(again.response.balance() == "2");
  CHECK(gateway.deposit(8, "3", "dep-8").code() == StatusCode::ALREADY_EXISTS);
  CHECK(wallet_test::balance_of(schema, 8) == "2.000000000000000000");

  const auto first = gateway.create_withdrawal(8, address, "1.5", "order-8");
  REQUIRE(first.ok());
  CHECK_FALSE(first.replayed);
  CHECK(first.response.status() == v1::WITHDRAWAL_STATUS_PENDING);
  CHECK_THAT(first.response.created_at(), Catch::Matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)"));
  // Replayed although the balance (0.5) could not pay it again.
  const auto replay = gateway.create_withdrawal(8, address, "1.50", "order-8");
  REQUIRE(replay.ok());
  CHECK(replay.replayed);
  CHECK(replay.response.SerializeAsString() == first.response.SerializeAsString());
  const auto reused = gateway.create_withdrawal(8, address, "0.1", "order-8");
  CHECK(reused.code() == StatusCode::ALREADY_EXISTS);
  CHECK(code_prefix(reused.status) == "idempotency_key_reused");
  CHECK(wallet_test::balance_of(schema, 8) == "0.500000000000000000");

  // Keys belong to a client: another token's "order-8" is a new withdrawal.
  const auto other_client = payouts.create_withdrawal(8, address, "0.5", "order-8");
  REQUIRE(other_client.ok());
  CHECK_FALSE(other_client.replayed);
  CHECK(other_client.response.withdrawal_id() != first.response.withdrawal_id());
  CHECK(wallet_test::balance_of(schema, 8) == "0.000000000000000000");

  // created_by holds the token's name; the HTTP and gRPC reads agree.
  auto connection = schema.connect();
  pqxx::nontransaction tx(connection);
  CHECK(tx.exec1("SELECT string_agg(created_by, ',' ORDER BY id) FROM withdrawals")[0].as<std::string>() ==
        "gateway,payouts");
  CHECK(tx.exec1("SELECT string_agg(created_by, ',' ORDER BY id) FROM deposits")[0].as<std::string>() == "gateway");
  CHECK(tx.exec1("SELECT count(*) FROM outbox_messages")[0].as<long>() == 2);
  const auto read = gateway.get_withdrawal(first.response.withdrawal_id());
  REQUIRE(read.ok());
  CHECK(read.response.amount() == "1.5");
  CHECK(read.response.status() == v1::WITHDRAWAL_STATUS_PENDING);
  CHECK(read.response.user_id() == 8);
  CHECK(read.response.tx_hash().empty());
  CHECK(read.response.created_at() == first.response.created_at());

  // The gRPC metrics sit beside the HTTP ones on /metrics.
  const auto metrics = wallet.client().get("/metrics").body;
  CHECK(test_support::metric_value(metrics, R"(wallet_grpc_requests_total{code="OK",method="CreateWithdrawal"})") == 3);
  CHECK(test_support::metric_value(
            metrics, R"(wallet_grpc_requests_total{code="ALREADY_EXISTS",method="CreateWithdrawal"})") == 1);
  CHECK(test_support::metric_value(metrics, R"(wallet_grpc_request_duration_seconds_count{method="Deposit"})") == 3);
  CHECK(test_support::metric_value(metrics, "wallet_withdrawals_created_total") == 2);
}

TEST_CASE("gRPC: 200 concurrent withdrawals against a balance for 100: exactly 100 succeed", "[wallet][grpc][race]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url());
  {
    wallet_test::grpc_client client(wallet.grpc_target());
    REQUIRE(client.deposit(77, "1.00").ok());
    REQUIRE(client.deposit(78, "5").ok());
  }
  constexpr int calls = 200;
  std::vector<grpc::StatusCode> codes(calls, StatusCode::UNKNOWN);
  std::vector<std::int64_t> ids(calls, 0);
  // A few channels (HTTP/2 connections), many concurrent calls on each.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 4; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("channel_index", i);  // distinct arguments: distinct connections
    channels.push_back(grpc::CreateCustomChannel(wallet.grpc_target(), grpc::InsecureChannelCredentials(), args));
  }
  std::vector<std::thread> threads;
  threads.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    threads.emplace_back([&, i] {
      wallet_test::grpc_client client(channels[static_cast<std::size_t>(i % 4)], "");
      const auto reply = client.create_withdrawal(77, fmt::format("0x{:040x}", i + 1), "0.01");
      codes[static_cast<std::size_t>(i)] = reply.code();
      ids[static_cast<std::size_t>(i)] = reply.response.withdrawal_id();
    });
  }
  for (auto& t : threads) t.join();

  int created = 0;
  int refused = 0;
  std::set<std::int64_t> distinct;
  for (int i = 0; i < calls; ++i) {
    INFO("call " << i << " code " << codes[static_cast<std::size_t>(i)]);
    if (codes[static_cast<std::size_t>(i)] == StatusCode::OK) {
      ++created;
      distinct.insert(ids[static_cast<std::size_t>(i)]);
    } else {
      REQUIRE(codes[static_cast<std::size_t>(i)] == StatusCode::FAILED_PRECONDITION);
      ++refused;
    }
  }
  CHECK(created == 100);
  CHECK(refused == 100);
  CHECK(distinct.size() == 100);
  CHECK(wallet_test::balance_of(schema, 77) == "0.000000000000000000");
  CHECK(wallet_test::balance_of(schema, 78) == "5.000000000000000000");
  CHECK(count(schema, "SELECT count(*) FROM withdrawals WHERE user_id = 77 AND status = 'pending'") == 100);
  CHECK(count(schema, "SELECT count(*) FROM outbox_messages") == 100);
}

TEST_CASE("gRPC health follows the database: NOT_SERVING while it is cut off, SERVING when it returns",
          "[wallet][grpc][health]") {
  test_support::test_schema schema;
  const auto [host, port] = test_support::url_host_port(schema.url());
  test_support::tcp_proxy proxy(host, port);
  wallet_test::wallet_process wallet(test_support::url_via_port(schema.url(), proxy.port()));
  wallet_test::grpc_client client(wallet.grpc_target());
  auto http = wallet.client();
  REQUIRE(client.deposit(9, "1").ok());
  REQUIRE(client.health().ok());
  CHECK(client.health().response.status() == wallet_test::serving);
  CHECK(client.health("wallet.v1.WalletService").response.status() == wallet_test::serving);
  CHECK(client.health("no.such.Service").code() == StatusCode::NOT_FOUND);

  // A watcher sees every change as it happens.
  grpc::ClientContext watch_context;
  watch_context.set_deadline(std::chrono::system_clock::now() + 120s);
  auto health_stub = grpc::health::v1::Health::NewStub(client.channel());
  auto watch = health_stub->Watch(&watch_context, grpc::health::v1::HealthCheckRequest());
  grpc::health::v1::HealthCheckResponse seen;
  REQUIRE(watch->Read(&seen));
  CHECK(seen.status() == wallet_test::serving);

  proxy.cut();
  CHECK(test_support::wait_until([&] { return client.health().response.status() == wallet_test::not_serving; }, 30s));
  REQUIRE(watch->Read(&seen));
  CHECK(seen.status() == wallet_test::not_serving);
  CHECK(http.get("/healthz").status == 503);
  const auto refused = client.create_withdrawal(9, address, "0.25", "while-cut");
  CHECK(refused.code() == StatusCode::UNAVAILABLE);
  CHECK(code_prefix(refused.status) == "database_unavailable");
  CHECK_THAT(refused.message(), Catch::Contains("nothing was written"));

  proxy.restore();
  CHECK(test_support::wait_until([&] { return client.health().response.status() == wallet_test::serving; }, 30s));
  REQUIRE(watch->Read(&seen));
  CHECK(seen.status() == wallet_test::serving);
  watch_context.TryCancel();
  // The retry with the same key is the first withdrawal: the refused call wrote nothing.
  const auto retried = client.create_withdrawal(9, address, "0.25", "while-cut");
  REQUIRE(retried.ok());
  CHECK_FALSE(retried.replayed);
  CHECK(wallet_test::balance_of(schema, 9) == "0.750000000000000000");
  CHECK(wallet_test::read_state(schema).withdrawals == 1);
  const auto metrics = http.get("/metrics").body;
  CHECK(test_support::metric_value(metrics,
                                   R"(wallet_grpc_requests_total{code="UNAVAILABLE",method="CreateWithdrawal"})") == 1);
}

TEST_CASE("gRPC reflection lists the wallet and health services, and Deposit only with api.enable_deposits",
          "[wallet][grpc]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url(), {{"WALLET_API_ENABLE_DEPOSITS", "false"}});
  wallet_test::grpc_client client(wallet.grpc_target());
  const auto services = client.list_services();
  CHECK(services.count("wallet.v1.WalletService") == 1);
  CHECK(services.count("grpc.health.v1.Health") == 1);
  const auto deposit = client.deposit(3, "1", "k");
  CHECK(deposit.code() == StatusCode::NOT_FOUND);
  CHECK_THAT(deposit.message(), Catch::StartsWith("not_found:") && Catch::Contains("api.enable_deposits"));
  CHECK(wallet_test::read_state(schema) == wallet_test::db_state{});
}

TEST_CASE("gRPC: SIGTERM refuses new calls, finishes the call in flight and exits 0", "[wallet][grpc]") {
  test_support::test_schema schema;
  wallet_test::wallet_process wallet(schema.url(), {{"WALLET_DATABASE_STATEMENT_TIMEOUT", "120s"}});
  wallet_test::grpc_client client(wallet.grpc_target());
  REQUIRE(client.deposit(6, "1").ok());

  // Hold the account's row lock so the withdrawal waits inside its transaction.
  wallet_test::account_lock lock(schema, 6);

  grpc::StatusCode in_flight = StatusCode::UNKNOWN;
  std::thread call([&] { in_flight = client.create_withdrawal(6, address, "0.25").code(); });
  REQUIRE(lock.wait_for_waiter());

  wallet.process().signal(SIGTERM);
  // New connections are refused once the listener closed (a fresh channel: a new connection)...
  REQUIRE(test_support::wait_until(
      [&] {
        wallet_test::grpc_client late(wallet.grpc_target());
        return late.get_account(6).code() == StatusCode::UNAVAILABLE;
      },
      30s));
  // ...while the call in flight keeps the process alive until it is answered.
  CHECK(wallet.process().running());
  lock.release();
  call.join();
  CHECK(in_flight == StatusCode::OK);
  CHECK(wallet.process().wait(30s) == 0);
  CHECK(wallet_test::balance_of(schema, 6) == "0.750000000000000000");
}

TEST_CASE("gRPC: a commit whose answer is lost is UNAVAILABLE, and the retry with its key moves money once",
          "[wallet][grpc][idempotency]") {
  // Review finding #9 and the deposit note: the connection breaks after COMMIT reached the server.
  test_support::test_schema schema;
  const auto [host, port] = test_support::url_host_port(schema.url());
  test_support::tcp_proxy proxy(host, port);
  wallet_test::wallet_process wallet(test_support::url_via_port(schema.url(), proxy.port()));
  wallet_test::grpc_client client(wallet.grpc_target());
  REQUIRE(client.deposit(10, "2", "dep-10-1").ok());

  proxy.drop_after_client_sends("COMMIT");
  const auto lost = client.create_withdrawal(10, address, "0.5", "order-10-1");
  REQUIRE(proxy.trips() == 1);
  CHECK(lost.code() == StatusCode::UNAVAILABLE);
  CHECK_THAT(lost.message(), Catch::StartsWith("database_unavailable:") && Catch::Contains("outcome is unknown"));
  // The server did commit: the answer was what got lost.
  CHECK(wallet_test::read_state(schema).withdrawals == 1);
  const auto retried = client.create_withdrawal(10, address, "0.5", "order-10-1");
  REQUIRE(retried.ok());
  CHECK(retried.replayed);
  CHECK(count(schema, "SELECT id FROM withdrawals") == retried.response.withdrawal_id());
  CHECK(wallet_test::balance_of(schema, 10) == "1.500000000000000000");

  // The same for a deposit: it used to be an autocommit statement retried after a broken connection.
  proxy.drop_after_client_sends("COMMIT");
  const auto lost_deposit = client.deposit(10, "1", "dep-10-2");
  REQUIRE(proxy.trips() == 2);
  CHECK(lost_deposit.code() == StatusCode::UNAVAILABLE);
  CHECK_THAT(lost_deposit.message(), Catch::Contains("outcome is unknown"));
  const auto retried_deposit = client.deposit(10, "1", "dep-10-2");
  REQUIRE(retried_deposit.ok());
  CHECK(retried_deposit.replayed);
  CHECK(retried_deposit.response.balance() == "2.5");
  CHECK(wallet_test::balance_of(schema, 10) == "2.500000000000000000");
  CHECK(count(schema, "SELECT count(*) FROM deposits") == 2);
}
