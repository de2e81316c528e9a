#pragma once
// From a withdrawal to a signed Ethereum transaction: fee choice and signing.
// Pure functions (the node is asked for "auto" fees by the caller); thread-safe.

#include <cstdint>
#include <optional>
#include <string>

#include "broadcaster/settings.hpp"
#include "chain/address.hpp"
#include "chain/signer.hpp"
#include "chain/transaction.hpp"
#include "chain/uint256.hpp"

namespace broadcaster {

/// What the node says about fees right now (fields the caller did not need stay empty).
struct fee_market {
  std::optional<chain::uint256> base_fee_per_gas;          // latest block
  std::optional<chain::uint256> max_priority_fee_per_gas;  // eth_maxPriorityFeePerGas
  std::optional<chain::uint256> gas_price;                 // eth_gasPrice
};

/// The fees a transaction is signed with. Legacy: gas_price = max_fee_per_gas.
struct fee_quote {
  chain::uint256 max_fee_per_gas = 0;
  chain::uint256 max_priority_fee_per_gas = 0;
};

/// Which market data choose_fees() needs for these settings (to avoid useless RPC calls).
struct fee_market_needs {
  bool base_fee = false;
  bool priority_fee = false;
  bool gas_price = false;
};
fee_market_needs market_needs(const chain_settings& settings);

/// EIP-1559: priority = configured or the node's suggestion; max fee = configured or
/// 2 * base fee + priority (survives six full blocks of base-fee growth).
/// Legacy: gas price = configured max_fee_per_gas or the node's eth_gasPrice.
/// "auto" values never exceed chain.max_fee_per_gas_cap (the priority fee then never exceeds the
/// max fee).
/// Throws std::runtime_error naming the missing market datum (a node before London for eip1559 "auto"),
/// and when a configured max fee is below the chosen priority fee.
fee_quote choose_fees(const chain_settings& settings, const fee_market& market);

/// The fees of a replacement for a version signed with `previous`: each at least 10 % higher
/// (rounded up: nodes refuse a replacement below that), at least what `market` asks for now, never
/// above chain.max_fee_per_gas_cap. nullopt when the cap leaves no room for a +10 % replacement.
std::optional<fee_quote> bumped_fees(const chain_settings& settings, const fee_quote& previous,
                                     const fee_quote& market);

struct payment {
  std::uint64_t chain_id = 0;
  std::uint64_t nonce = 0;
  chain::address to;
  chain::uint256 value = 0;  // wei
};

/// The cancel of nonce `nonce`: a 0-value transfer from the hot wallet to itself.
payment cancel_payment(std::uint64_t chain_id, std::uint64_t nonce, const chain::address& hot_wallet);

/// Builds the value transfer (no data) of the configured type and signs it. Deterministic:
/// the same inputs give the same bytes and hash. Throws std::invalid_argument (chain::sign's checks).
chain::signed_transaction build_and_sign(const chain_settings& settings, const payment& what, const fee_quote& fees,
                                         const chain::private_key& key);

}  // namespace broadcaster
