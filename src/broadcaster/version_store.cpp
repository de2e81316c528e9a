#include "broadcaster/version_store.hpp"

#include "broadcaster/withdrawal_store.hpp"

#include <map>
#include <stdexcept>

#include <pqxx/pqxx>

namespace broadcaster::store {

namespace {

constexpr const char* version_columns =
    "t.id, t.withdrawal_id, t.kind, t.nonce, t.tx_hash, encode(t.raw_tx, 'hex'), t.max_fee_per_gas::text,"
    " t.max_priority_fee_per_gas::text, extract(epoch FROM now() - t.created_at)::float8,"
    " extract(epoch FROM now() - t.last_sent_at)::float8, t.mined_block_number, t.mined_block_hash, t.mined_success";

version_row to_version(const pqxx::row& r) {
  version_row v;
  v.id = r[0].as<std::int64_t>();
  v.withdrawal_id = r[1].as<std::int64_t>();
  v.kind = r[2].as<std::string>() == "cancel" ? version_kind::cancel : version_kind::payment;
  v.nonce = static_cast<std::uint64_t>(r[3].as<std::int64_t>());
  v.tx_hash = r[4].as<std::string>();
  v.raw_tx_hex = r[5].as<std::string>();
  if (!r[6].is_null()) v.max_fee_per_gas = r[6].as<std::string>();
  if (!r[7].is_null()) v.max_priority_fee_per_gas = r[7].as<std::string>();
  v.age_seconds = r[8].as<double>();
  if (!r[9].is_null()) v.since_last_sent_seconds = r[9].as<double>();
  if (!r[10].is_null()) v.mined_block_number = static_cast<std::uint64_t>(r[10].as<std::int64_t>());
  if (!r[11].is_null()) v.mined_block_hash = r[11].as<std::string>();
  if (!r[12].is_null()) v.mined_success = r[12].as<bool>();
  return v;
}

// `about_to_send`: the caller sends right after this transaction commits, so the first send
// attempt is recorded here (one commit less on the payment's path).
std::int64_t insert_version(pqxx::transaction_base& tx, std::int64_t withdrawal_id, const new_version& v,
                            bool about_to_send) {
  return tx
      .exec_params1(
          "INSERT INTO withdrawal_transactions (withdrawal_id, kind, nonce, tx_hash, raw_tx,"
          " max_fee_per_gas, max_priority_fee_per_gas, sent_at, last_sent_at)"
          " VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6::numeric, $7::numeric,"
          " CASE WHEN $8 THEN now() END, CASE WHEN $8 THEN now() END) RETURNING id",
          withdrawal_id, std::string(to_sql(v.kind)), static_cast<std::int64_t>(v.nonce), v.tx_hash, v.raw_tx_hex,
          v.max_fee_per_gas, v.max_priority_fee_per_gas, about_to_send)[0]
      .as<std::int64_t>();
}

}  // namespace

std::string_view to_sql(version_kind kind) noexcept { return kind == version_kind::cancel ? "cancel" : "payment"; }

std::optional<std::int64_t> mark_signed(pqxx::transaction_base& tx, std::int64_t id, const std::string& from_address,
                                        const new_version& first) {
  const auto result = tx.exec_params(
      "UPDATE withdrawals SET status = 'signed', from_address = $2, nonce = $3, raw_tx = decode($4, 'hex'),"
      " tx_hash = $5, signed_at = now(), updated_at = now()"
      " WHERE id = $1 AND status = 'pending'",
      id, from_address, static_cast<std::int64_t>(first.nonce), first.raw_tx_hex, first.tx_hash);
  if (result.affected_rows() != 1) return std::nullopt;
  return insert_version(tx, id, first, true);
}

std::int64_t add_version(pqxx::transaction_base& tx, std::int64_t withdrawal_id, const new_version& version) {
  const auto id = insert_version(tx, withdrawal_id, version, true);
  if (version.kind == version_kind::payment) {
    tx.exec_params(
        "UPDATE withdrawals SET raw_tx = decode($2, 'hex'), tx_hash = $3, updated_at = now()"
        " WHERE id = $1 AND status IN ('signed', 'broadcast')",
        withdrawal_id, version.raw_tx_hex, version.tx_hash);
  }
  return id;
}

void record_send_attempt(pqxx::transaction_base& tx, std::int64_t version_id) {
  tx.exec_params(
      "UPDATE withdrawal_transactions SET sent_at = coalesce(sent_at, now()), last_sent_at = now()"
      " WHERE id = $1",
      version_id);
}

std::vector<version_row> versions_of(pqxx::transaction_base& tx, const std::vector<std::int64_t>& ids) {
  std::vector<version_row> out;
  if (ids.empty()) return out;
  for (const auto& r : tx.exec_params(std::string("SELECT ") + version_columns +
                                          " FROM withdrawal_transactions t WHERE t.withdrawal_id = ANY($1::bigint[])"
                                          " AND t.discarded_at IS NULL ORDER BY t.withdrawal_id, t.id",
                                      id_array(ids))) {
    out.push_back(to_version(r));
  }
  return out;
}

void record_mined(pqxx::transaction_base& tx, std::int64_t version_id, std::uint64_t block_number,
                  const std::string& block_hash, bool success) {
  tx.exec_params(
      "UPDATE withdrawal_transactions SET mined_block_number = $2, mined_block_hash = $3, mined_success = $4"
      " WHERE id = $1",
      version_id, static_cast<std::int64_t>(block_number), block_hash, success);
}

void clear_mined(pqxx::transaction_base& tx, std::int64_t version_id) {
  tx.exec_params(
      "UPDATE withdrawal_transactions SET mined_block_number = NULL, mined_block_hash = NULL,"
      " mined_success = NULL WHERE id = $1",
      version_id);
}

std::vector<open_withdrawal> open_withdrawals(pqxx::transaction_base& tx, const std::string& chain,
                                              const std::string& from_address, int limit) {
  std::vector<open_withdrawal> out;
  std::map<std::int64_t, std::size_t> index;
  for (const auto& r : tx.exec_params(
           "SELECT id, status, nonce, to_address, amount::text,"
           " extract(epoch FROM now() - coalesce(signed_at, created_at))::float8, cancel_requested_at IS NOT NULL"
           " FROM withdrawals WHERE status IN ('signed', 'broadcast') AND chain = $1 AND from_address = $2"
           " ORDER BY nonce, id LIMIT $3",
           chain, from_address, limit)) {
    open_withdrawal w;
    w.id = r[0].as<std::int64_t>();
    w.status = parse_withdrawal_status(r[1].as<std::string>());
    w.nonce = static_cast<std::uint64_t>(r[2].as<std::int64_t>());
    w.to_address = r[3].as<std::string>();
    w.amount = r[4].as<std::string>();
    w.signed_seconds = r[5].as<double>();
    w.cancel_requested = r[6].as<bool>();
    index[w.id] = out.size();
    out.push_back(std::move(w));
  }
  std::vector<std::int64_t> ids;
  for (const auto& w : out) ids.push_back(w.id);
  for (auto& v : versions_of(tx, ids)) out[index.at(v.withdrawal_id)].versions.push_back(std::move(v));
  return out;
}

}  // namespace broadcaster::store
