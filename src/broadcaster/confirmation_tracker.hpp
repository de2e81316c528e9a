#pragma once
// The confirmation tracker: a loop on its own thread with its own processor (own node and
// database connections). Every chain.confirm_poll_interval:
//   - withdrawals in status broadcast (this chain), up to 100 per pass, resuming after the last id
//     seen so a long backlog is walked fairly: eth_getTransactionReceipt → status 1: confirmed;
//     status 0: failed + refunded (the nonce was consumed on chain, so it is not released);
//     no receipt and broadcast longer than rebroadcast_after ago → re-sent (the same bytes), at
//     most once per rebroadcast_after. A node that refuses a re-send leaves the withdrawal in
//     broadcast for an operator (the transaction may still be in other nodes' pools);
//   - withdrawals still signed rebroadcast_after after signing (their event is being retried or
//     was lost) → processor::process_withdrawal().
// Errors are logged and retried on the next pass. Not thread-safe: run() on one thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "broadcaster/health.hpp"
#include "broadcaster/metrics.hpp"
#include "broadcaster/processor.hpp"
#include "broadcaster/settings.hpp"
#include "broadcaster/withdrawal_store.hpp"
#include "common/database.hpp"
#include "common/signals.hpp"

namespace broadcaster {

class confirmation_tracker {
 public:
  confirmation_tracker(const settings& config, processor& worker, common::connection_pool& pool, metrics& counters,
                       health& status, common::process_signals& signals);

  /// Passes until a stop is requested.
  void run();
  /// One pass; throws on database or node errors (run() logs them).
  void poll_once();

 private:
  void check_receipts(const std::vector<store::broadcast_transaction>& open);
  void resume_stale_signed(const std::vector<std::int64_t>& ids);

  const settings& config_;
  processor& worker_;
  common::connection_pool& pool_;
  metrics& metrics_;
  health& health_;
  common::process_signals& signals_;
  std::int64_t after_id_ = 0;
  std::map<std::int64_t, std::chrono::steady_clock::time_point> last_sent_;
  std::string last_error_;
  std::chrono::steady_clock::time_point last_error_at_{};
};

}  // namespace broadcaster
