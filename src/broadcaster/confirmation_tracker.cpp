#include "broadcaster/confirmation_tracker.hpp"

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "broadcaster/withdrawal_store.hpp"
#include "chain/hex.hpp"

namespace broadcaster {
namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* loop_name = "tracker";
constexpr int batch = 100;
constexpr int stale_signed_batch = 20;
constexpr auto repeated_error_interval = 30s;

}  // namespace

confirmation_tracker::confirmation_tracker(const settings& config, processor& worker, common::connection_pool& pool,
                                           metrics& counters, health& status, common::process_signals& signals)
    : config_(config), worker_(worker), pool_(pool), metrics_(counters), health_(status), signals_(signals) {}

void confirmation_tracker::run() {
  spdlog::info("confirmation tracker: polling receipts every {}, re-broadcasting after {}",
               format_duration(config_.chain.confirm_poll_interval), format_duration(config_.chain.rebroadcast_after));
  while (!signals_.stop_requested()) {
    health_.beat(loop_name);
    try {
      poll_once();
      if (!last_error_.empty()) {
        spdlog::info("confirmation tracker: recovered");
        last_error_.clear();
        health_.clear_problem(loop_name);
      }
    } catch (const std::exception& e) {
      const std::string text = e.what();
      health_.set_problem(loop_name, text);
      if (text != last_error_ || clock::now() - last_error_at_ >= repeated_error_interval) {
        spdlog::warn("confirmation tracker: {}", text);
        last_error_ = text;
        last_error_at_ = clock::now();
      }
    }
    if (wait_alive(signals_, health_, loop_name, config_.chain.confirm_poll_interval)) break;
  }
  health_.retire(loop_name);
}

void confirmation_tracker::poll_once() {
  // Both questions in one read-only transaction: an idle worker costs the database one per pass.
  std::vector<store::broadcast_transaction> open;
  std::vector<std::int64_t> stale_signed;
  {
    auto lease = pool_.acquire();
    pqxx::read_transaction tx(*lease);
    open = store::broadcast_withdrawals(tx, config_.chain.name, after_id_, batch, config_.chain.rebroadcast_after);
    stale_signed =
        store::stale_signed_withdrawals(tx, config_.chain.name, config_.chain.rebroadcast_after, stale_signed_batch);
  }
  check_receipts(open);
  if (!signals_.stop_requested()) resume_stale_signed(stale_signed);
}

void confirmation_tracker::check_receipts(const std::vector<store::broadcast_transaction>& open) {
  after_id_ = static_cast<int>(open.size()) < batch ? 0 : open.back().id;
  auto& rpc = worker_.rpc();
  for (const auto& w : open) {
    if (signals_.stop_requested()) return;
    health_.beat(loop_name);
    chain::hash256 hash{};
    chain::bytes raw;
    try {
      chain::from_hex(w.tx_hash, hash);
      raw = chain::from_hex(w.raw_tx_hex);
    } catch (const std::invalid_argument& e) {
      // A row written by other means must not stop the tracking of all the others.
      spdlog::error("withdrawal {}: cannot track it, its tx_hash/raw_tx is not hex: {}", w.id, e.what());
      continue;
    }
    const auto receipt = rpc.get_transaction_receipt(hash);
    if (receipt) {
      last_sent_.erase(w.id);
      auto lease = pool_.acquire();
      pqxx::work tx(*lease);
      if (receipt->success) {
        const bool applied = store::mark_confirmed(tx, w.id);
        tx.commit();
        if (applied) {
          metrics_.confirmed.Increment();
          spdlog::info("withdrawal {} confirmed: tx {} in block {}", w.id, w.tx_hash, receipt->block_number);
        }
      } else {
        const std::string reason = fmt::format("transaction {} reverted in block {}", w.tx_hash, receipt->block_number);
        const bool applied = store::fail_and_refund(tx, w.id, "broadcast", reason, false);
        tx.commit();
        if (applied) {
          metrics_.failure(failure_reason::reverted);
          spdlog::error("withdrawal {} failed and refunded: {}", w.id, reason);
        }
      }
      continue;
    }
    if (!w.due_for_rebroadcast) continue;
    const auto now = clock::now();
    if (const auto it = last_sent_.find(w.id); it != last_sent_.end() && now - it->second < config_.chain.rebroadcast_after) {
      continue;
    }
    const auto sent = rpc.send_raw_transaction(raw, hash);
    switch (sent.outcome) {
      case send_outcome::sent:
      case send_outcome::already_known:
        last_sent_[w.id] = now;
        metrics_.rebroadcasts.Increment();
        spdlog::info("withdrawal {}: no receipt after {}: re-broadcast tx {}{}", w.id,
                     format_duration(config_.chain.rebroadcast_after), w.tx_hash,
                     sent.outcome == send_outcome::already_known ? " (still in the node's pool)" : "");
        break;
      case send_outcome::transient:
        throw rpc_unavailable(fmt::format("re-broadcast of withdrawal {}: {}", w.id, sent.message));
      case send_outcome::rejected:
        last_sent_[w.id] = now;
        metrics_.failure(failure_reason::rejected);
        spdlog::error("withdrawal {}: the node refuses to re-broadcast tx {}: {}. Left in status broadcast: the "
                      "transaction may still be mined from another pool; check it before failing it by hand",
                      w.id, w.tx_hash, sent.message);
        break;
    }
  }
  // Forget re-send times of rows that left status broadcast some other way.
  if (after_id_ == 0 && last_sent_.size() > open.size()) {
    std::map<std::int64_t, clock::time_point> kept;
    for (const auto& w : open) {
      if (auto it = last_sent_.find(w.id); it != last_sent_.end()) kept.insert(*it);
    }
    last_sent_.swap(kept);
  }
}

void confirmation_tracker::resume_stale_signed(const std::vector<std::int64_t>& ids) {
  for (const auto id : ids) {
    if (signals_.stop_requested()) return;
    spdlog::warn("withdrawal {} still signed after {}: sending it", id, format_duration(config_.chain.rebroadcast_after));
    worker_.process_withdrawal(id, nullptr);
  }
}

}  // namespace broadcaster
