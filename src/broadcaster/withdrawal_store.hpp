#pragma once
// The broadcaster's SQL on withdrawals, accounts (refunds) and the hot wallet's nonce counter.
// Each function runs inside the caller's transaction and never commits. State changes are
// conditional (WHERE status = <expected>) and report whether they applied, so a stale or
// concurrent worker changes nothing. The versions of a withdrawal's transaction (every signed
// variant, withdrawal_transactions) are in version_store.hpp.
//
// Addresses are stored EIP-55 checksummed (from_address, hot_wallet_nonces.address), transaction
// hashes as 0x + 64 lower-case hex digits, raw transactions as bytea.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/transaction_base>

#include "broadcaster/withdrawal_status.hpp"

namespace broadcaster::store {

struct withdrawal_row {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string chain;
  std::string to_address;
  std::string amount;  // numeric as text
  withdrawal_status status = withdrawal_status::pending;
  std::optional<std::string> from_address;
  std::optional<std::int64_t> nonce;
  std::optional<std::string> tx_hash;
  bool cancel_requested = false;
};

/// SELECT … WHERE id = $1 FOR UPDATE. nullopt when no such withdrawal.
std::optional<withdrawal_row> lock_withdrawal(pqxx::transaction_base& tx, std::int64_t id);
/// lock_withdrawal() of every id in one statement, locked (and returned) in id order; ids with no
/// row are left out.
std::vector<withdrawal_row> lock_withdrawals(pqxx::transaction_base& tx, const std::vector<std::int64_t>& ids);

/// A PostgreSQL array literal of ids ("{1,2,3}"), for `= ANY($1::bigint[])`.
std::string id_array(const std::vector<std::int64_t>& ids);

/// The oldest pending withdrawal of `chain` that no other transaction has locked
/// (FOR UPDATE SKIP LOCKED): the db-poll source's claim.
std::optional<withdrawal_row> lock_next_pending(pqxx::transaction_base& tx, const std::string& chain);

bool nonce_row_exists(pqxx::transaction_base& tx, const std::string& chain, const std::string& address);
/// INSERT … ON CONFLICT DO NOTHING: the first worker to get here initialises the counter.
void init_nonce_row(pqxx::transaction_base& tx, const std::string& chain, const std::string& address,
                    std::uint64_t next_nonce);

/// Locks the hot_wallet_nonces row (FOR UPDATE) and takes the smallest released nonce, or else
/// next_nonce (incrementing it). nullopt when the row does not exist (call init_nonce_row first).
/// The lock is held until the caller's transaction ends: sign and store within it.
std::optional<std::uint64_t> allocate_nonce(pqxx::transaction_base& tx, const std::string& chain,
                                            const std::string& address);
/// allocate_nonce() `count` times in three statements: the smallest released nonces first, then
/// consecutive ones from next_nonce; ascending. Empty when the row does not exist.
std::vector<std::uint64_t> allocate_nonces(pqxx::transaction_base& tx, const std::string& chain,
                                           const std::string& address, std::size_t count);

/// The chain used every nonce below `used_on_chain` (a count the node reports at the confirmation
/// depth): the counter moves up to it and released nonces below it are dropped.
void resync_nonce(pqxx::transaction_base& tx, const std::string& chain, const std::string& address,
                  std::uint64_t used_on_chain);

/// signed → broadcast. Returns the seconds from the withdrawal's creation to now, or nullopt
/// when it was not signed (another worker got there first, or it is already further on).
std::optional<double> mark_broadcast(pqxx::transaction_base& tx, std::int64_t id);

/// signed|broadcast → confirmed; tx_hash and raw_tx become those of the mined version.
/// False when the status was neither.
bool mark_confirmed(pqxx::transaction_base& tx, std::int64_t id, std::int64_t mined_version_id);

/// pending|signed|broadcast → failed with `reason`, the amount back on the user's balance and
/// every version discarded, in the caller's transaction. The nonce is offered for reuse only with
/// `release_nonce` AND when no version was ever sent (bytes that may have left the process keep
/// their nonce for ever). False when the withdrawal was already confirmed or failed.
bool fail_and_refund(pqxx::transaction_base& tx, std::int64_t id, const std::string& reason, bool release_nonce);

/// Ids of pending withdrawals of `chain` created longer ago than `older_than`, or with a cancel
/// request, oldest first: the reconciler re-drives them.
std::vector<std::int64_t> stale_pending(pqxx::transaction_base& tx, const std::string& chain,
                                        std::chrono::milliseconds older_than, int limit);

/// The gauges' view of `chain`: counts per open status and the oldest age in each.
struct status_summary {
  std::int64_t pending = 0;
  std::int64_t signed_ = 0;
  std::int64_t broadcast = 0;
  double oldest_pending_seconds = 0;
  double oldest_signed_seconds = 0;     // since signing
  double oldest_broadcast_seconds = 0;  // since the first broadcast
};
status_summary summarize(pqxx::transaction_base& tx, const std::string& chain);

}  // namespace broadcaster::store
