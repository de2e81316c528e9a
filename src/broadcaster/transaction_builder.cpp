#include "broadcaster/transaction_builder.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

namespace broadcaster {

fee_market_needs market_needs(const chain_settings& settings) {
  fee_market_needs needs;
  if (settings.tx_type == transaction_type::legacy) {
    needs.gas_price = !settings.max_fee_per_gas.has_value();
  } else {
    needs.priority_fee = !settings.max_priority_fee_per_gas.has_value();
    needs.base_fee = !settings.max_fee_per_gas.has_value();
  }
  return needs;
}

fee_quote choose_fees(const chain_settings& settings, const fee_market& market) {
  fee_quote out;
  if (settings.tx_type == transaction_type::legacy) {
    if (settings.max_fee_per_gas) {
      out.max_fee_per_gas = *settings.max_fee_per_gas;
    } else if (market.gas_price) {
      out.max_fee_per_gas = std::min(*market.gas_price, settings.max_fee_per_gas_cap);
    } else {
      throw std::runtime_error("fees: the node's gas price is unknown (eth_gasPrice)");
    }
    out.max_priority_fee_per_gas = out.max_fee_per_gas;
    return out;
  }
  if (settings.max_priority_fee_per_gas) {
    out.max_priority_fee_per_gas = *settings.max_priority_fee_per_gas;
  } else if (market.max_priority_fee_per_gas) {
    out.max_priority_fee_per_gas = *market.max_priority_fee_per_gas;
  } else {
    throw std::runtime_error("fees: the node's priority fee is unknown (eth_maxPriorityFeePerGas)");
  }
  if (!settings.max_priority_fee_per_gas) {
    out.max_priority_fee_per_gas = std::min(out.max_priority_fee_per_gas, settings.max_fee_per_gas_cap);
  }
  if (settings.max_fee_per_gas) {
    out.max_fee_per_gas = *settings.max_fee_per_gas;
  } else if (market.base_fee_per_gas) {
    out.max_fee_per_gas =
        std::min(*market.base_fee_per_gas * 2 + out.max_priority_fee_per_gas, settings.max_fee_per_gas_cap);
  } else {
    throw std::runtime_error(
        "fees: the latest block has no baseFeePerGas (a chain before London): set chain.tx_type = \"legacy\"");
  }
  if (out.max_priority_fee_per_gas > out.max_fee_per_gas) {
    throw std::runtime_error(fmt::format("fees: chain.max_fee_per_gas {} is below the priority fee {}",
                                         out.max_fee_per_gas.str(), out.max_priority_fee_per_gas.str()));
  }
  return out;
}

std::optional<fee_quote> bumped_fees(const chain_settings& settings, const fee_quote& previous,
                                     const fee_quote& market) {
  // +10 %, rounded up.
  const auto plus_ten_percent = [](const chain::uint256& fee) { return (fee * 11 + 9) / 10; };
  fee_quote out;
  out.max_fee_per_gas = std::max(plus_ten_percent(previous.max_fee_per_gas), market.max_fee_per_gas);
  out.max_priority_fee_per_gas =
      std::max(plus_ten_percent(previous.max_priority_fee_per_gas), market.max_priority_fee_per_gas);
  if (settings.tx_type == transaction_type::legacy) out.max_priority_fee_per_gas = out.max_fee_per_gas;
  const auto& cap = settings.max_fee_per_gas_cap;
  if (out.max_fee_per_gas > cap) out.max_fee_per_gas = cap;
  if (out.max_priority_fee_per_gas > out.max_fee_per_gas) out.max_priority_fee_per_gas = out.max_fee_per_gas;
  if (out.max_fee_per_gas < plus_ten_percent(previous.max_fee_per_gas) ||
      out.max_priority_fee_per_gas < plus_ten_percent(previous.max_priority_fee_per_gas)) {
    return std::nullopt;
  }
  return out;
}

payment cancel_payment(std::uint64_t chain_id, std::uint64_t nonce, const chain::address& hot_wallet) {
  return {chain_id, nonce, hot_wallet, 0};
}

chain::signed_transaction build_and_sign(const chain_settings& settings, const payment& what, const fee_quote& fees,
                                         const chain::private_key& key) {
  // The fields both transaction types share; the fee fields differ.
  auto payment_fields = [&](auto tx) {
    tx.chain_id = what.chain_id;
    tx.nonce = what.nonce;
    tx.gas_limit = settings.gas_limit;
    tx.to = what.to;
    tx.value = what.value;
    return tx;
  };
  if (settings.tx_type == transaction_type::legacy) {
    auto tx = payment_fields(chain::legacy_transaction{});
    tx.gas_price = fees.max_fee_per_gas;
    return chain::sign(tx, key);
  }
  auto tx = payment_fields(chain::eip1559_transaction{});
  tx.max_priority_fee_per_gas = fees.max_priority_fee_per_gas;
  tx.max_fee_per_gas = fees.max_fee_per_gas;
  return chain::sign(tx, key);
}

}  // namespace broadcaster
