#pragma once
// process_withdrawal(): the one processing function every event source uses (Kafka, Redis
// Streams, the DB poll, and the tracker for stale pending and never-sent signed rows). The Kafka
// source first runs broadcast_batch() on what one poll fetched: the same steps 1-3 for many
// ordinary pending withdrawals at once, leaving everything else to process_withdrawal().
//
// Per withdrawal, under the database status guard:
//   1. lock the row (FOR UPDATE). Missing → dead_letter. Of another chain → skipped (its own
//      worker pays it; nothing is touched). Disagreeing with its event or unpayable (bad address
//      or amount) → dead_letter, and a pending one is failed and refunded in the same transaction.
//   2. pending → (a cancel request: failed + refunded) allocate a nonce under the
//      hot_wallet_nonces row lock, sign, store the first version (withdrawal_transactions) and the
//      withdrawal as signed; commit BEFORE anything is sent.
//   3. signed → record the send attempt (committed), then eth_sendRawTransaction(newest version).
//      Accepted / already known → broadcast. Refused → held: stays signed, the tracker retries it;
//      never refunded on a node's word (the bytes may be in some mempool). A cancel request on a
//      withdrawal whose bytes never left (no send attempt recorded: only versions from before
//      migration 000002 could be so) → failed, refunded, nonce released.
//   4. broadcast / confirmed / failed → duplicate, skipped (the tracker owns broadcast rows).
// Transient failures (node unreachable, timeouts, 5xx, lost DB connections, lock timeouts) are
// retried here with capped jittered backoff; a stop request (SIGTERM) during those waits returns
// `interrupted` so the caller leaves the event unacknowledged.
//
// Thread-safety: one processor per thread (it owns an eth_rpc connection). The pool, key,
// metrics, health and signals it refers to are shared and thread-safe; they must outlive it.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "broadcaster/eth_rpc.hpp"
#include "broadcaster/health.hpp"
#include "broadcaster/metrics.hpp"
#include "broadcaster/settings.hpp"
#include "broadcaster/transaction_builder.hpp"
#include "broadcaster/version_store.hpp"
#include "broadcaster/withdrawal_store.hpp"
#include "chain/signer.hpp"
#include "common/database.hpp"
#include "common/signals.hpp"
#include "events/withdrawal_created.hpp"

namespace broadcaster {

enum class outcome {
  broadcast,    // the node has the transaction; status broadcast (by us or a concurrent worker)
  duplicate,    // already broadcast, confirmed or failed: nothing done
  held,         // the node refused the send: stays signed, retried by the tracker with backoff
  skipped,      // a withdrawal of another chain: nothing touched
  refunded,     // cancelled before any byte left: failed and refunded
  dead_letter,  // the event or withdrawal is unusable: publish the event to the DLQ, then acknowledge
  interrupted,  // stop requested while retrying: do NOT acknowledge
};

std::string_view to_string(outcome value) noexcept;

struct process_result {
  outcome what = outcome::interrupted;
  std::optional<std::int64_t> withdrawal_id;
  std::string reason;   // dead_letter/held/refunded: why, for the DLQ `error` header and logs
  std::string tx_hash;  // broadcast: the transaction's hash
};

/// True for results after which the event may be acknowledged.
inline bool acknowledge(const process_result& r) noexcept { return r.what != outcome::interrupted; }

/// Why `row` cannot be paid as it is (bad address or amount), or empty; on success `to` and
/// `value` hold the recipient and the amount in wei. The wallet validates both; this guards
/// against rows written by other means.
std::string unpayable(const store::withdrawal_row& row, chain::address& to, chain::uint256& value);

class processor {
 public:
  /// `loop` names the calling loop for health beats ("source", "tracker").
  processor(const settings& config, std::uint64_t chain_id, const chain::private_key& key,
            common::connection_pool& pool, metrics& counters, health& status, common::process_signals& signals,
            std::string loop);

  /// Steps 1-4 for withdrawal `id`; `event` (may be null) is checked against the row.
  process_result process_withdrawal(std::int64_t id, const events::withdrawal_created* event);

  /// The fast path for a run of events (the Kafka source hands it what one poll fetched): the
  /// pending withdrawals of this chain among them that agree with their events, are payable and
  /// have no cancel request are locked (id order), signed with one fee quote and consecutive nonces
  /// and stored as signed in ONE transaction (committed before anything is sent, as in step 2),
  /// sent in ONE JSON-RPC batch, and moved to broadcast in one transaction. Returns the results of
  /// those it finished (outcome::broadcast), by withdrawal id; every other event (and every one
  /// when anything goes wrong: a refusal in the batch, a node or database error) is left for
  /// process_withdrawal(), which sees the stored state and does the careful work (a signed row
  /// re-sends the same bytes). Fewer than 2 events: nothing (the ordinary path is as fast).
  std::map<std::int64_t, process_result> broadcast_batch(const std::vector<const events::withdrawal_created*>& batch);

  /// db-poll: claims the oldest pending withdrawal nobody else holds (SKIP LOCKED) and runs
  /// steps 1-4 on it. nullopt when there is none.
  std::optional<process_result> process_next_pending();

  /// A bad event that names withdrawal `id`: a pending withdrawal of this worker's chain is failed
  /// and refunded with `reason`; returns dead_letter (or interrupted).
  process_result reject_withdrawal(std::int64_t id, const std::string& reason);

  /// Records the send attempt of `version` (committed first; skipped when `attempt_recorded`, i.e.
  /// the version was stored just now with its attempt), sends its bytes, and on acceptance moves a
  /// signed withdrawal to broadcast. Never fails or refunds anything. Throws on database errors;
  /// node errors come back as the outcome.
  send_result send_version(const store::version_row& version, bool attempt_recorded = false);

  /// Signs a replacement of open withdrawal `w` at the same nonce: a payment (same recipient and
  /// amount) or a cancel (0-value self-transfer), fees bumped from `previous` (at least +10 %,
  /// at least the market's, never above the cap), and stores it. nullopt when the cap leaves no
  /// room, when `only_if_market_higher` and the market's max fee is not above the previous one, or
  /// when the withdrawal is no longer open. Throws on node or database errors.
  std::optional<store::version_row> replace(const store::open_withdrawal& w, store::version_kind kind,
                                            const store::version_row& previous, bool only_if_market_higher);

  /// The `chain` value of the withdrawals this worker pays (chain.name).
  const std::string& chain_name() const noexcept { return config_.chain.name; }
  /// The node connection of this processor (the tracker shares it).
  eth_rpc& rpc() noexcept { return rpc_; }
  const chain::address& hot_wallet() const noexcept { return from_; }
  /// EIP-55 spelling of hot_wallet(), as stored in withdrawals.from_address.
  const std::string& hot_wallet_text() const noexcept { return from_text_; }

 private:
  enum class selector { by_id, next_pending };
  struct attempt_result;

  template <class Attempt>
  std::optional<process_result> with_retries(Attempt&& attempt);

  attempt_result attempt(selector which, std::int64_t id, const events::withdrawal_created* event);
  attempt_result send(const store::version_row& version, bool attempt_recorded);
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
