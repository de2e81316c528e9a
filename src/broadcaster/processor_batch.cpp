// processor::broadcast_batch(): the Kafka source's fast path (see processor.hpp). Anything out of
// the ordinary is left to process_withdrawal(), so this file only has to be right about the
// common case: every step either finishes a withdrawal or leaves it in a state the ordinary path
// continues from.
#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "broadcaster/processor.hpp"
#include "broadcaster/withdrawal_store.hpp"
#include "chain/hex.hpp"

namespace broadcaster {

std::map<std::int64_t, process_result> processor::broadcast_batch(
    const std::vector<const events::withdrawal_created*>& batch) {
  std::map<std::int64_t, process_result> done;
  if (batch.size() < 2) return done;
  std::vector<const events::withdrawal_created*> by_id = batch;
  // Rows are locked in id order, all before the nonce row, so two workers cannot deadlock.
  std::sort(by_id.begin(), by_id.end(),
            [](const auto* a, const auto* b) { return a->withdrawal_id < b->withdrawal_id; });
  by_id.erase(std::unique(by_id.begin(), by_id.end(),
                          [](const auto* a, const auto* b) { return a->withdrawal_id == b->withdrawal_id; }),
              by_id.end());
  std::vector<store::version_row> signed_versions;
  try {
    ensure_nonce_row();
    const fee_quote fees = quote_fees();
    auto lease = pool_.acquire();
    pqxx::work tx(*lease);
    struct payable {
      std::int64_t id;
      chain::address to;
      chain::uint256 value;
    };
    std::vector<std::int64_t> ids;
    for (const auto* event : by_id) ids.push_back(event->withdrawal_id);
    std::vector<payable> rows;
    std::size_t at = 0;
    for (const auto& row : store::lock_withdrawals(tx, ids)) {
      while (by_id[at]->withdrawal_id != row.id) ++at;  // both in id order; every row has its event
      if (row.chain != config_.chain.name || row.status != withdrawal_status::pending || row.cancel_requested) continue;
      if (!events::describe_mismatch(*by_id[at], {row.user_id, row.to_address, row.amount, row.chain}).empty()) {
        continue;
      }
      payable p{row.id, {}, 0};
      if (!unpayable(row, p.to, p.value).empty()) continue;
      rows.push_back(p);
    }
    if (rows.empty()) return done;
    const auto nonces = store::allocate_nonces(tx, config_.chain.name, from_text_, rows.size());
    if (nonces.size() != rows.size()) {
      nonce_row_ready_ = false;
      return done;  // rolled back: the ordinary path initialises the row again
    }
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& p = rows[i];
      const auto nonce = nonces[i];
      const auto signed_tx = build_and_sign(config_.chain, {chain_id_, nonce, p.to, p.value}, fees, key_);
      const store::new_version first{store::version_kind::payment,  nonce,
                                     chain::to_hex(signed_tx.hash), chain::to_hex(signed_tx.raw, false),
                                     fees.max_fee_per_gas.str(),    fees.max_priority_fee_per_gas.str()};
      const auto version_id = store::mark_signed(tx, p.id, from_text_, first);
      if (!version_id) throw std::logic_error("withdrawal left status pending while locked");
      store::version_row v;
      v.id = *version_id;
      v.withdrawal_id = p.id;
      v.nonce = nonce;
      v.tx_hash = first.tx_hash;
      v.raw_tx_hex = first.raw_tx_hex;
      signed_versions.push_back(std::move(v));
    }
    tx.commit();  // before any byte leaves: the attempts are recorded with the versions
  } catch (const std::exception& e) {
    spdlog::warn("batch of {} events: {}; each is processed on its own", batch.size(), e.what());
    return done;
  }
  if (signed_versions.empty()) return done;
  for (const auto& v : signed_versions) {
    spdlog::info("withdrawal {} signed: nonce {} tx {}", v.withdrawal_id, v.nonce, v.tx_hash);
  }

  health_.beat(loop_);
  std::vector<std::pair<std::string, nlohmann::json>> sends;
  sends.reserve(signed_versions.size());
  for (const auto& v : signed_versions) {
    sends.emplace_back("eth_sendRawTransaction", nlohmann::json::array({"0x" + v.raw_tx_hex}));
  }
  try {
    rpc_.batch(sends);  // in nonce order; any refusal throws, and the ordinary path sorts it out
  } catch (const std::exception& e) {
    spdlog::warn("batch send of {} transactions: {}; each is sent again on its own", sends.size(), e.what());
    return done;
  }
  try {
    auto lease = pool_.acquire();
    pqxx::work tx(*lease);
    std::vector<std::pair<const store::version_row*, std::optional<double>>> moved;
    for (const auto& v : signed_versions) moved.emplace_back(&v, store::mark_broadcast(tx, v.withdrawal_id));
    tx.commit();
    for (const auto& [v, since_created] : moved) {
      if (since_created) {
        metrics_.broadcasts.Increment();
        metrics_.event_to_broadcast_seconds.Observe(*since_created);
        spdlog::info("withdrawal {} broadcast: tx {}", v->withdrawal_id, v->tx_hash);
      }
      done[v->withdrawal_id] = {outcome::broadcast, v->withdrawal_id, {}, v->tx_hash};
    }
  } catch (const std::exception& e) {
    spdlog::warn("batch of {} broadcasts not recorded: {}; each is processed on its own", signed_versions.size(),
                 e.what());
    done.clear();
  }
  return done;
}

}  // namespace broadcaster
