#pragma once
// The confirmation tracker: a loop on its own thread with its own processor (own node and
// database connections). Every chain.confirm_poll_interval, for this worker's chain and hot wallet:
//   1. gauges: withdrawals per open status, oldest ages, the hot wallet's balance;
//   2. the chain in a few JSON-RPC batches: head, the account's nonce at the head and at the
//      confirmation depth; the new blocks up to the head with the hot wallet's receipts in them
//      (block_scanner: eth_getBlockReceipts per block, so the calls grow with blocks, not with
//      withdrawals in flight; the last block's hash re-checked each pass finds reorgs). A version
//      whose nonce is mined but whose receipt is in no scanned block is left for the next pass
//      (the node may have mined a block between answering the head and the nonce); still missing
//      then (mined before the scan started, or its nonce taken by another transaction), it is
//      asked with eth_getTransactionReceipt, as is every one when the node has no
//      eth_getBlockReceipts;
//   3. per signed/broadcast withdrawal (lowest nonce first, at most 200 per pass; a pass that
//      settled some of a full 200 is followed by the next at once, so a backlog drains at database
//      speed):
//      - a version mined chain.confirmations deep (block hash re-read each pass): payment with
//        status 1 → confirmed (tx_hash = the mined version); status 0 → failed + refunded;
//        cancel → failed + refunded ("cancelled");
//      - a recorded block that vanished or changed: broadcaster_reorgs_total, back to waiting, and
//        the bytes are sent again;
//      - no version mined, none known to the node, and the nonce used at the confirmation depth,
//        on two passes: another transaction took it, none of ours can land → failed + refunded
//        (nonce_taken), the counter moves past it;
//      - not mined: a cancel request gets a cancel version; the lowest unmined nonce's version,
//        older than rebroadcast_after, gets a fee-bumped replacement (at the cap: re-sent as it
//        is; later nonces wait behind it unbumped); a refused
//        one is re-sent every consumer.retry_backoff_max; a signed one nobody sent for
//        rebroadcast_after goes through processor::process_withdrawal();
//   4. pending withdrawals older than reconcile.pending_after (their event lost, dead-lettered or
//      late), or with a cancel request → processor::process_withdrawal(), each at most once per
//      pending_after.
// Refunds happen only in steps 3 and 4 and only on what the chain shows at depth (or, for a
// cancel, when nothing was ever sent). Errors are logged and retried on the next pass.
// Not thread-safe: run() on one thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "broadcaster/block_scanner.hpp"
#include "broadcaster/chain_view.hpp"
#include "broadcaster/health.hpp"
#include "broadcaster/metrics.hpp"
#include "broadcaster/processor.hpp"
#include "broadcaster/settings.hpp"
#include "broadcaster/version_store.hpp"
#include "common/database.hpp"
#include "common/logging.hpp"
#include "common/signals.hpp"

namespace broadcaster {

class confirmation_tracker {
 public:
  confirmation_tracker(const settings& config, processor& worker, common::connection_pool& pool, metrics& counters,
                       health& status, common::process_signals& signals);

  /// Passes until a stop is requested.
  void run();
  /// One pass; throws on database or node errors (run() logs them). True when the pass read a
  /// full batch of open withdrawals and settled some of them: more may be final now, and run()
  /// starts the next pass at once instead of after chain.confirm_poll_interval.
  bool poll_once();

 private:
  using receipt_map = std::map<std::int64_t, std::optional<transaction_receipt>>;  // by version id

  receipt_map fetch_receipts(const std::vector<store::open_withdrawal>& open, const chain_snapshot& chain);
  /// Steps 3's first three cases; true when the withdrawal is mined or settled (nothing to send).
  bool settle(const store::open_withdrawal& w, const chain_snapshot& chain, const receipt_map& receipts, bool& reorged);
  void drive_sending(const store::open_withdrawal& w, const chain_snapshot& chain, bool resend_now);
  void send(const store::version_row& version, bool again);
  void reconcile_pending(const std::vector<std::int64_t>& ids);

  const settings& config_;
  processor& worker_;
  common::connection_pool& pool_;
  metrics& metrics_;
  health& health_;
  common::process_signals& signals_;
  block_scanner scanner_;
  std::map<std::int64_t, std::chrono::steady_clock::time_point> reconciled_;  // pending id → last attempt
  std::set<std::int64_t> unfound_;   // open ids with a mined nonce and no receipt in the scan, last pass
  std::set<std::int64_t> deferred_;  // of those, the ones this pass leaves for the next
  std::map<std::int64_t, int> nonce_taken_suspects_;  // open id → passes that saw its nonce taken
  bool settled_any_ = false;                          // this pass confirmed or refunded a withdrawal
  common::repeated_warning error_warning_;            // the loop's last failure, logged at most every 30 s
};

}  // namespace broadcaster
