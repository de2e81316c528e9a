// broadcaster_harness.hpp: the chain and the events (daemons.cpp: processes; withdrawals.cpp:
// the database and the payment checks).
#include "broadcaster_harness.hpp"

#include <time.h>

#include <array>
#include <random>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "chain/hex.hpp"
#include "chain/transaction.hpp"
#include "chain/units.hpp"

namespace broadcaster_itest {

namespace {

// anvil's deterministic account #2 (mnemonic "test test ... junk"): the funder of the tests' hot
// wallets. #0 and #1 belong to other suites.
constexpr std::string_view funder_key = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

template <std::size_t N>
std::array<std::uint8_t, N> random_bytes() {
  std::array<std::uint8_t, N> out{};
  std::uniform_int_distribution<unsigned> byte(0, 255);
  for (auto& b : out) b = static_cast<std::uint8_t>(byte(random_engine()));
  return out;
}

std::string uuid_v4() {
  auto b = random_bytes<16>();
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
  const std::string h = chain::to_hex(b, false);
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4), h.substr(20));
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", text.data(), millis);
}

}  // namespace

std::mt19937_64& random_engine() {
  static std::mt19937_64 engine{std::random_device{}()};
  return engine;
}

// ------------------------------------------------------------------ the chain

std::unique_ptr<broadcaster::eth_rpc> connect_node() {
  return std::make_unique<broadcaster::eth_rpc>(test_support::require_env("ETH_RPC_URL"), 10s);
}

chain::uint256 to_wei(std::string_view eth) {
  const auto parsed = chain::parse_units(eth, chain::eth_decimals);
  if (!parsed) throw std::invalid_argument(fmt::format("test amount \"{}\": {}", eth, parsed.message));
  return parsed.value;
}

chain::address random_address() { return chain::address(random_bytes<chain::address::size>()); }

hot_wallet funded_hot_wallet(broadcaster::eth_rpc& node, const chain::uint256& funding) {
  for (;;) {
    std::string key_hex = chain::to_hex(random_bytes<32>(), false);
    try {
      chain::private_key key(key_hex);
      hot_wallet wallet{key_hex, key.address()};
      transfer(node, chain::private_key(funder_key), wallet.address, funding);
      return wallet;
    } catch (const std::invalid_argument&) {
      // Not a valid secp256k1 secret (probability ~2^-128): draw again.
    }
  }
}

chain::hash256 transfer(broadcaster::eth_rpc& node, const chain::private_key& from, const chain::address& to,
                        const chain::uint256& value) {
  const std::uint64_t chain_id = node.chain_id();
  for (int attempt = 1;; ++attempt) {
    chain::legacy_transaction tx;
    tx.nonce = node.get_transaction_count(from.address(), "pending");
    // A fixed 1 gwei tip over twice the base fee. Not a multiple of eth_gasPrice: anvil suggests
    // the latest block's lowest tip, so paying double the suggestion would double it for everyone
    // on the node with every funding transfer.
    tx.gas_price = node.base_fee_per_gas().value_or(0) * 2 + chain::uint256(1'000'000'000);
    tx.gas_limit = 21000;
    tx.to = to;
    tx.value = value;
    tx.chain_id = chain_id;
    const auto signed_tx = chain::sign(tx, from);
    const auto result = node.send_raw_transaction(signed_tx.raw, signed_tx.hash);
    if (result.outcome == broadcaster::send_outcome::sent ||
        result.outcome == broadcaster::send_outcome::already_known) {
      std::optional<broadcaster::transaction_receipt> receipt;
      const bool mined = test_support::wait_until(
          [&] { return (receipt = node.get_transaction_receipt(signed_tx.hash)).has_value(); }, 30s, 50ms);
      if (!mined || !receipt->success) {
        throw std::runtime_error(fmt::format("transfer {} from {} to {}: {}", chain::to_hex(signed_tx.hash),
                                             from.address().to_checksum_string(), to.to_checksum_string(),
                                             mined ? "reverted" : "not mined within 30 s"));
      }
      return signed_tx.hash;
    }
    // Another client of the same sender may have taken the nonce between our read and our send.
    if (!result.nonce_too_low || attempt == 5) {
      throw std::runtime_error(
          fmt::format("transfer from {}: the node refused: {}", from.address().to_checksum_string(), result.message));
    }
  }
}

nlohmann::json transaction_by_hash(broadcaster::eth_rpc& node, const std::string& hash_hex) {
  return node.call("eth_getTransactionByHash", nlohmann::json::array({hash_hex}));
}

// ------------------------------------------------------------------ events

std::string event_payload(std::int64_t withdrawal_id, std::int64_t user_id, std::string_view to_address,
                          std::string_view amount, std::string_view chain) {
  return nlohmann::json{{"withdrawal_id", withdrawal_id},
                        {"user_id", user_id},
                        {"to_address", to_address},
                        {"amount", amount},
                        {"chain", chain}}
      .dump();
}

test_support::kafka_producer::message event_message(const std::string& topic, std::int64_t user_id, std::string payload,
                                                    std::int64_t outbox_id, std::int32_t partition) {
  test_support::kafka_producer::message m;
  m.topic = topic;
  m.key = std::to_string(user_id);
  m.payload = std::move(payload);
  m.headers = {{"event-type", "WithdrawalCreated"},
               {"event-id", uuid_v4()},
               {"created-at", rfc3339_now()},
               {"outbox-id", std::to_string(outbox_id)}};
  m.partition = partition;
  return m;
}

test_support::kafka_producer::message event_for(const std::string& topic, const withdrawal_row& w,
                                                std::int32_t partition) {
  // The outbox id only has to be unique per event here; the withdrawal id is.
  return event_message(topic, w.user_id, event_payload(w.id, w.user_id, w.to_address, w.amount, w.chain), w.id,
                       partition);
}

void insert_outbox_event(pqxx::work& tx, const std::string& topic, std::int64_t user_id, const std::string& payload) {
  const nlohmann::json headers{
      {"event-type", "WithdrawalCreated"}, {"event-id", uuid_v4()}, {"created-at", rfc3339_now()}};
  tx.exec_params0(
      "INSERT INTO outbox_messages (topic, key, payload, headers) "
      "VALUES ($1, $2, convert_to($3, 'UTF8'), $4::jsonb)",
      topic, std::to_string(user_id), payload, headers.dump());
}

}  // namespace broadcaster_itest
