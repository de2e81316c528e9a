#pragma once
// process_withdrawal(): the one processing function every event source uses (Kafka, Redis
// Streams, the DB poll, and the confirmation tracker for stale signed rows).
//
// Per withdrawal, under the database status guard:
//   1. lock the row (FOR UPDATE). Missing, disagreeing with its event, on a chain this worker does
//      not serve, or unpayable (bad address/amount) → dead_letter (a pending one is failed and
//      refunded in the same transaction).
//   2. pending → allocate a nonce under the hot_wallet_nonces row lock, sign, store raw_tx,
//      tx_hash, nonce, from_address with status signed; commit BEFORE anything is sent.
//   3. signed → eth_sendRawTransaction(raw_tx) (the same bytes on every redelivery).
//      accepted / already known → broadcast. Refused for good → failed + refund (+ nonce released
//      when the transaction never reached the chain), in one transaction.
//   4. broadcast / confirmed / failed → duplicate, skipped.
// Transient failures (node unreachable, timeouts, 5xx, lost DB connections, lock timeouts) are
// retried here with capped jittered backoff; a stop request (SIGTERM) during those waits returns
// `interrupted` so the caller leaves the event unacknowledged.
//
// Thread-safety: one processor per thread (it owns an eth_rpc connection). The pool, key,
// metrics, health and signals it refers to are shared and thread-safe; they must outlive it.

#include <cstdint>
#include <optional>
#include <string>

#include "broadcaster/eth_rpc.hpp"
#include "broadcaster/health.hpp"
#include "broadcaster/metrics.hpp"
#include "broadcaster/settings.hpp"
#include "broadcaster/transaction_builder.hpp"
#include "broadcaster/withdrawal_event.hpp"
#include "chain/hex.hpp"
#include "chain/signer.hpp"
#include "common/database.hpp"
#include "common/signals.hpp"

namespace broadcaster {

enum class outcome {
  broadcast,    // the node has the transaction; status broadcast (by us or a concurrent worker)
  duplicate,    // already broadcast, confirmed or failed: nothing done
  rejected,     // the node refused the transaction for good: failed and refunded
  dead_letter,  // the event or withdrawal is unusable: publish the event to the DLQ, then acknowledge
  interrupted,  // stop requested while retrying: do NOT acknowledge
};

std::string_view to_string(outcome value) noexcept;

struct process_result {
  outcome what = outcome::interrupted;
  std::optional<std::int64_t> withdrawal_id;
  std::string reason;   // dead_letter/rejected: why, for the DLQ `error` header and logs
  std::string tx_hash;  // broadcast: the transaction's hash
};

/// True for results after which the event may be acknowledged.
inline bool acknowledge(const process_result& r) noexcept { return r.what != outcome::interrupted; }

class processor {
 public:
  /// `loop` names the calling loop for health beats ("source", "tracker").
  processor(const settings& config, std::uint64_t chain_id, const chain::private_key& key,
            common::connection_pool& pool, metrics& counters, health& status, common::process_signals& signals,
            std::string loop);

  /// Steps 1-4 for withdrawal `id`; `event` (may be null) is checked against the row.
  process_result process_withdrawal(std::int64_t id, const withdrawal_event* event);

  /// db-poll: claims the oldest pending withdrawal nobody else holds (SKIP LOCKED) and runs
  /// steps 1-4 on it. nullopt when there is none.
  std::optional<process_result> process_next_pending();

  /// A bad event that names withdrawal `id`: a pending withdrawal is failed and refunded with
  /// `reason`; returns dead_letter (or interrupted).
  process_result reject_withdrawal(std::int64_t id, const std::string& reason);

  /// The node connection of this processor (the tracker shares it).
  eth_rpc& rpc() noexcept { return rpc_; }
  const chain::address& hot_wallet() const noexcept { return from_; }

 private:
  enum class selector { by_id, next_pending };
  struct attempt_result;
  struct signed_withdrawal {
    std::int64_t id = 0;
    chain::bytes raw;
    chain::hash256 hash{};
    std::string tx_hash;
  };

  template <class Attempt>
  std::optional<process_result> with_retries(Attempt&& attempt);

  attempt_result attempt(selector which, std::int64_t id, const withdrawal_event* event);
  attempt_result send(const signed_withdrawal& withdrawal);
  fee_quote quote_fees();
  void ensure_nonce_row();

  const settings& config_;
  const std::uint64_t chain_id_;
  const chain::private_key& key_;
  const chain::address from_;
  const std::string from_text_;  // EIP-55
  common::connection_pool& pool_;
  metrics& metrics_;
  health& health_;
  common::process_signals& signals_;
  const std::string loop_;
  eth_rpc rpc_;
  bool nonce_row_ready_ = false;
};

}  // namespace broadcaster
