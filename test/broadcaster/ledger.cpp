#include "ledger.hpp"

#include <cstdlib>
#include <iostream>
#include <random>
#include <regex>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "chain/hex.hpp"
#include "chain/units.hpp"

namespace broadcaster_itest {

namespace {

using json = nlohmann::json;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

test_anvil::test_anvil() {
  const std::string binary = test_support::require_env("OUTBOX_SERVICES_ROOT") + "/bin/anvil";
  process_ = std::make_unique<test_support::child_process>(
      binary, std::vector<std::string>{"--host", "127.0.0.1", "--port", "0", "--chain-id", "31337"},
      std::map<std::string, std::string>{}, test_support::new_log_path("anvil"));
  static const std::regex listening("Listening on 127\\.0\\.0\\.1:(\\d+)");
  std::smatch match;
  const bool up = test_support::wait_until(
      [&] {
        const std::string text = process_->log();
        return std::regex_search(text, match, listening);
      },
      30s, 50ms);
  INFO("anvil log:\n" << process_->log());
  REQUIRE(up);
  url_ = fmt::format("http://127.0.0.1:{}", match[1].str());
}

std::unique_ptr<broadcaster::eth_rpc> test_anvil::connect() const {
  return std::make_unique<broadcaster::eth_rpc>(url_, 10s);
}

automine_off::automine_off(broadcaster::eth_rpc& node) : node_(node) {
  node_.call("evm_setAutomine", json::array({false}));
}

automine_off::~automine_off() {
  try {
    node_.call("evm_setAutomine", json::array({true}));
  } catch (const std::exception& e) {
    WARN("could not turn automine back on: " << e.what());
  }
}

void set_balance(broadcaster::eth_rpc& node, const chain::address& account, const chain::uint256& wei) {
  node.call("anvil_setBalance", json::array({account.to_lower_hex(), broadcaster::to_quantity(wei)}));
}

hot_wallet fresh_hot_wallet(broadcaster::eth_rpc& node, const chain::uint256& wei) {
  static std::mt19937_64 engine{std::random_device{}()};
  for (;;) {
    std::array<std::uint8_t, 32> bytes{};
    for (auto& b : bytes) b = static_cast<std::uint8_t>(engine());
    const std::string key_hex = chain::to_hex(bytes, false);
    try {
      const chain::private_key key(key_hex);
      hot_wallet wallet{key_hex, key.address()};
      set_balance(node, wallet.address, wei);
      return wallet;
    } catch (const std::invalid_argument&) {
      // Not a valid secp256k1 secret (probability ~2^-128): draw again.
    }
  }
}

void mine(broadcaster::eth_rpc& node) { node.call("evm_mine", json::array()); }

std::uint64_t block_number(broadcaster::eth_rpc& node) {
  return broadcaster::parse_quantity_u64(node.call("eth_blockNumber", json::array()).get<std::string>());
}

worker_setup on_node(worker_setup setup, const std::string& node_url) {
  setup.extra_env["ETH_RPC_URL"] = node_url;
  return setup;
}

ledger_figures check_ledger(pqxx::connection& db, broadcaster::eth_rpc& node, const std::vector<std::int64_t>& ids,
                            const chain::address& hot, const std::map<std::int64_t, std::string>& initial_balances) {
  ledger_figures out;
  const auto rows = load_withdrawals(db, ids);
  INFO("withdrawals:\n" << describe(rows));
  CHECK(rows.size() == ids.size());
  std::map<std::string, chain::uint256> paid_to;  // recipient (lower hex) → what confirmed rows paid it
  std::map<std::int64_t, chain::uint256> debits;
  std::map<std::int64_t, chain::uint256> refunds;
  for (const auto& w : rows) {
    INFO("withdrawal " << w.id << " " << w.status << " to " << w.to_address << " amount " << w.amount);
    const chain::uint256 wei = to_wei(w.amount);
    ++out.withdrawals;
    out.debited_wei += wei;
    debits[w.user_id] += wei;
    const auto recipient = chain::address::parse(w.to_address);
    REQUIRE(recipient.has_value());
    const bool paid = w.status == "confirmed";
    const bool refunded = w.status == "failed";
    CHECK((paid != refunded));  // final, and exactly one of the two
    if (paid) {
      ++out.paid;
      paid_to[recipient->to_lower_hex()] += wei;
      REQUIRE(w.tx_hash.has_value());
      const auto tx = transaction_by_hash(node, *w.tx_hash);
      INFO("eth_getTransactionByHash(" << *w.tx_hash << ") = " << tx.dump());
      REQUIRE(tx.is_object());
      CHECK(lower(tx.at("from").get<std::string>()) == hot.to_lower_hex());
      CHECK(lower(tx.at("to").get<std::string>()) == recipient->to_lower_hex());
      CHECK(broadcaster::parse_quantity(tx.at("value").get<std::string>()) == wei);
      chain::hash256 hash{};
      chain::from_hex(*w.tx_hash, hash);
      const auto receipt = node.get_transaction_receipt(hash);
      REQUIRE(receipt.has_value());
      CHECK(receipt->success);
    }
    if (refunded) {
      ++out.refunded;
      out.refunded_wei += wei;
      refunds[w.user_id] += wei;
      paid_to.try_emplace(recipient->to_lower_hex(), 0);
    }
  }
  for (const auto& [recipient, expected] : paid_to) {
    const auto holds = node.get_balance(*chain::address::parse(recipient));
    INFO("recipient " << recipient << " holds " << holds.str() << " wei, confirmed withdrawals paid it "
                      << expected.str());
    CHECK(holds == expected);  // a refunded withdrawal that was also paid would show here
    out.paid_wei += holds;
  }
  for (const auto& [user, initial] : initial_balances) {
    const chain::uint256 start = to_wei(initial);
    const chain::uint256 expected = start - debits[user] + refunds[user];
    const std::string text = balance_text(db, user);
    INFO("user " << user << " balance " << text);
    CHECK(to_wei(text) == expected);
  }
  CHECK(out.debited_wei == out.paid_wei + out.refunded_wei);
  std::cout << fmt::format(
      "ledger: {} withdrawals, {} paid on chain, {} refunded; debited {} wei = paid {} + "
      "refunded {}\n",
      out.withdrawals, out.paid, out.refunded, out.debited_wei.str(), out.paid_wei.str(), out.refunded_wei.str());
  return out;
}

}  // namespace broadcaster_itest
