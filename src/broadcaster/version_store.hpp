#pragma once
// SQL on withdrawal_transactions: every signed version of a withdrawal's transaction (the first
// payment, fee-bumped replacements, cancels), when each was first and last sent, and where the
// tracker saw it mined. Runs in the caller's transaction; never commits.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pqxx/transaction_base>

#include "broadcaster/withdrawal_status.hpp"

namespace broadcaster::store {

enum class version_kind { payment, cancel };
std::string_view to_sql(version_kind kind) noexcept;

/// A version about to be stored (fees in wei as decimal text).
struct new_version {
  version_kind kind = version_kind::payment;
  std::uint64_t nonce = 0;
  std::string tx_hash;
  std::string raw_tx_hex;  // without 0x
  std::string max_fee_per_gas;
  std::string max_priority_fee_per_gas;
};

struct version_row {
  std::int64_t id = 0;
  std::int64_t withdrawal_id = 0;
  version_kind kind = version_kind::payment;
  std::uint64_t nonce = 0;
  std::string tx_hash;
  std::string raw_tx_hex;
  std::optional<std::string> max_fee_per_gas;  // NULL for versions copied by migration 000002
  std::optional<std::string> max_priority_fee_per_gas;
  double age_seconds = 0;                         // since it was signed
  std::optional<double> since_last_sent_seconds;  // nullopt: never sent
  std::optional<std::uint64_t> mined_block_number;
  std::optional<std::string> mined_block_hash;
  std::optional<bool> mined_success;
};

/// pending → signed with its first payment version, in one statement pair. The version's first
/// send attempt is recorded with it: the caller sends right after committing (a crash in between
/// leaves a version counted as sent, which only keeps its nonce from reuse).
/// Returns the version's id; nullopt when the withdrawal was not pending.
std::optional<std::int64_t> mark_signed(pqxx::transaction_base& tx, std::int64_t id, const std::string& from_address,
                                        const new_version& first);

/// A replacement (fee bump or cancel) of a signed or broadcast withdrawal, its first send attempt
/// recorded (the caller sends it right after committing). A payment version also becomes the
/// withdrawal's tx_hash/raw_tx (what is re-sent and shown). Returns its id.
std::int64_t add_version(pqxx::transaction_base& tx, std::int64_t withdrawal_id, const new_version& version);

/// Records a send attempt (sent_at on the first one, last_sent_at on each). Commit it BEFORE the
/// bytes are sent: from then on the nonce is never released.
void record_send_attempt(pqxx::transaction_base& tx, std::int64_t version_id);

/// The live versions of the withdrawals `ids`, by withdrawal then id (newest last).
std::vector<version_row> versions_of(pqxx::transaction_base& tx, const std::vector<std::int64_t>& ids);

/// Where the tracker saw the version mined; clear_mined() when a reorg removed that block.
void record_mined(pqxx::transaction_base& tx, std::int64_t version_id, std::uint64_t block_number,
                  const std::string& block_hash, bool success);
void clear_mined(pqxx::transaction_base& tx, std::int64_t version_id);

/// A signed or broadcast withdrawal of a chain, as the tracker sees it.
struct open_withdrawal {
  std::int64_t id = 0;
  withdrawal_status status = withdrawal_status::signed_;
  std::uint64_t nonce = 0;
  std::string to_address;
  std::string amount;
  double signed_seconds = 0;  // since signing
  bool cancel_requested = false;
  std::vector<version_row> versions;  // live ones, oldest first
};

/// Signed and broadcast withdrawals of `chain` sent from `from_address`, lowest nonce first, at
/// most `limit`, with their versions.
std::vector<open_withdrawal> open_withdrawals(pqxx::transaction_base& tx, const std::string& chain,
                                              const std::string& from_address, int limit);

}  // namespace broadcaster::store
