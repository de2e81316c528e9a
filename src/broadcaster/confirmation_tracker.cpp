#include "broadcaster/confirmation_tracker.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "broadcaster/withdrawal_store.hpp"

namespace broadcaster {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* loop_name = "tracker";
constexpr int open_batch = 200;
constexpr int pending_batch = 20;

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

bool ever_sent(const store::open_withdrawal& w) {
  return std::any_of(w.versions.begin(), w.versions.end(),
                     [](const auto& v) { return v.since_last_sent_seconds.has_value(); });
}

}  // namespace

confirmation_tracker::confirmation_tracker(const settings& config, processor& worker, common::connection_pool& pool,
                                           metrics& counters, health& status, common::process_signals& signals)
    : config_(config),
      worker_(worker),
      pool_(pool),
      metrics_(counters),
      health_(status),
      signals_(signals),
      scanner_(worker.hot_wallet(), config.chain.confirmations) {}

void confirmation_tracker::run() {
  spdlog::info(
      "confirmation tracker: every {}, confirming at {} block(s) deep, replacing versions not mined after "
      "{}, re-driving pending withdrawals older than {}",
      common::format_duration(config_.chain.confirm_poll_interval), config_.chain.confirmations,
      common::format_duration(config_.chain.rebroadcast_after),
      common::format_duration(config_.reconcile.pending_after));
  while (!signals_.stop_requested()) {
    health_.beat(loop_name);
    bool more = false;
    try {
      more = poll_once();
      if (error_warning_.clear()) {
        spdlog::info("confirmation tracker: recovered");
        health_.clear_problem(loop_name);
      }
    } catch (const std::exception& e) {
      health_.set_problem(loop_name, e.what());
      error_warning_.warn(fmt::format("confirmation tracker: {}", e.what()));
    }
    if (more) continue;
    if (wait_alive(signals_, health_, loop_name, config_.chain.confirm_poll_interval)) break;
  }
  health_.retire(loop_name);
}

bool confirmation_tracker::poll_once() {
  settled_any_ = false;
  std::vector<store::open_withdrawal> open;
  store::status_summary summary;
  std::vector<std::int64_t> stale_pending;
  {
    auto lease = pool_.acquire();
    pqxx::read_transaction tx(*lease);
    open = store::open_withdrawals(tx, config_.chain.name, worker_.hot_wallet_text(), open_batch);
    summary = store::summarize(tx, config_.chain.name);
    stale_pending = store::stale_pending(tx, config_.chain.name, config_.reconcile.pending_after, pending_batch);
  }
  metrics_.withdrawals_by_status.Add({{"status", "pending"}}).Set(static_cast<double>(summary.pending));
  metrics_.withdrawals_by_status.Add({{"status", "signed"}}).Set(static_cast<double>(summary.signed_));
  metrics_.withdrawals_by_status.Add({{"status", "broadcast"}}).Set(static_cast<double>(summary.broadcast));
  metrics_.oldest_pending_age_seconds.Set(summary.oldest_pending_seconds);
  metrics_.oldest_in_flight_age_seconds.Add({{"status", "signed"}}).Set(summary.oldest_signed_seconds);
  metrics_.oldest_in_flight_age_seconds.Add({{"status", "broadcast"}}).Set(summary.oldest_broadcast_seconds);

  const chain_snapshot chain = read_chain(worker_.rpc(), worker_.hot_wallet(), config_.chain.confirmations);
  metrics_.hot_wallet_balance_wei.Set(chain.balance.convert_to<double>());
  const receipt_map receipts = fetch_receipts(open, chain);
  std::erase_if(nonce_taken_suspects_, [&](const auto& entry) {
    return std::none_of(open.begin(), open.end(), [&](const auto& w) { return w.id == entry.first; });
  });
  for (const auto& w : open) {
    if (signals_.stop_requested()) return false;
    if (deferred_.contains(w.id)) continue;
    health_.beat(loop_name);
    bool reorged = false;
    if (settle(w, chain, receipts, reorged)) continue;
    drive_sending(w, chain, reorged);
  }
  if (!signals_.stop_requested()) reconcile_pending(stale_pending);
  return settled_any_ && open.size() == static_cast<std::size_t>(open_batch);
}

confirmation_tracker::receipt_map confirmation_tracker::fetch_receipts(const std::vector<store::open_withdrawal>& open,
                                                                       const chain_snapshot& chain) {
  // Only nonces the chain has used can have a receipt: when nothing moved, no receipt is asked.
  // Every version is looked up, sent or not as the database said: the event path may have sent
  // (and the chain mined) one since that read.
  receipt_map out;
  deferred_.clear();
  if (open.empty()) {
    scanner_.reset();  // nothing in flight: no block to follow until something is
    unfound_.clear();
    return out;
  }
  scanner_.advance(worker_.rpc(), chain.head);
  std::vector<std::int64_t> ids;
  std::vector<std::string> hashes;
  std::set<std::int64_t> unfound;
  for (const auto& w : open) {
    if (w.nonce >= chain.mined_count) continue;
    bool found = false;
    for (const auto& v : w.versions) {
      if (auto receipt = scanner_.find(v.tx_hash)) {
        out[v.id] = std::move(receipt);
        found = true;
      }
    }
    if (found) continue;  // one nonce, one mined version: the others have none
    unfound.insert(w.id);
    if (scanner_.supported() && !unfound_.contains(w.id)) {
      deferred_.insert(w.id);
      continue;
    }
    for (const auto& v : w.versions) {
      ids.push_back(v.id);
      hashes.push_back(v.tx_hash);
    }
  }
  unfound_ = std::move(unfound);
  if (hashes.empty()) return out;
  auto receipts = read_receipts(worker_.rpc(), hashes);
  for (std::size_t i = 0; i < ids.size(); ++i) out[ids[i]] = std::move(receipts[i]);
  return out;
}

bool confirmation_tracker::settle(const store::open_withdrawal& w, const chain_snapshot& chain,
                                  const receipt_map& receipts, bool& reorged) {
  const store::version_row* mined = nullptr;
  std::optional<transaction_receipt> receipt;
  auto lease = pool_.acquire();
  pqxx::work tx(*lease);
  for (const auto& v : w.versions) {
    const auto it = receipts.find(v.id);
    const std::optional<transaction_receipt> r = it == receipts.end() ? std::nullopt : it->second;
    if (v.mined_block_number && !r) {
      store::clear_mined(tx, v.id);
      reorged = true;
      spdlog::warn("withdrawal {}: tx {} was mined in block {} ({}), which is no longer on the chain: sending it again",
                   w.id, v.tx_hash, *v.mined_block_number, v.mined_block_hash.value_or("?"));
    } else if (r && (!v.mined_block_number || *v.mined_block_number != r->block_number ||
                     v.mined_block_hash != r->block_hash)) {
      if (v.mined_block_number) {
        reorged = true;
        spdlog::warn("withdrawal {}: tx {} moved from block {} to block {} {} (reorg)", w.id, v.tx_hash,
                     *v.mined_block_number, r->block_number, r->block_hash);
      } else {
        spdlog::info("withdrawal {}: {} tx {} mined in block {} {}{}", w.id, store::to_sql(v.kind), v.tx_hash,
                     r->block_number, r->block_hash, r->success ? "" : " (reverted)");
      }
      store::record_mined(tx, v.id, r->block_number, r->block_hash, r->success);
    }
    if (r) {
      mined = &v;
      receipt = r;
    }
  }
  if (reorged) metrics_.reorgs.Increment();

  if (mined != nullptr) {
    if (depth(chain.head, receipt->block_number) < config_.chain.confirmations) {
      tx.commit();
      return true;  // mined, not deep enough yet: re-checked next pass
    }
    if (mined->kind == store::version_kind::payment && receipt->success) {
      const bool applied = store::mark_confirmed(tx, w.id, mined->id);
      tx.commit();
      for (const auto& v : w.versions) scanner_.forget(v.tx_hash);
      settled_any_ = true;
      if (applied) {
        metrics_.confirmed.Increment();
        spdlog::info("withdrawal {} confirmed: tx {} in block {}, {} block(s) deep", w.id, mined->tx_hash,
                     receipt->block_number, depth(chain.head, receipt->block_number));
      }
      return true;
    }
    const bool payment = mined->kind == store::version_kind::payment;
    const std::string reason =
        payment ? fmt::format("transaction {} reverted in block {}", mined->tx_hash, receipt->block_number)
                : fmt::format("cancelled by an operator: cancel {} mined in block {} at nonce {}", mined->tx_hash,
                              receipt->block_number, w.nonce);
    const bool applied = store::fail_and_refund(tx, w.id, reason, false);
    tx.commit();
    for (const auto& v : w.versions) scanner_.forget(v.tx_hash);
    settled_any_ = true;
    if (applied) {
      metrics_.failure(payment ? failure_reason::reverted : failure_reason::cancelled);
      spdlog::error("withdrawal {} failed and refunded: {}", w.id, reason);
    }
    return true;
  }

  if (w.nonce < chain.final_count) {
    // The chain used our nonce, at depth, for a transaction that is none of our versions: none can
    // land. Unless a version was added since this pass read them (another worker's replacement):
    // versions are only added under the withdrawal's row lock, so take it and compare. And a node
    // may count a nonce as used a moment before it serves the receipt of the transaction that used
    // it: believe it only when no version is known to the node at all, on two passes in a row.
    std::vector<std::string> hashes;
    for (const auto& v : w.versions) hashes.push_back(v.tx_hash);
    const bool known = any_known(worker_.rpc(), hashes);
    store::lock_withdrawal(tx, w.id);
    const auto now = store::versions_of(tx, {w.id});
    const bool same_versions = std::equal(now.begin(), now.end(), w.versions.begin(), w.versions.end(),
                                          [](const auto& a, const auto& b) { return a.id == b.id; });
    if (known || !same_versions) nonce_taken_suspects_.erase(w.id);
    if (known || !same_versions || ++nonce_taken_suspects_[w.id] < 2) {
      tx.commit();
      return true;  // asked again next pass
    }
    nonce_taken_suspects_.erase(w.id);
    const std::string reason = fmt::format(
        "nonce {} was used on chain (at {} block(s) deep) by a transaction that is none of this withdrawal's {} "
        "version(s)",
        w.nonce, config_.chain.confirmations, w.versions.size());
    const bool applied = store::fail_and_refund(tx, w.id, reason, false);
    store::resync_nonce(tx, config_.chain.name, worker_.hot_wallet_text(), chain.final_count);
    tx.commit();
    if (applied) {
      metrics_.failure(failure_reason::nonce_taken);
      spdlog::error("withdrawal {} failed and refunded: {}", w.id, reason);
    }
    return true;
  }
  tx.commit();
  // Used by a transaction whose receipt we do not see (yet): wait until it is final or ours shows.
  return w.nonce < chain.mined_count;
}

void confirmation_tracker::drive_sending(const store::open_withdrawal& w, const chain_snapshot& chain,
                                         bool resend_now) {
  if (w.versions.empty()) {
    spdlog::error("withdrawal {} is {} without any version in withdrawal_transactions: left for an operator", w.id,
                  to_sql(w.status));
    return;
  }
  const auto& latest = w.versions.back();
  const double rebroadcast = seconds(config_.chain.rebroadcast_after);
  if (!ever_sent(w)) {
    // The event path signed it and is (or was, before a crash) about to send it.
    if (w.cancel_requested || w.signed_seconds >= rebroadcast) {
      if (!w.cancel_requested) {
        spdlog::warn("withdrawal {} signed {} ago and never sent: sending it", w.id,
                     common::format_duration(config_.chain.rebroadcast_after));
      }
      worker_.process_withdrawal(w.id, nullptr);
    }
    return;
  }
  const bool has_cancel = std::any_of(w.versions.begin(), w.versions.end(),
                                      [](const auto& v) { return v.kind == store::version_kind::cancel; });
  if (w.cancel_requested && !has_cancel) {
    if (auto cancel = worker_.replace(w, store::version_kind::cancel, latest, false)) {
      send(*cancel, false);
    } else {
      spdlog::warn(
          "withdrawal {}: cannot sign its cancel: a +10 % replacement of {} would exceed "
          "chain.max_fee_per_gas_cap",
          w.id, latest.tx_hash);
    }
    return;
  }
  // Only the lowest unmined nonce is bumped: the later ones wait behind it, whatever their fees, and
  // bumping them too would compound their fees for nothing.
  if (latest.age_seconds >= rebroadcast && w.nonce == chain.mined_count) {
    // Accepted but not mined: the fee is too low. Refused (still signed): bump only when the market
    // asks for more, since a refusal for funds or nonce is not cured by paying more.
    const bool market_must_be_higher = w.status == withdrawal_status::signed_;
    if (auto bumped = worker_.replace(w, latest.kind, latest, market_must_be_higher)) {
      send(*bumped, false);
      return;
    }
  }
  const double resend_after =
      w.status == withdrawal_status::signed_ ? seconds(config_.consumer.retry_backoff_max) : rebroadcast;
  if (resend_now || !latest.since_last_sent_seconds || *latest.since_last_sent_seconds >= resend_after) {
    send(latest, true);
  }
}

void confirmation_tracker::send(const store::version_row& version, bool again) {
  const auto sent = worker_.send_version(version, !again);  // a new version's attempt was stored with it
  switch (sent.outcome) {
    case send_outcome::sent:
    case send_outcome::already_known:
      if (again) {
        metrics_.rebroadcasts.Increment();
        spdlog::info("withdrawal {}: re-sent tx {}{}", version.withdrawal_id, version.tx_hash,
                     sent.outcome == send_outcome::already_known ? " (still in the node's pool)" : "");
      }
      return;
    case send_outcome::transient:
      throw rpc_unavailable(
          fmt::format("sending tx {} of withdrawal {}: {}", version.tx_hash, version.withdrawal_id, sent.message));
    case send_outcome::rejected:
      metrics_.failure(failure_reason::rejected);
      spdlog::warn(
          "withdrawal {}: the node refused tx {}: {}. Retried; refunded only if the chain uses the nonce "
          "for another transaction",
          version.withdrawal_id, version.tx_hash, sent.message);
      return;
  }
}

void confirmation_tracker::reconcile_pending(const std::vector<std::int64_t>& ids) {
  const auto now = clock::now();
  std::erase_if(reconciled_, [&](const auto& entry) { return now - entry.second >= config_.reconcile.pending_after; });
  for (const auto id : ids) {
    if (signals_.stop_requested()) return;
    if (reconciled_.contains(id)) continue;
    reconciled_[id] = now;
    spdlog::warn(
        "withdrawal {} pending for more than {} (its event was lost, dead-lettered or is late) or cancelled: "
        "processing it from the database",
        id, common::format_duration(config_.reconcile.pending_after));
    const auto result = worker_.process_withdrawal(id, nullptr);
    spdlog::info("withdrawal {}: {}{}{}", id, to_string(result.what), result.reason.empty() ? "" : ": ", result.reason);
  }
}

}  // namespace broadcaster
