// The JSON-RPC client against an in-process HTTP server that answers like a node would, so the
// classification of every failure mode can be checked without stopping the shared anvil.
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "broadcaster/block_scanner.hpp"
#include "broadcaster/eth_rpc.hpp"
#include "chain/hex.hpp"
#include "common/http_server.hpp"
#include "test_support.hpp"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using broadcaster::send_outcome;

// method -> answer: {"result": ...} or {"error": {...}}, or an HTTP status, or a delay.
struct fake_node {
  struct answer {
    json body;
    unsigned http_status = 200;
    std::chrono::milliseconds delay{0};
  };

  fake_node()
      : server({"127.0.0.1", 0, 64 * 1024, 10s, 60s, 2}, [this](const common::http::request& r) { return handle(r); }) {
    server.start();
  }

  void on(const std::string& method, answer a) {
    std::lock_guard lock(mutex);
    answers[method] = std::move(a);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server.port()); }

  common::http::response handle(const common::http::request& request) {
    const json call = json::parse(request.body);
    if (call.is_array()) {
      // A batch: every call answered, in reverse order (replies are matched by id, not position).
      json replies = json::array();
      for (auto it = call.rbegin(); it != call.rend(); ++it) {
        json reply = answer_for(*it).body;
        reply["jsonrpc"] = "2.0";
        reply["id"] = (*it)["id"];
        replies.push_back(reply);
      }
      return {200, "application/json", replies.dump(), {}};
    }
    const answer a = answer_for(call);
    if (a.delay.count() > 0) std::this_thread::sleep_for(a.delay);
    json reply = a.body;
    reply["jsonrpc"] = "2.0";
    reply["id"] = call["id"];
    return {a.http_status, "application/json", a.http_status == 200 ? reply.dump() : "upstream trouble", {}};
  }

  answer answer_for(const json& call) {
    answer a;
    {
      std::lock_guard lock(mutex);
      calls.push_back(call["method"].get<std::string>());
      const auto it = answers.find(call["method"].get<std::string>());
      if (it == answers.end()) {
        a.body = {{"error", {{"code", -32601}, {"message", "method not found"}}}};
      } else {
        a = it->second;
      }
    }
    return a;
  }

  std::mutex mutex;
  std::map<std::string, answer> answers;
  std::vector<std::string> calls;
  common::http::server server;
};

json result(json value) { return {{"result", std::move(value)}}; }
json error(int code, const std::string& message) { return {{"error", {{"code", code}, {"message", message}}}}; }

const chain::hash256 some_hash = [] {
  chain::hash256 h{};
  h[0] = 0xab;
  h[31] = 0x01;
  return h;
}();
const chain::bytes some_raw = {0x02, 0xf8, 0x01};

}  // namespace

TEST_CASE("RPC URLs: http only, host, port and path", "[rpc]") {
  const auto e = broadcaster::parse_rpc_url("http://127.0.0.1:58545");
  CHECK(e.host == "127.0.0.1");
  CHECK(e.port == "58545");
  CHECK(e.target == "/");
  const auto p = broadcaster::parse_rpc_url("http://node.internal/v1/abc");
  CHECK(p.port == "80");
  CHECK(p.target == "/v1/abc");
  const auto v6 = broadcaster::parse_rpc_url("http://[::1]:8545/");
  CHECK(v6.host == "::1");
  CHECK(v6.port == "8545");
  CHECK_THROWS_WITH(broadcaster::parse_rpc_url("https://node"), Catch::Contains("https"));
  CHECK_THROWS_AS(broadcaster::parse_rpc_url("node:8545"), std::invalid_argument);
  CHECK_THROWS_AS(broadcaster::parse_rpc_url("http://:8545"), std::invalid_argument);
  CHECK_THROWS_AS(broadcaster::parse_rpc_url("http://node:0"), std::invalid_argument);
  CHECK_THROWS_AS(broadcaster::parse_rpc_url("http://node:99999"), std::invalid_argument);
  CHECK_THROWS_AS(broadcaster::parse_rpc_url("http://user:pw@node:8545"), std::invalid_argument);
}

TEST_CASE("JSON-RPC quantities convert exactly, up to 256 bits", "[rpc]") {
  CHECK(broadcaster::parse_quantity("0x0") == 0);
  CHECK(broadcaster::parse_quantity("0x7a69") == 31337);
  CHECK(broadcaster::parse_quantity("0x21e19e0c9bab2400000") == chain::uint256("10000000000000000000000"));
  const std::string max = "0x" + std::string(64, 'f');
  CHECK(broadcaster::parse_quantity(max) == std::numeric_limits<chain::uint256>::max());
  CHECK_THROWS_AS(broadcaster::parse_quantity("0x1" + std::string(64, '0')), std::invalid_argument);
  CHECK_THROWS_AS(broadcaster::parse_quantity("12"), std::invalid_argument);
  CHECK_THROWS_AS(broadcaster::parse_quantity("0x"), std::invalid_argument);
  CHECK_THROWS_AS(broadcaster::parse_quantity("0xg1"), std::invalid_argument);
  CHECK_THROWS_AS(broadcaster::parse_quantity_u64("0x10000000000000000"), std::invalid_argument);
  CHECK(broadcaster::parse_quantity_u64("0xffffffffffffffff") == std::numeric_limits<std::uint64_t>::max());
  for (const chain::uint256& v : {chain::uint256(0), chain::uint256(1), chain::uint256(255), chain::uint256(4096),
                                  chain::uint256("1250000000000000000")}) {
    CHECK(broadcaster::parse_quantity(broadcaster::to_quantity(v)) == v);
  }
  CHECK(broadcaster::to_quantity(4096) == "0x1000");
}

TEST_CASE("send errors are classified from the node's message", "[rpc]") {
  using kind = broadcaster::send_error_kind;
  CHECK(broadcaster::classify_send_error(-32000, "already known") == kind::already_known);
  CHECK(broadcaster::classify_send_error(-32010, "Transaction with the same hash was already imported.") ==
        kind::already_known);
  CHECK(broadcaster::classify_send_error(-32000, "known transaction: 0xabc") == kind::already_known);
  CHECK(broadcaster::classify_send_error(-32003, "nonce too low") == kind::nonce_too_low);
  CHECK(broadcaster::classify_send_error(-32000, "nonce too low: next nonce 5, tx nonce 4") == kind::nonce_too_low);
  CHECK(broadcaster::classify_send_error(-32003, "Insufficient funds for gas * price + value") == kind::permanent);
  CHECK(broadcaster::classify_send_error(-32000, "intrinsic gas too low") == kind::permanent);
  CHECK(broadcaster::classify_send_error(-32000, "invalid sender") == kind::permanent);
  CHECK(broadcaster::classify_send_error(-32000, "txpool is full") == kind::transient);
  CHECK(broadcaster::classify_send_error(-32005, "request limit reached") == kind::transient);
}

TEST_CASE("calls return results and surface JSON-RPC errors with their code", "[rpc]") {
  fake_node node;
  broadcaster::eth_rpc rpc(node.url(), 2s);
  node.on("eth_chainId", {result("0x7a69")});
  CHECK(rpc.chain_id() == 31337);
  CHECK(rpc.chain_id() == 31337);  // the keep-alive connection is reused
  node.on("eth_getTransactionCount", {result("0x5")});
  CHECK(rpc.get_transaction_count(*chain::address::parse("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")) == 5);
  node.on("eth_gasPrice", {error(-32602, "invalid params")});
  try {
    static_cast<void>(rpc.gas_price());
    FAIL("no error");
  } catch (const broadcaster::rpc_error& e) {
    CHECK(e.code() == -32602);
    CHECK(e.node_message() == "invalid params");
  }
  node.on("eth_getBlockByNumber", {result({{"number", "0x1"}, {"baseFeePerGas", "0x3b9aca00"}})});
  CHECK(rpc.base_fee_per_gas() == 1'000'000'000);
  node.on("eth_getBlockByNumber", {result({{"number", "0x1"}})});
  CHECK_FALSE(rpc.base_fee_per_gas().has_value());
}

TEST_CASE("transport failures are rpc_unavailable: refused, 5xx, timeout, not JSON-RPC", "[rpc]") {
  SECTION("connection refused") {
    broadcaster::eth_rpc rpc("http://127.0.0.1:" + std::to_string(test_support::free_loopback_port()), 2s);
    CHECK_THROWS_AS(rpc.chain_id(), broadcaster::rpc_unavailable);
  }
  fake_node node;
  broadcaster::eth_rpc rpc(node.url(), 300ms);
  SECTION("HTTP 503") {
    node.on("eth_chainId", {json::object(), 503});
    CHECK_THROWS_WITH(rpc.chain_id(), Catch::Contains("HTTP 503"));
  }
  SECTION("a node slower than the deadline") {
    node.on("eth_chainId", {result("0x1"), 200, 1500ms});
    CHECK_THROWS_WITH(rpc.chain_id(), Catch::Contains("timed out"));
    node.on("eth_chainId", {result("0x1")});
    CHECK(rpc.chain_id() == 1);  // the client recovers on a fresh connection
  }
  SECTION("an answer without result") {
    node.on("eth_chainId", {json::object()});
    CHECK_THROWS_AS(rpc.chain_id(), broadcaster::rpc_unavailable);
  }
}

TEST_CASE("eth_sendRawTransaction outcomes", "[rpc]") {
  fake_node node;
  broadcaster::eth_rpc rpc(node.url(), 2s);
  node.on("eth_getTransactionByHash", {result(nullptr)});

  SECTION("accepted") {
    node.on("eth_sendRawTransaction", {result(chain::to_hex(some_hash))});
    CHECK(rpc.send_raw_transaction(some_raw, some_hash).outcome == send_outcome::sent);
  }
  SECTION("already known counts as sent") {
    node.on("eth_sendRawTransaction", {error(-32000, "already known")});
    CHECK(rpc.send_raw_transaction(some_raw, some_hash).outcome == send_outcome::already_known);
  }
  SECTION("nonce too low for our own mined transaction is already known") {
    node.on("eth_sendRawTransaction", {error(-32003, "nonce too low")});
    node.on("eth_getTransactionByHash", {result({{"hash", chain::to_hex(some_hash)}, {"blockNumber", "0x3"}})});
    CHECK(rpc.send_raw_transaction(some_raw, some_hash).outcome == send_outcome::already_known);
  }
  SECTION("nonce too low for a transaction the chain does not know is a rejection") {
    node.on("eth_sendRawTransaction", {error(-32003, "nonce too low")});
    const auto r = rpc.send_raw_transaction(some_raw, some_hash);
    CHECK(r.outcome == send_outcome::rejected);
    CHECK(r.nonce_too_low);
  }
  SECTION("insufficient funds is a rejection that keeps the nonce releasable") {
    node.on("eth_sendRawTransaction", {error(-32003, "Insufficient funds for gas * price + value")});
    const auto r = rpc.send_raw_transaction(some_raw, some_hash);
    CHECK(r.outcome == send_outcome::rejected);
    CHECK_FALSE(r.nonce_too_low);
    CHECK(r.message == "Insufficient funds for gas * price + value");
  }
  SECTION("a rejection is not final while the lookup by hash fails") {
    node.on("eth_sendRawTransaction", {error(-32003, "Insufficient funds for gas * price + value")});
    node.on("eth_getTransactionByHash", {json::object(), 502});
    CHECK(rpc.send_raw_transaction(some_raw, some_hash).outcome == send_outcome::transient);
  }
  SECTION("a full pool and 5xx are transient") {
    node.on("eth_sendRawTransaction", {error(-32000, "txpool is full")});
    CHECK(rpc.send_raw_transaction(some_raw, some_hash).outcome == send_outcome::transient);
    node.on("eth_sendRawTransaction", {json::object(), 500});
    CHECK(rpc.send_raw_transaction(some_raw, some_hash).outcome == send_outcome::transient);
  }
}

TEST_CASE("receipts: pending, success, reverted", "[rpc]") {
  fake_node node;
  broadcaster::eth_rpc rpc(node.url(), 2s);
  node.on("eth_getTransactionReceipt", {result(nullptr)});
  CHECK_FALSE(rpc.get_transaction_receipt(some_hash).has_value());
  node.on("eth_getTransactionReceipt",
          {result({{"status", "0x1"},
                   {"blockNumber", "0x10"},
                   {"blockHash", "0xABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB"},
                   {"gasUsed", "0x5208"},
                   {"effectiveGasPrice", "0x2"}})});
  auto r = rpc.get_transaction_receipt(some_hash);
  REQUIRE(r.has_value());
  CHECK(r->success);
  CHECK(r->block_number == 16);
  CHECK(r->gas_used == 21000);
  CHECK(r->block_hash ==
        "0xabababababababababababababababababababababababababababababababab");  // one spelling: lower case
  node.on("eth_getTransactionReceipt",
          {result({{"status", "0x0"},
                   {"blockNumber", "0x11"},
                   {"blockHash", "0x0101010101010101010101010101010101010101010101010101010101010101"}})});
  r = rpc.get_transaction_receipt(some_hash);
  REQUIRE(r.has_value());
  CHECK_FALSE(r->success);
}

TEST_CASE("batch: one HTTP request, results in call order whatever the reply order, an error item throws", "[rpc]") {
  fake_node node;
  broadcaster::eth_rpc rpc(node.url(), 2s);
  node.on("eth_blockNumber", {result("0x10")});
  node.on("eth_chainId", {result("0x7a69")});
  const auto results = rpc.batch({{"eth_blockNumber", json::array()}, {"eth_chainId", json::array()}});
  REQUIRE(results.size() == 2);
  CHECK(results[0] == "0x10");
  CHECK(results[1] == "0x7a69");
  CHECK_THROWS_AS(rpc.batch({{"eth_blockNumber", json::array()}, {"eth_unknown", json::array()}}),
                  broadcaster::rpc_error);
  CHECK(rpc.batch({}).empty());
}

TEST_CASE("rpc URL: logged without path or query, where providers put their API keys", "[rpc]") {
  CHECK(broadcaster::redacted_rpc_url("http://eth.example.com/v3/SECRETKEY") == "http://eth.example.com:80");
  CHECK(broadcaster::redacted_rpc_url("http://10.0.0.1:8545/?apikey=SECRET") == "http://10.0.0.1:8545");
  CHECK(broadcaster::redacted_rpc_url("http://[::1]:8545/x") == "http://[::1]:8545");
  broadcaster::eth_rpc rpc("http://127.0.0.1:1/key/SECRET?token=SECRET", 100ms);
  CHECK(rpc.url().find("SECRET") == std::string::npos);
  try {
    rpc.chain_id();
    FAIL("no node listens on port 1");
  } catch (const broadcaster::rpc_unavailable& e) {
    CHECK(std::string(e.what()).find("SECRET") == std::string::npos);
  }
}

TEST_CASE(
    "block scanner: receipts of the account only, per block, and a node without eth_getBlockReceipts turns it off",
    "[rpc][scanner]") {
  fake_node node;
  broadcaster::eth_rpc rpc(node.url(), 2s);
  std::map<std::string, int> counted;
  rpc.on_call([&](std::string_view method) { ++counted[std::string(method)]; });
  const auto account = *chain::address::parse("0x00000000000000000000000000000000000000aa");
  const std::string block_hash = "0x" + std::string(64, '1');
  const std::string ours = "0x" + std::string(64, 'a');
  const std::string theirs = "0x" + std::string(64, 'b');
  // Every block number gets the same answer: its parent hash is its own, so the chain links up.
  node.on("eth_getBlockByNumber",
          {result({{"hash", block_hash}, {"parentHash", block_hash}, {"transactions", json::array({ours, theirs})}})});
  const auto receipt = [&](const std::string& hash, const std::string& from) {
    return json{{"transactionHash", hash}, {"from", from},    {"blockHash", block_hash},
                {"blockNumber", "0x2"},    {"status", "0x1"}, {"gasUsed", "0x5208"}};
  };
  node.on("eth_getBlockReceipts",
          {result(json::array({receipt(ours, "0x00000000000000000000000000000000000000AA"),
                               receipt(theirs, "0x00000000000000000000000000000000000000bb")}))});

  broadcaster::block_scanner scanner(account, 1);
  scanner.advance(rpc, 2);  // blocks 0..2: one batch, a header and the receipts of each
  CHECK(scanner.supported());
  CHECK(counted["eth_getBlockReceipts"] == 3);
  CHECK(counted["eth_getBlockByNumber"] == 3);
  const auto found = scanner.find(ours);
  REQUIRE(found.has_value());
  CHECK(found->success);
  CHECK(found->block_hash == block_hash);
  CHECK_FALSE(scanner.find(theirs).has_value());  // another sender's: not kept

  scanner.advance(rpc, 2);  // no new block: only the last one's hash is checked
  CHECK(counted["eth_getBlockReceipts"] == 3);
  CHECK(counted["eth_getBlockByNumber"] == 4);
  scanner.forget(ours);
  CHECK_FALSE(scanner.find(ours).has_value());

  node.on("eth_getBlockReceipts", {error(-32601, "Method not found")});
  scanner.advance(rpc, 3);
  CHECK_FALSE(scanner.supported());
  scanner.advance(rpc, 4);  // off for good: nothing asked
  CHECK(counted["eth_getBlockReceipts"] == 4);
}

TEST_CASE("block scanner: what it holds stays bounded however many transactions it has seen", "[rpc][scanner]") {
  // One transaction of ours per block, its receipt forgotten once read (its withdrawal final), as
  // the tracker does: nothing per forgotten transaction may stay, and blocks leave the window.
  fake_node node;
  broadcaster::eth_rpc rpc(node.url(), 2s);
  const auto account = *chain::address::parse("0x00000000000000000000000000000000000000aa");
  const std::string block_hash = "0x" + std::string(64, '1');  // parent hash = own hash: the chain links up
  const auto tx_hash = [](std::uint64_t n) { return fmt::format("0x{:064x}", n + 1); };
  const auto block_n = [&](std::uint64_t n) {
    node.on("eth_getBlockByNumber",
            {result({{"hash", block_hash}, {"parentHash", block_hash}, {"transactions", json::array({tx_hash(n)})}})});
    node.on("eth_getBlockReceipts", {result(json::array({json{{"transactionHash", tx_hash(n)},
                                                              {"from", account.to_lower_hex()},
                                                              {"blockHash", block_hash},
                                                              {"blockNumber", broadcaster::to_quantity(n)},
                                                              {"status", "0x1"}}}))});
  };

  constexpr std::uint64_t confirmations = 2;
  constexpr std::uint64_t blocks = 4200;  // more than the window: confirmations + 4096 blocks
  constexpr std::uint64_t kept = 100;     // one withdrawal never final: its receipt stays until evicted
  broadcaster::block_scanner scanner(account, confirmations);
  for (std::uint64_t n = 0; n < blocks; ++n) {
    block_n(n);
    scanner.advance(rpc, n);  // one new block per advance (the first scans block 0 alone)
    REQUIRE(scanner.find(tx_hash(n)).has_value());
    if (n != kept) scanner.forget(tx_hash(n));
    if (n == 1000) {
      CHECK(scanner.receipts_held() == 1);  // only the one not forgotten
      CHECK(scanner.blocks_held() == 1001);
    }
  }
  // Block `kept` is now below the window: its receipt went with it.
  CHECK(scanner.receipts_held() == 0);
  CHECK_FALSE(scanner.find(tx_hash(kept)).has_value());
  CHECK(scanner.blocks_held() == confirmations + 4096 + 1);
}
