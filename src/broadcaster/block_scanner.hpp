#pragma once
// The confirmation tracker's view of the chain, block by block: it follows the chain from a start
// block up to the head and keeps the receipts of one account's transactions (the hot wallet's),
// so the node is asked per block, not per transaction in flight.
//
// Per advance(head), in JSON-RPC batches of up to 16 blocks (one HTTP request each):
//   - eth_getBlockByNumber(last scanned, false): its hash is compared with the one recorded. Any
//     reorg whose fork point is at or below the last scanned block changes (or removes) that block,
//     so this one check finds every reorg; the block is then dropped with its receipts and the
//     check repeats one block lower until the hashes agree (a rewind);
//   - per new block n up to head: eth_getBlockByNumber(n, false) and eth_getBlockReceipts(n). A
//     block is taken only when its parentHash is the previous block's hash and its receipts are
//     the header's transactions, all with its hash; otherwise the node changed under us and the
//     rest waits for the next advance.
// The first advance starts `confirmations` + 16 blocks below the head: older receipts are not in the
// scan (the caller asks those per transaction). At most 1024 new blocks per advance.
// A receipt found here is trusted (its block was re-checked by this advance); a transaction not
// found here may still be mined below the first block scanned, so the caller asks the node for it.
// Receipts stay until forget() (their withdrawal is final) or until their block is 4096 blocks
// below the window of confirmations.
// Memory: the number and hash of each block of that window (at most confirmations + 4097 blocks,
// whatever they hold) and one receipt per transaction of ours not yet forgotten; nothing stays
// per forgotten transaction.
//
// A node without eth_getBlockReceipts (JSON-RPC "method not found") turns the scanner off for
// the life of the process: supported() becomes false, logged once, and the caller asks per
// transaction (eth_getTransactionReceipt), as before this scanner existed.
//
// Throws rpc_unavailable / rpc_error from the node (the scan keeps what it had; call again).
// Not thread-safe (uses the caller's eth_rpc).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "broadcaster/eth_rpc.hpp"
#include "chain/address.hpp"

namespace broadcaster {

class block_scanner {
 public:
  block_scanner(const chain::address& account, std::uint64_t confirmations);

  /// Scans up to `head` (see above). No-op once !supported().
  void advance(eth_rpc& rpc, std::uint64_t head);

  /// False once the node answered "method not found" to eth_getBlockReceipts.
  bool supported() const noexcept { return supported_; }

  /// The receipt of `tx_hash` (0x + lower-case hex) if it is in a scanned block.
  std::optional<transaction_receipt> find(const std::string& tx_hash) const;

  /// Drops the receipt of `tx_hash` (its withdrawal is final: no need to keep it).
  void forget(const std::string& tx_hash);
  /// Forgets everything: the next advance starts again below the head as the first one did.
  void reset() noexcept;

  /// What the scanner holds (see "Memory" above): receipts not yet forgotten, blocks in the window.
  std::size_t receipts_held() const noexcept { return receipts_.size(); }
  std::size_t blocks_held() const noexcept { return blocks_.size(); }

 private:
  struct held_receipt {
    std::uint64_t block;  // the number of the scanned block it came with
    transaction_receipt receipt;
  };

  void drop_last();
  void evict(std::uint64_t head);
  /// Drops the receipts that came with the blocks numbered first..last.
  void drop_receipts(std::uint64_t first, std::uint64_t last);

  const std::string account_;  // lower-case hex
  const std::uint64_t confirmations_;
  bool supported_ = true;
  std::map<std::uint64_t, std::string> blocks_;             // number → hash
  std::unordered_map<std::string, held_receipt> receipts_;  // by transaction hash
};

}  // namespace broadcaster
