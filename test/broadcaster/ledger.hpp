#pragma once
// Money checks and chain faults for the broadcaster's integration suites: an anvil of the test's
// own (for tests that stop mining or reorganise the chain: the shared node stays untouched),
// hot wallets funded with anvil_setBalance, and the ledger check every money test ends with.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <pqxx/connection>

#include "broadcaster_harness.hpp"

namespace broadcaster_itest {

/// anvil ($OUTBOX_SERVICES_ROOT/bin/anvil) on a free loopback port, killed at destruction.
class test_anvil {
 public:
  test_anvil();
  const std::string& url() const noexcept { return url_; }
  std::unique_ptr<broadcaster::eth_rpc> connect() const;
  std::string log() const { return process_->log(); }

 private:
  std::unique_ptr<test_support::child_process> process_;
  std::string url_;
};

/// evm_setAutomine(false) for a scope; automine comes back on however the scope is left.
class automine_off {
 public:
  explicit automine_off(broadcaster::eth_rpc& node);
  ~automine_off();
  automine_off(const automine_off&) = delete;
  automine_off& operator=(const automine_off&) = delete;

 private:
  broadcaster::eth_rpc& node_;
};

/// A fresh key whose balance is set to `wei` with anvil_setBalance (no transaction, no mining).
hot_wallet fresh_hot_wallet(broadcaster::eth_rpc& node, const chain::uint256& wei);
void set_balance(broadcaster::eth_rpc& node, const chain::address& account, const chain::uint256& wei);
/// evm_mine: one block.
void mine(broadcaster::eth_rpc& node);
std::uint64_t block_number(broadcaster::eth_rpc& node);

/// A worker environment on `node_url` instead of the shared anvil.
worker_setup on_node(worker_setup setup, const std::string& node_url);

struct ledger_figures {
  std::size_t withdrawals = 0;
  std::size_t paid = 0;
  std::size_t refunded = 0;
  chain::uint256 debited_wei = 0;
  chain::uint256 paid_wei = 0;  // what the recipients hold
  chain::uint256 refunded_wei = 0;
};

/// The ledger check: every withdrawal of `ids` is final and either paid on chain (confirmed, its
/// mined transaction pays the row's recipient the row's amount from `hot`) or refunded (failed),
/// never both; each recipient holds exactly what its confirmed withdrawals paid it; each user's
/// balance is `initial` - its debits + its refunds; and the sum of debits equals the sum of
/// on-chain payments plus refunds. Reports failures with CHECK and prints the figures.
ledger_figures check_ledger(pqxx::connection& db, broadcaster::eth_rpc& node, const std::vector<std::int64_t>& ids,
                            const chain::address& hot, const std::map<std::int64_t, std::string>& initial_balances);

}  // namespace broadcaster_itest
