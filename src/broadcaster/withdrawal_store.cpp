#include "broadcaster/withdrawal_store.hpp"

#include <algorithm>
#include <stdexcept>

#include <pqxx/pqxx>

namespace broadcaster::store {

namespace {

constexpr const char* row_columns =
    "id, user_id, chain, to_address, amount::text, status, from_address, nonce, tx_hash, "
    "cancel_requested_at IS NOT NULL";

withdrawal_row to_row(const pqxx::row& r) {
  withdrawal_row out;
  out.id = r[0].as<std::int64_t>();
  out.user_id = r[1].as<std::int64_t>();
  out.chain = r[2].as<std::string>();
  out.to_address = r[3].as<std::string>();
  out.amount = r[4].as<std::string>();
  out.status = parse_withdrawal_status(r[5].as<std::string>());
  if (!r[6].is_null()) out.from_address = r[6].as<std::string>();
  if (!r[7].is_null()) out.nonce = r[7].as<std::int64_t>();
  if (!r[8].is_null()) out.tx_hash = r[8].as<std::string>();
  out.cancel_requested = r[9].as<bool>();
  return out;
}

std::int64_t as_i64(std::uint64_t value) { return static_cast<std::int64_t>(value); }
std::int64_t as_ms(std::chrono::milliseconds value) { return static_cast<std::int64_t>(value.count()); }

}  // namespace

std::optional<withdrawal_row> lock_withdrawal(pqxx::transaction_base& tx, std::int64_t id) {
  const auto result =
      tx.exec_params(std::string("SELECT ") + row_columns + " FROM withdrawals WHERE id = $1 FOR UPDATE", id);
  if (result.empty()) return std::nullopt;
  return to_row(result[0]);
}

std::vector<withdrawal_row> lock_withdrawals(pqxx::transaction_base& tx, const std::vector<std::int64_t>& ids) {
  std::vector<withdrawal_row> out;
  if (ids.empty()) return out;
  for (const auto& r : tx.exec_params(std::string("SELECT ") + row_columns +
                                          " FROM withdrawals WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                                      id_array(ids))) {
    out.push_back(to_row(r));
  }
  return out;
}

std::string id_array(const std::vector<std::int64_t>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i == 0 ? "" : ",") + std::to_string(ids[i]);
  return out + "}";
}

std::optional<withdrawal_row> lock_next_pending(pqxx::transaction_base& tx, const std::string& chain) {
  // withdrawals_open (status, id) serves this; SKIP LOCKED lets several pollers share the work.
  const auto result = tx.exec_params(std::string("SELECT ") + row_columns +
                                         " FROM withdrawals WHERE status = 'pending' AND chain = $1"
                                         " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
                                     chain);
  if (result.empty()) return std::nullopt;
  return to_row(result[0]);
}

bool nonce_row_exists(pqxx::transaction_base& tx, const std::string& chain, const std::string& address) {
  return !tx.exec_params("SELECT 1 FROM hot_wallet_nonces WHERE chain = $1 AND address = $2", chain, address).empty();
}

void init_nonce_row(pqxx::transaction_base& tx, const std::string& chain, const std::string& address,
                    std::uint64_t next_nonce) {
  tx.exec_params(
      "INSERT INTO hot_wallet_nonces (chain, address, next_nonce) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING", chain,
      address, as_i64(next_nonce));
}

std::optional<std::uint64_t> allocate_nonce(pqxx::transaction_base& tx, const std::string& chain,
                                            const std::string& address) {
  const auto locked = tx.exec_params(
      "SELECT next_nonce FROM hot_wallet_nonces WHERE chain = $1 AND address = $2 FOR UPDATE", chain, address);
  if (locked.empty()) return std::nullopt;
  // Released nonces are only touched under the counter row's lock, so this read-then-delete is safe.
  const auto released = tx.exec_params(
      "DELETE FROM hot_wallet_released_nonces WHERE (chain, address, nonce) = ("
      " SELECT chain, address, nonce FROM hot_wallet_released_nonces"
      " WHERE chain = $1 AND address = $2 ORDER BY nonce LIMIT 1) RETURNING nonce",
      chain, address);
  if (!released.empty()) return static_cast<std::uint64_t>(released[0][0].as<std::int64_t>());
  const auto next = tx.exec_params(
      "UPDATE hot_wallet_nonces SET next_nonce = next_nonce + 1 WHERE chain = $1 AND address = $2"
      " RETURNING next_nonce - 1",
      chain, address);
  return static_cast<std::uint64_t>(next[0][0].as<std::int64_t>());
}

std::vector<std::uint64_t> allocate_nonces(pqxx::transaction_base& tx, const std::string& chain,
                                           const std::string& address, std::size_t count) {
  std::vector<std::uint64_t> out;
  const auto locked = tx.exec_params(
      "SELECT next_nonce FROM hot_wallet_nonces WHERE chain = $1 AND address = $2 FOR UPDATE", chain, address);
  if (locked.empty() || count == 0) return out;
  for (const auto& r : tx.exec_params("DELETE FROM hot_wallet_released_nonces WHERE (chain, address, nonce) IN ("
                                      " SELECT chain, address, nonce FROM hot_wallet_released_nonces"
                                      " WHERE chain = $1 AND address = $2 ORDER BY nonce LIMIT $3) RETURNING nonce",
                                      chain, address, as_i64(count))) {
    out.push_back(static_cast<std::uint64_t>(r[0].as<std::int64_t>()));
  }
  std::sort(out.begin(), out.end());
  if (out.size() == count) return out;
  const auto fresh = as_i64(count - out.size());
  const auto first = tx.exec_params1(
                           "UPDATE hot_wallet_nonces SET next_nonce = next_nonce + $3 WHERE chain = $1 AND address = $2"
                           " RETURNING next_nonce - $3",
                           chain, address, fresh)[0]
                         .as<std::int64_t>();
  for (std::int64_t i = 0; i < fresh; ++i) out.push_back(static_cast<std::uint64_t>(first + i));
  return out;
}

void resync_nonce(pqxx::transaction_base& tx, const std::string& chain, const std::string& address,
                  std::uint64_t used_on_chain) {
  tx.exec_params("UPDATE hot_wallet_nonces SET next_nonce = GREATEST(next_nonce, $3) WHERE chain = $1 AND address = $2",
                 chain, address, as_i64(used_on_chain));
  tx.exec_params("DELETE FROM hot_wallet_released_nonces WHERE chain = $1 AND address = $2 AND nonce < $3", chain,
                 address, as_i64(used_on_chain));
}

std::optional<double> mark_broadcast(pqxx::transaction_base& tx, std::int64_t id) {
  const auto result = tx.exec_params(
      "UPDATE withdrawals SET status = 'broadcast', broadcast_at = now(), updated_at = now()"
      " WHERE id = $1 AND status = 'signed'"
      " RETURNING extract(epoch FROM clock_timestamp() - created_at)::float8",
      id);
  if (result.empty()) return std::nullopt;
  return result[0][0].as<double>();
}

bool mark_confirmed(pqxx::transaction_base& tx, std::int64_t id, std::int64_t mined_version_id) {
  const auto result = tx.exec_params(
      "UPDATE withdrawals w SET status = 'confirmed', confirmed_at = now(), updated_at = now(),"
      " tx_hash = t.tx_hash, raw_tx = t.raw_tx, broadcast_at = coalesce(w.broadcast_at, t.sent_at)"
      " FROM withdrawal_transactions t"
      " WHERE w.id = $1 AND w.status IN ('signed', 'broadcast') AND t.id = $2 AND t.withdrawal_id = w.id",
      id, mined_version_id);
  return result.affected_rows() == 1;
}

bool fail_and_refund(pqxx::transaction_base& tx, std::int64_t id, const std::string& reason, bool release_nonce) {
  const auto failed = tx.exec_params(
      "UPDATE withdrawals SET status = 'failed', failure_reason = $2, failed_at = now(), updated_at = now()"
      " WHERE id = $1 AND status IN ('pending', 'signed', 'broadcast')"
      " RETURNING user_id, amount, chain, from_address, nonce,"
      "   EXISTS (SELECT 1 FROM withdrawal_transactions t WHERE t.withdrawal_id = $1 AND t.sent_at IS NOT NULL)",
      id, reason);
  if (failed.empty()) return false;
  const auto& row = failed[0];
  const auto refunded =
      tx.exec_params("UPDATE accounts SET balance = balance + $2::numeric, updated_at = now() WHERE user_id = $1",
                     row[0].as<std::int64_t>(), row[1].as<std::string>());
  if (refunded.affected_rows() != 1) {
    // withdrawals.user_id references accounts: this cannot happen unless the schema changed.
    throw std::logic_error("refund: the withdrawal's account does not exist");
  }
  tx.exec_params(
      "UPDATE withdrawal_transactions SET discarded_at = now() WHERE withdrawal_id = $1 AND discarded_at IS NULL", id);
  const bool ever_sent = row[5].as<bool>();
  if (release_nonce && !ever_sent && !row[3].is_null() && !row[4].is_null()) {
    tx.exec_params(
        "INSERT INTO hot_wallet_released_nonces (chain, address, nonce) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        row[2].as<std::string>(), row[3].as<std::string>(), row[4].as<std::int64_t>());
  }
  return true;
}

std::vector<std::int64_t> stale_pending(pqxx::transaction_base& tx, const std::string& chain,
                                        std::chrono::milliseconds older_than, int limit) {
  const auto result = tx.exec_params(
      "SELECT id FROM withdrawals WHERE status = 'pending' AND chain = $1"
      " AND (created_at < now() - $2 * interval '1 millisecond' OR cancel_requested_at IS NOT NULL)"
      " ORDER BY id LIMIT $3",
      chain, as_ms(older_than), limit);
  std::vector<std::int64_t> out;
  for (const auto& r : result) out.push_back(r[0].as<std::int64_t>());
  return out;
}

status_summary summarize(pqxx::transaction_base& tx, const std::string& chain) {
  // withdrawals_open holds only these three statuses: the scan stays small.
  const auto r = tx.exec_params1(
      "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'signed'),"
      " count(*) FILTER (WHERE status = 'broadcast'),"
      " coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0)::float8,"
      " coalesce(extract(epoch FROM now() - min(signed_at) FILTER (WHERE status = 'signed')), 0)::float8,"
      " coalesce(extract(epoch FROM now() - min(broadcast_at) FILTER (WHERE status = 'broadcast')), 0)::float8"
      " FROM withdrawals WHERE status IN ('pending', 'signed', 'broadcast') AND chain = $1",
      chain);
  return {r[0].as<std::int64_t>(), r[1].as<std::int64_t>(), r[2].as<std::int64_t>(),
          r[3].as<double>(),       r[4].as<double>(),       r[5].as<double>()};
}

}  // namespace broadcaster::store
