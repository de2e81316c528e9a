#pragma once
// Every SQL statement of the broadcaster, in one place. Each function runs inside the caller's
// transaction and never commits. State changes are conditional (WHERE status = <expected>) and
// report whether they applied, so a stale or concurrent worker changes nothing.
//
// Addresses are stored EIP-55 checksummed (from_address, hot_wallet_nonces.address), transaction
// hashes as 0x + 64 lower-case hex digits, raw transactions as bytea.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/transaction_base>

namespace broadcaster::store {

struct withdrawal_row {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string chain;
  std::string to_address;
  std::string amount;  // numeric as text
  std::string status;  // pending | signed | broadcast | confirmed | failed
  std::optional<std::string> from_address;
  std::optional<std::int64_t> nonce;
  std::optional<std::string> tx_hash;
  std::optional<std::string> raw_tx_hex;  // without 0x
};

/// SELECT … WHERE id = $1 FOR UPDATE. nullopt when no such withdrawal.
std::optional<withdrawal_row> lock_withdrawal(pqxx::transaction_base& tx, std::int64_t id);

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

/// After "nonce too low" for a transaction the chain does not know: the counter moves up to what
/// the node reports, and released nonces below it (taken on chain by something else) are dropped.
void resync_nonce(pqxx::transaction_base& tx, const std::string& chain, const std::string& address,
                  std::uint64_t node_pending_count);

/// pending → signed, storing what will be sent. False when the status was not pending.
bool mark_signed(pqxx::transaction_base& tx, std::int64_t id, const std::string& from_address, std::uint64_t nonce,
                 const std::string& raw_tx_hex, const std::string& tx_hash);

/// signed → broadcast. Returns the seconds from the withdrawal's creation to now, or nullopt
/// when it was not signed (another worker got there first).
std::optional<double> mark_broadcast(pqxx::transaction_base& tx, std::int64_t id);

/// broadcast → confirmed. False when it was not broadcast.
bool mark_confirmed(pqxx::transaction_base& tx, std::int64_t id);

/// `expected` → failed with `reason`, and the amount goes back to the user's balance, in the
/// caller's transaction. With `release_nonce` the withdrawal's nonce is offered for reuse
/// (only when its transaction never reached the chain). False when the status was not `expected`.
bool fail_and_refund(pqxx::transaction_base& tx, std::int64_t id, std::string_view expected,
                     const std::string& reason, bool release_nonce);

struct broadcast_transaction {
  std::int64_t id = 0;
  std::string tx_hash;
  std::string raw_tx_hex;
  bool due_for_rebroadcast = false;  // broadcast longer ago than the rebroadcast interval
};

/// Withdrawals of `chain` in status broadcast with id > after_id, in id order, at most `limit`.
std::vector<broadcast_transaction> broadcast_withdrawals(pqxx::transaction_base& tx, const std::string& chain,
                                                         std::int64_t after_id, int limit,
                                                         std::chrono::milliseconds rebroadcast_after);

/// Ids of withdrawals of `chain` signed longer ago than `older_than` and still signed.
std::vector<std::int64_t> stale_signed_withdrawals(pqxx::transaction_base& tx, const std::string& chain,
                                                   std::chrono::milliseconds older_than, int limit);

}  // namespace broadcaster::store
