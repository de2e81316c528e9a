#include "broadcaster/processor.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include "broadcaster/withdrawal_store.hpp"
#include "chain/hex.hpp"
#include "chain/units.hpp"
#include "common/backoff.hpp"

namespace broadcaster {

std::string_view to_string(outcome value) noexcept {
  switch (value) {
    case outcome::broadcast:
      return "broadcast";
    case outcome::duplicate:
      return "duplicate";
    case outcome::held:
      return "held";
    case outcome::skipped:
      return "skipped";
    case outcome::refunded:
      return "refunded";
    case outcome::dead_letter:
      return "dead_letter";
    case outcome::interrupted:
      return "interrupted";
  }
  return "unknown";
}

struct processor::attempt_result {
  std::optional<process_result> done;  // set when finished
  bool idle = false;                   // next_pending found nothing
  std::string transient;               // set when the attempt should be retried after a backoff
  std::string_view transient_reason = failure_reason::node_unavailable;

  static attempt_result finished(process_result r) { return {std::move(r), false, {}, {}}; }
  static attempt_result retry(std::string why, std::string_view reason) {
    return {std::nullopt, false, std::move(why), reason};
  }
};

namespace {

constexpr std::string_view health_component = "processing";
// Unexpected errors (not transient by classification) are retried this often before the event
// is dead-lettered, so a bug or a broken row cannot block a partition for ever. A pending row
// left behind that way is re-driven by the tracker after reconcile.pending_after.
constexpr unsigned max_internal_attempts = 3;

// Every database trouble is worth another attempt here except a permanent error: even an in-doubt
// commit, because the next attempt re-reads the row under its lock, which tells what happened.
bool transient_database_error(const std::exception& error) {
  return common::classify(error) != common::db_error_kind::permanent;
}

process_result dead_letter(std::int64_t id, std::string reason) {
  return {outcome::dead_letter, id, std::move(reason), {}};
}

chain::uint256 wei(const std::string& decimal) {
  const auto parsed = chain::parse_units(decimal, 0);
  if (!parsed) throw std::logic_error("a stored fee is not a whole number: " + decimal);
  return parsed.value;
}

}  // namespace

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

processor::processor(const settings& config, std::uint64_t chain_id, const chain::private_key& key,
                     common::connection_pool& pool, metrics& counters, health& status, common::process_signals& signals,
                     std::string loop)
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
      rpc_(config.chain.rpc_url, config.chain.rpc_timeout) {
  rpc_.on_call([this](std::string_view method) { metrics_.rpc_call(method); });
}

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

process_result processor::process_withdrawal(std::int64_t id, const events::withdrawal_created* event) {
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
    // Another chain's withdrawal belongs to its own worker, which reads it from the database.
    const bool failed = row && row->chain == config_.chain.name && row->status == withdrawal_status::pending &&
                        store::fail_and_refund(tx, id, "bad event: " + reason, false);
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

processor::attempt_result processor::attempt(selector which, std::int64_t id, const events::withdrawal_created* event) {
  ensure_nonce_row();
  store::version_row to_send;
  bool just_signed = false;
  {
    auto lease = pool_.acquire();  // released before sending: send() needs one of its own
    pqxx::work tx(*lease);
    const auto row =
        which == selector::by_id ? store::lock_withdrawal(tx, id) : store::lock_next_pending(tx, config_.chain.name);
    if (!row) {
      tx.commit();
      if (which == selector::next_pending) return {std::nullopt, true, {}, {}};
      spdlog::warn("unknown withdrawal id {}: no such row", id);
      return attempt_result::finished(dead_letter(id, fmt::format("unknown withdrawal id {}", id)));
    }
    id = row->id;
    if (which == selector::next_pending) spdlog::info("db-poll: claimed pending withdrawal id={}", id);
    if (row->chain != config_.chain.name) {
      tx.commit();
      metrics_.skipped(skip_reason::other_chain);
      spdlog::info("withdrawal {} is paid on \"{}\", this worker pays \"{}\": skipped", id, row->chain,
                   config_.chain.name);
      return attempt_result::finished({outcome::skipped, id, "other chain", {}});
    }

    std::string problem;
    if (event != nullptr) {
      problem = events::describe_mismatch(*event, {row->user_id, row->to_address, row->amount, row->chain});
    }
    chain::address to;
    chain::uint256 value = 0;
    if (problem.empty() && row->status == withdrawal_status::pending) problem = unpayable(*row, to, value);
    if (!problem.empty()) {
      const bool failed = row->status == withdrawal_status::pending && store::fail_and_refund(tx, id, problem, false);
      tx.commit();
      spdlog::warn("withdrawal {}: {}{}", id, problem, failed ? "; failed and refunded" : "");
      return attempt_result::finished(dead_letter(id, problem));
    }

    if (row->status != withdrawal_status::pending && row->status != withdrawal_status::signed_) {
      tx.commit();
      metrics_.duplicates_skipped.Increment();
      spdlog::info("withdrawal {} is already {}: duplicate skipped", id, to_sql(row->status));
      return attempt_result::finished({outcome::duplicate, id, {}, row->tx_hash.value_or("")});
    }

    if (row->status == withdrawal_status::pending) {
      if (row->cancel_requested) {
        const std::string reason = "cancelled by an operator before signing";
        store::fail_and_refund(tx, id, reason, false);
        tx.commit();
        metrics_.failure(failure_reason::cancelled);
        spdlog::warn("withdrawal {} failed and refunded: {}", id, reason);
        return attempt_result::finished({outcome::refunded, id, reason, {}});
      }
      const fee_quote fees = quote_fees();
      const auto nonce = store::allocate_nonce(tx, config_.chain.name, from_text_);
      if (!nonce) {
        nonce_row_ready_ = false;  // someone removed it: initialise again on the next attempt
        return attempt_result::retry(fmt::format("hot_wallet_nonces has no row for {}", from_text_),
                                     failure_reason::database_unavailable);
      }
      const auto signed_tx = build_and_sign(config_.chain, {chain_id_, *nonce, to, value}, fees, key_);
      const store::new_version first{store::version_kind::payment,  *nonce,
                                     chain::to_hex(signed_tx.hash), chain::to_hex(signed_tx.raw, false),
                                     fees.max_fee_per_gas.str(),    fees.max_priority_fee_per_gas.str()};
      const auto version_id = store::mark_signed(tx, id, from_text_, first);
      if (!version_id) throw std::logic_error("withdrawal left status pending while locked");
      tx.commit();
      just_signed = true;
      to_send.id = *version_id;
      to_send.withdrawal_id = id;
      to_send.nonce = *nonce;
      to_send.tx_hash = first.tx_hash;
      to_send.raw_tx_hex = first.raw_tx_hex;
      spdlog::info("withdrawal {} signed: nonce {} tx {} ({} wei to {}, max fee {} wei)", id, *nonce, first.tx_hash,
                   value.str(), to.to_checksum_string(), first.max_fee_per_gas);
    } else {  // signed: a redelivery or a retry sends the newest version
      const auto versions = store::versions_of(tx, {id});
      if (versions.empty()) throw std::logic_error(fmt::format("signed withdrawal {} has no version", id));
      const bool ever_sent = std::any_of(versions.begin(), versions.end(),
                                         [](const auto& v) { return v.since_last_sent_seconds.has_value(); });
      if (row->cancel_requested && !ever_sent) {
        // Its bytes never left this process: nothing can land, and the nonce can serve another payment.
        const std::string reason = "cancelled by an operator before any send";
        store::fail_and_refund(tx, id, reason, true);
        tx.commit();
        metrics_.failure(failure_reason::cancelled);
        spdlog::warn("withdrawal {} failed and refunded: {} (nonce released)", id, reason);
        return attempt_result::finished({outcome::refunded, id, reason, {}});
      }
      tx.commit();
      if (row->cancel_requested) {
        return attempt_result::finished({outcome::held, id, "cancel requested: the tracker replaces it", {}});
      }
      to_send = versions.back();
    }
  }
  // A retry after a transient failure re-reads the row (now signed) and records its attempt.
  return send(to_send, just_signed);
}

send_result processor::send_version(const store::version_row& version, bool attempt_recorded) {
  if (!attempt_recorded) {
    auto lease = pool_.acquire();
    pqxx::work tx(*lease);
    store::record_send_attempt(tx, version.id);
    tx.commit();  // before the bytes leave: from now on this nonce is never released
  }
  health_.beat(loop_);
  chain::hash256 hash{};
  chain::from_hex(version.tx_hash, hash);
  const auto sent = rpc_.send_raw_transaction(chain::from_hex(version.raw_tx_hex), hash);
  if (sent.outcome != send_outcome::sent && sent.outcome != send_outcome::already_known) return sent;
  auto lease = pool_.acquire();
  std::optional<double> since_created;
  {
    pqxx::work tx(*lease);
    since_created = store::mark_broadcast(tx, version.withdrawal_id);
    tx.commit();
  }
  if (since_created) {
    metrics_.broadcasts.Increment();
    metrics_.event_to_broadcast_seconds.Observe(*since_created);
    spdlog::info("withdrawal {} broadcast: tx {}{}", version.withdrawal_id, version.tx_hash,
                 sent.outcome == send_outcome::already_known ? " (already known to the node)" : "");
  }
  return sent;
}

processor::attempt_result processor::send(const store::version_row& version, bool attempt_recorded) {
  const auto sent = send_version(version, attempt_recorded);
  const auto id = version.withdrawal_id;
  switch (sent.outcome) {
    case send_outcome::transient:
      return attempt_result::retry(
          fmt::format("withdrawal {}: broadcast of {} failed: {}", id, version.tx_hash, sent.message),
          failure_reason::node_unavailable);
    case send_outcome::sent:
    case send_outcome::already_known:
      return attempt_result::finished({outcome::broadcast, id, {}, version.tx_hash});
    case send_outcome::rejected:
      break;
  }
  // Never final: an earlier send, another worker or another node may have these bytes in a pool.
  // The tracker retries; only the chain itself can prove the payment cannot land.
  metrics_.failure(failure_reason::rejected);
  const std::string reason = fmt::format("the node refused tx {}: {}", version.tx_hash, sent.message);
  spdlog::warn("withdrawal {}: {}; it stays signed and is retried (never refunded on a node's word)", id, reason);
  return attempt_result::finished({outcome::held, id, reason, version.tx_hash});
}

std::optional<store::version_row> processor::replace(const store::open_withdrawal& w, store::version_kind kind,
                                                     const store::version_row& previous, bool only_if_market_higher) {
  const fee_quote market = quote_fees();
  fee_quote before = market;
  if (previous.max_fee_per_gas && previous.max_priority_fee_per_gas) {
    before = {wei(*previous.max_fee_per_gas), wei(*previous.max_priority_fee_per_gas)};
  }
  if (only_if_market_higher && market.max_fee_per_gas <= before.max_fee_per_gas) return std::nullopt;
  const auto fees = bumped_fees(config_.chain, before, market);
  if (!fees) return std::nullopt;
  payment what = cancel_payment(chain_id_, w.nonce, from_);
  if (kind == store::version_kind::payment) {
    const auto to = chain::address::parse(w.to_address);
    const auto amount = chain::parse_units(w.amount, chain::eth_decimals);
    if (!to || !amount) throw std::logic_error(fmt::format("withdrawal {} was signed but is unpayable", w.id));
    what = {chain_id_, w.nonce, *to, amount.value};
  }
  const auto signed_tx = build_and_sign(config_.chain, what, *fees, key_);
  const store::new_version version{kind,
                                   w.nonce,
                                   chain::to_hex(signed_tx.hash),
                                   chain::to_hex(signed_tx.raw, false),
                                   fees->max_fee_per_gas.str(),
                                   fees->max_priority_fee_per_gas.str()};
  auto lease = pool_.acquire();
  pqxx::work tx(*lease);
  const auto row = store::lock_withdrawal(tx, w.id);
  if (!row || (row->status != withdrawal_status::signed_ && row->status != withdrawal_status::broadcast)) {
    return std::nullopt;
  }
  store::version_row out;
  out.id = store::add_version(tx, w.id, version);
  tx.commit();
  out.withdrawal_id = w.id;
  out.kind = kind;
  out.nonce = w.nonce;
  out.tx_hash = version.tx_hash;
  out.raw_tx_hex = version.raw_tx_hex;
  out.max_fee_per_gas = version.max_fee_per_gas;
  out.max_priority_fee_per_gas = version.max_priority_fee_per_gas;
  metrics_.fee_bumps.Increment();
  spdlog::warn("withdrawal {}: {} version {} at nonce {} (max fee {} wei, priority {} wei) replaces {}", w.id,
               store::to_sql(kind), out.tx_hash, w.nonce, version.max_fee_per_gas, version.max_priority_fee_per_gas,
               previous.tx_hash);
  return out;
}

}  // namespace broadcaster
