#pragma once
// What the tracker asks the node once per pass, in JSON-RPC batches (a handful of HTTP requests
// per pass, whatever the number of open withdrawals). Throws rpc_unavailable / rpc_error.
// Not thread-safe (uses the caller's eth_rpc).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "broadcaster/eth_rpc.hpp"
#include "chain/address.hpp"
#include "chain/uint256.hpp"

namespace broadcaster {

struct chain_snapshot {
  std::uint64_t head = 0;         // latest block number
  std::uint64_t mined_count = 0;  // the account's nonce at the latest block: nonces below it are mined
  std::uint64_t final_count = 0;  // its nonce at head - confirmations + 1: nonces below it are final
  chain::uint256 balance = 0;     // at the latest block, wei
};

/// Two batches: [eth_blockNumber, eth_getTransactionCount(latest), eth_getBalance(latest)], then
/// eth_getTransactionCount at the confirmation depth (skipped when confirmations is 1).
chain_snapshot read_chain(eth_rpc& rpc, const chain::address& account, std::uint64_t confirmations);

/// eth_getTransactionReceipt of every hash (0x…), in one batch; nullopt where not mined.
std::vector<std::optional<transaction_receipt>> read_receipts(eth_rpc& rpc, const std::vector<std::string>& hashes);

/// True when the node knows any of `hashes` (eth_getTransactionByHash, in one batch): pending or
/// mined, even while its receipt is not indexed yet.
bool any_known(eth_rpc& rpc, const std::vector<std::string>& hashes);

/// Blocks deep a receipt in `block` is when the head is `head` (1 = in the head block).
inline std::uint64_t depth(std::uint64_t head, std::uint64_t block) noexcept {
  return head >= block ? head - block + 1 : 0;
}

}  // namespace broadcaster
