#include "broadcaster/processor.hpp"

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "broadcaster/withdrawal_store.hpp"
#include "chain/units.hpp"
#include "common/backoff.hpp"

namespace broadcaster {

std::string_view to_string(outcome value) noexcept {
  switch (value) {
    case outcome::broadcast: return "broadcast";
    case outcome::duplicate: return "duplicate";
    case outcome::rejected: return "rejected";
    case outcome::dead_letter: return "dead_letter";
    case outcome::interrupted: return "interrupted";
  }
  return "unknown";
}

struct processor::attempt_result {
  std::optional<process_result> done;  // set when finished
  bool idle = false;                   // next_pending found nothing
  std::string transient;               // set when the attempt should be retried after a backoff
  std::string_view transient_reason = failure_reason::node_unavailable;

  static attempt_result finished(process_result r) { return {std::move(r), false, {}, {}}; }
  static attempt_result retry(std::string why, std::string_view reason) { return {std::nullopt, false, std::move(why), reason}; }
};

namespace {

constexpr std::string_view health_component = "processing";
// Unexpected errors (not transient by classification) are retried this often before the event
// is dead-lettered, so a bug or a broken row cannot block a partition for ever.
constexpr unsigned max_internal_attempts = 3;

bool transient_database_error(const std::exception& error) {
  // In doubt: the next attempt re-reads the row under its lock, which tells what happened.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error) != nullptr) return true;
  if (dynamic_cast<const common::connection_pool::pool_timeout*>(&error) != nullptr) return true;
  if (common::is_retryable(error)) return true;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    const std::string& state = sql->sqlstate();
    // 55P03 lock_not_available (lock_timeout), 57014 query_canceled (statement_timeout),
    // 53xxx insufficient resources (too many connections, disk full).
    return state == "55P03" || state == "57014" || state.rfind("53", 0) == 0;
  }
  return false;
}

process_result dead_letter(std::int64_t id, std::string reason) {
  return {outcome::dead_letter, id, std::move(reason), {}};
}

// Why the row cannot be paid as it is (bad address or amount), or empty. The wallet validates
// both; this guards against rows written by other means.
std::string unpayable(const store::withdrawal_row& row, chain::address& to, chain::uint256& value) {
  std::string error;
  const auto parsed = chain::address::parse(row.to_address, &error, "to_address");
  if (!parsed) return error;
  if (parsed->is_zero()) return "to_address is the zero address (funds sent there are burnt)";
  to = *parsed;
  const auto amount = chain::parse_units(row.amount, chain::eth_decimals);
  if (!amount) return amount.message;
  if (amount.value == 0) return "amount must be above 0";
  value = amount.value;
  return {};
}

}  // namespace

processor::processor(const settings& config, std::uint64_t chain_id, const chain::private_key& key,
                     common::connection_pool& pool, metrics& counters, health& status,
                     common::process_signals& signals, std::string loop)
    : config_(config),
      chain_id_(chain_id),
      key_(key),
      from_(key.address()),
      from_text_(from_.to_checksum_string()),
      pool_(pool),
      metrics_(counters),
      health_(status),
      signals_(signals),
      loop_(std::move(loop)),
      rpc_(config.chain.rpc_url, config.chain.rpc_timeout) {}

template <class Attempt>
std::optional<process_result> processor::with_retries(Attempt&& attempt_once) {
  common::backoff delay(config_.consumer.retry_backoff, config_.consumer.retry_backoff_max);
  unsigned internal_failures = 0;
  for (;;) {
    health_.beat(loop_);
    attempt_result result;
    try {
      result = attempt_once();
    } catch (const rpc_unavailable& e) {
      result = attempt_result::retry(e.what(), failure_reason::node_unavailable);
    } catch (const rpc_error& e) {
      // A JSON-RPC error from a read (nonce, fees): the node is unwell, not the withdrawal.
      result = attempt_result::retry(e.what(), failure_reason::node_unavailable);
    } catch (const std::exception& e) {
      if (transient_database_error(e)) {
        result = attempt_result::retry(fmt::format("database: {}", e.what()), failure_reason::database_unavailable);
      } else if (++internal_failures < max_internal_attempts) {
        result = attempt_result::retry(fmt::format("unexpected error: {}", e.what()), failure_reason::internal);
      } else {
        metrics_.failure(failure_reason::internal);
        health_.clear_problem(health_component);
        spdlog::error("giving up after {} attempts: {}", internal_failures, e.what());
        return process_result{outcome::dead_letter, std::nullopt, fmt::format("internal error: {}", e.what()), {}};
      }
    }
    if (result.done) {
      health_.clear_problem(health_component);
      return std::move(result.done);
    }
    if (result.idle) return std::nullopt;
    metrics_.failure(result.transient_reason);
    health_.set_problem(health_component, result.transient);
    const auto wait = delay.next();
    spdlog::warn("{}; retrying in {} ms (attempt {})", result.transient, wait.count(), delay.attempt());
    if (wait_alive(signals_, health_, loop_, wait)) {
      spdlog::info("stop requested while retrying: leaving the event unacknowledged");
      return process_result{outcome::interrupted, std::nullopt, result.transient, {}};
    }
  }
}

process_result processor::process_withdrawal(std::int64_t id, const withdrawal_event* event) {
  auto result = with_retries([&] { return attempt(selector::by_id, id, event); });
  if (result && !result->withdrawal_id) result->withdrawal_id = id;
  return result ? *result : process_result{outcome::interrupted, id, {}, {}};
}

std::optional<process_result> processor::process_next_pending() {
  return with_retries([&] { return attempt(selector::next_pending, 0, nullptr); });
}

process_result processor::reject_withdrawal(std::int64_t id, const std::string& reason) {
  auto result = with_retries([&]() -> attempt_result {
    auto lease = pool_.acquire();
    pqxx::work tx(*lease);
    const auto row = store::lock_withdrawal(tx, id);
    const bool failed =
        row && row->status == "pending" && store::fail_and_refund(tx, id, "pending", "bad event: " + reason, false);
    tx.commit();
    if (failed) spdlog::warn("withdrawal {} failed and refunded: bad event: {}", id, reason);
    return attempt_result::finished(dead_letter(id, reason));
  });
  return result ? *result : process_result{outcome::interrupted, id, {}, {}};
}

void processor::ensure_nonce_row() {
  if (nonce_row_ready_) return;
  auto lease = pool_.acquire();
  pqxx::nontransaction tx(*lease);
  if (!store::nonce_row_exists(tx, config_.chain.name, from_text_)) {
    // Asked before any lock is taken; the first worker to insert wins (ON CONFLICT DO NOTHING).
    const auto next = rpc_.get_transaction_count(from_, "pending");
    store::init_nonce_row(tx, config_.chain.name, from_text_, next);
    spdlog::info("hot wallet {} on {}: nonce counter initialised at {} (the node's pending count)", from_text_,
                 config_.chain.name, next);
  }
  nonce_row_ready_ = true;
}

fee_quote processor::quote_fees() {
  const auto needs = market_needs(config_.chain);
  fee_market market;
  if (needs.base_fee) market.base_fee_per_gas = rpc_.base_fee_per_gas();
  if (needs.priority_fee) market.max_priority_fee_per_gas = rpc_.max_priority_fee_per_gas();
  if (needs.gas_price) market.gas_price = rpc_.gas_price();
  try {
    return choose_fees(config_.chain, market);
  } catch (const std::runtime_error& e) {
    // Nothing can be paid until the node or the fee settings change: keep the event and retry
    // (visible in /healthz) rather than dead-letter every withdrawal.
    throw rpc_unavailable(e.what());
  }
}

processor::attempt_result processor::attempt(selector which, std::int64_t id, const withdrawal_event* event) {
  ensure_nonce_row();
  signed_withdrawal to_send;
  {
    auto lease = pool_.acquire();  // released before sending: send() needs one of its own
    pqxx::work tx(*lease);
    const auto row = which == selector::by_id ? store::lock_withdrawal(tx, id)
                                              : store::lock_next_pending(tx, config_.chain.name);
    if (!row) {
      tx.commit();
      if (which == selector::next_pending) return {std::nullopt, true, {}, {}};
      spdlog::warn("unknown withdrawal id {}: no such row", id);
      return attempt_result::finished(dead_letter(id, fmt::format("unknown withdrawal id {}", id)));
    }
    id = row->id;
    if (which == selector::next_pending) spdlog::info("db-poll: claimed pending withdrawal id={}", id);

    std::string problem;
    if (event != nullptr) {
      problem = describe_mismatch(*event, {row->user_id, row->to_address, row->amount, row->chain});
    }
    if (problem.empty() && row->chain != config_.chain.name) {
      problem = fmt::format("unknown chain \"{}\": this worker pays withdrawals on \"{}\"", row->chain,
                            config_.chain.name);
    }
    chain::address to;
    chain::uint256 value = 0;
    if (problem.empty() && row->status == "pending") problem = unpayable(*row, to, value);
    if (!problem.empty()) {
      const bool failed = row->status == "pending" && store::fail_and_refund(tx, id, "pending", problem, false);
      tx.commit();
      spdlog::warn("withdrawal {}: {}{}", id, problem, failed ? "; failed and refunded" : "");
      return attempt_result::finished(dead_letter(id, problem));
    }

    if (row->status == "broadcast" || row->status == "confirmed" || row->status == "failed") {
      tx.commit();
      metrics_.duplicates_skipped.Increment();
      spdlog::info("withdrawal {} is already {}: duplicate skipped", id, row->status);
      return attempt_result::finished({outcome::duplicate, id, {}, row->tx_hash.value_or("")});
    }

    to_send.id = id;
    if (row->status == "pending") {
      const fee_quote fees = quote_fees();
      const auto nonce = store::allocate_nonce(tx, config_.chain.name, from_text_);
      if (!nonce) {
        nonce_row_ready_ = false;  // someone removed it: initialise again on the next attempt
        return attempt_result::retry(fmt::format("hot_wallet_nonces has no row for {}", from_text_),
                                     failure_reason::database_unavailable);
      }
      const auto signed_tx = build_and_sign(config_.chain, {chain_id_, *nonce, to, value}, fees, key_);
      to_send.raw = signed_tx.raw;
      to_send.hash = signed_tx.hash;
      to_send.tx_hash = chain::to_hex(signed_tx.hash);
      if (!store::mark_signed(tx, id, from_text_, *nonce, chain::to_hex(signed_tx.raw, false), to_send.tx_hash)) {
        throw std::logic_error("withdrawal left status pending while locked");
      }
      tx.commit();
      spdlog::info("withdrawal {} signed: nonce {} tx {} ({} wei to {})", id, *nonce, to_send.tx_hash, value.str(),
                   to.to_checksum_string());
    } else {  // signed: a redelivery or a retry re-sends the stored bytes
      tx.commit();
      if (!row->raw_tx_hex || !row->tx_hash) throw std::logic_error("signed withdrawal without raw_tx/tx_hash");
      to_send.raw = chain::from_hex(*row->raw_tx_hex);
      to_send.tx_hash = *row->tx_hash;
      chain::from_hex(*row->tx_hash, to_send.hash);
    }
  }
  return send(to_send);
}

processor::attempt_result processor::send(const signed_withdrawal& w) {
  health_.beat(loop_);
  const auto sent = rpc_.send_raw_transaction(w.raw, w.hash);
  if (sent.outcome == send_outcome::transient) {
    return attempt_result::retry(fmt::format("withdrawal {}: broadcast of {} failed: {}", w.id, w.tx_hash, sent.message),
                                 failure_reason::node_unavailable);
  }
  if (sent.outcome == send_outcome::sent || sent.outcome == send_outcome::already_known) {
    auto lease = pool_.acquire();
    std::optional<double> since_created;
    {
      pqxx::work tx(*lease);
      since_created = store::mark_broadcast(tx, w.id);
      tx.commit();
    }
    if (!since_created) {
      spdlog::info("withdrawal {}: tx {} sent, but another worker had already moved it on", w.id, w.tx_hash);
      return attempt_result::finished({outcome::broadcast, w.id, {}, w.tx_hash});
    }
    metrics_.broadcasts.Increment();
    metrics_.event_to_broadcast_seconds.Observe(*since_created);
    spdlog::info("withdrawal {} broadcast: tx {}{}", w.id, w.tx_hash,
                 sent.outcome == send_outcome::already_known ? " (already known to the node)" : "");
    return attempt_result::finished({outcome::broadcast, w.id, {}, w.tx_hash});
  }

  // Rejected for good. Nonce too low (and the chain does not know our hash): another transaction
  // took the nonce on chain, so it is not released; the counter catches up with the node instead.
  std::optional<std::uint64_t> node_pending;
  if (sent.nonce_too_low) node_pending = rpc_.get_transaction_count(from_, "pending");
  const std::string reason = fmt::format("rejected by the node: {}", sent.message);
  auto lease = pool_.acquire();
  bool failed = false;
  {
    pqxx::work tx(*lease);
    failed = store::fail_and_refund(tx, w.id, "signed", reason, !sent.nonce_too_low);
    if (failed && node_pending) store::resync_nonce(tx, config_.chain.name, from_text_, *node_pending);
    tx.commit();
  }
  if (!failed) {
    spdlog::info("withdrawal {}: node refused tx {} ({}), but another worker had already moved it on", w.id,
                 w.tx_hash, sent.message);
    return attempt_result::finished({outcome::duplicate, w.id, {}, w.tx_hash});
  }
  metrics_.failure(failure_reason::rejected);
  spdlog::error("withdrawal {} failed and refunded: tx {} {}{}", w.id, w.tx_hash, reason,
                sent.nonce_too_low ? "" : " (nonce released for reuse)");
  return attempt_result::finished({outcome::rejected, w.id, reason, w.tx_hash});
}

}  // namespace broadcaster
