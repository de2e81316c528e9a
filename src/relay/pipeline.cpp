// The relay's work: heartbeat and leases, claim -> publish -> delete (pipelined in a backlog),
// per-row rejections and dead letters, topics the broker refuses as a whole.

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "relay/service_impl.hpp"

namespace relay {

using namespace std::chrono_literals;

namespace {
constexpr auto gauge_interval = 5s;
}  // namespace

void service::impl::refresh_from_heartbeat(bool& claim_now) {
  const auto now = clock_type::now();
  const bool lease_due = now >= next_lease_refresh;
  const bool gauges_due = now >= next_gauges;
  // An idle wake-up (no NOTIFY) asks "is there work?" in the same statement as the rest, so an
  // idle relay costs the database about one query per poll interval.
  if (claim_now && !lease_due && !gauges_due) return;
  const auto beat = db->beat(leases.owned(), gauges_due);
  oldest_age = beat.oldest_age_seconds;
  metrics.oldest_age(beat.oldest_age_seconds.value_or(0));
  if (beat.pending_rows) {
    pending_rows = beat.pending_rows;
    metrics.pending_rows(*beat.pending_rows);
    next_gauges = now + gauge_interval;
    if (config.outbox.dead_letter_blocks_key) {
      const auto [keys, age] = db->held_keys();
      metrics.held_keys(keys, age.value_or(0));
    }
  }
  bool leases_changed = false;
  if (lease_due) {
    leases_changed = leases.rebalance(*db, beat.live_relays);
    metrics.partitions_owned(leases.owned().size());
    next_lease_refresh = now + config.outbox.lease_refresh;
  }
  claim_now = claim_now || beat.has_work || leases_changed;
}

// Claim-and-delete → publish → commit, once, or as a pipeline while batches come back full: the
// next batch is claimed (on the store's claims session; SKIP LOCKED passes over the rows in
// flight) while the broker acknowledges the current one, and it is sent as soon as the current
// one's outcome is known, so that committing the current batch overlaps publishing the next. A
// batch not acknowledged in full is settled row by row instead (claimed_batch::settle_slowly). Both
// sessions hold the partitions' leases (store.hpp), and a batch is sent only after a round trip on
// its own session showed that session alive: a relay whose session ended (terminated, or frozen
// past the freeze bound) sends nothing of that batch. The next
// batch goes out only when every row of the current one was acknowledged; otherwise it is rolled
// back unsent (its rows are claimed again after this batch committed), so that no row overtakes an
// earlier row of its key that stays in the table. The pipeline also pauses for every heartbeat and
// lease change, and a stop: those need the main session free and no claim of ours open.
batch_outcome service::impl::run_batches() {
  batch_outcome outcome;
  const auto started = clock_type::now();
  // Topics due for a retry: let the client look at them again first (a topic created meanwhile).
  std::vector<std::string> retrying;
  for (const auto& [topic, state] : blocked) {
    if (state.refused && state.retry_at <= started) retrying.push_back(topic);
  }
  if (!retrying.empty()) broker->refresh_topics(retrying);
  auto first = claim();
  outcome.claimed = first.rows().size();
  if (!retrying.empty() && first.rows().size() < config.outbox.batch_size) {
    // Every claimable row of ours is in this batch: a retried topic with none left here is no
    // longer ours to report (another relay owns its rows now, or they are gone).
    for (const auto& topic : retrying) {
      const bool has_rows = std::any_of(first.rows().begin(), first.rows().end(),
                                        [&](const outbox_row& row) { return row.topic == topic; });
      if (!has_rows) forget_topic(topic);
    }
  }
  if (first.rows().empty()) {
    first.commit();
    return outcome;
  }
  std::optional<sent_batch> current = send(std::move(first), started, clock_type::now());
  while (current) {
    std::optional<claimed_batch> next;
    clock_type::time_point next_claim_started{};
    clock_type::time_point next_claimed_at{};
    if (current->batch.rows().size() >= config.outbox.batch_size && may_claim_ahead()) {
      next_claim_started = clock_type::now();
      next.emplace(claim());
      next_claimed_at = clock_type::now();
    }
    const auto collect_started = clock_type::now();
    const auto results = broker->collect(current->deadline, [this] { return keep_waiting(); });
    current->waited = clock_type::now() - collect_started;
    const bool all_acknowledged = std::all_of(results.begin(), results.end(), [](const delivery_result& r) {
      return r.status == delivery_status::persisted;
    });
    std::optional<sent_batch> following;
    if (next) {
      outcome.claimed = next->rows().size();
      if (all_acknowledged && !next->rows().empty() && !stopping()) {
        following = send(std::move(*next), next_claim_started, next_claimed_at);
      } else {
        next->roll_back();
      }
    }
    finish(*current, results, outcome);
    current = std::move(following);
  }
  return outcome;
}

claimed_batch service::impl::claim() { return db->claim(leases.owned(), config.outbox.batch_size, excluded_topics()); }

sent_batch service::impl::send(claimed_batch batch, clock_type::time_point claim_started,
                               clock_type::time_point claimed_at) {
  batch.confirm_held();  // throws when its session (and with it our lease) is gone
  metrics.batch(batch.rows().size());
  const auto now = clock_type::now();
  const auto deadline = now + config.outbox.delivery_timeout;
  broker->send(batch.rows(), deadline, [this] { return keep_waiting(); });
  return {std::move(batch), claim_started, claimed_at, now, deadline};
}

bool service::impl::may_claim_ahead() {
  const auto now = clock_type::now();
  return !stopping() && broker_up && now < next_lease_refresh && now < next_gauges && !daemon.reload_pending();
}

void service::impl::finish(sent_batch& sent, const std::vector<delivery_result>& results, batch_outcome& outcome) {
  const auto& rows = sent.batch.rows();
  // The fast path: every row acknowledged, and the claim already deleted them all: commit. Any
  // other outcome takes the slow path for this batch: the claim is rolled back, the rows are locked
  // again, and each row's outcome is written as before the fast path existed.
  const bool all_acknowledged = std::all_of(
      results.begin(), results.end(), [](const delivery_result& r) { return r.status == delivery_status::persisted; });
  if (!all_acknowledged) sent.batch.settle_slowly();
  std::vector<std::int64_t> acknowledged;
  acknowledged.reserve(rows.size());
  std::size_t dead_lettered = 0;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    const auto& result = results[i];
    switch (result.status) {
      case delivery_status::persisted:
        acknowledged.push_back(row.id);
        metrics.published(row.topic, row.age_seconds + seconds(result.at - sent.claimed_at));
        if (!blocked.empty()) topic_flows(row.topic);
        break;
      case delivery_status::rejected:
        metrics.publish_error(result.reason);
        handle_rejection(sent.batch, row, result, dead_lettered);
        break;
      case delivery_status::failed:
        metrics.publish_error(result.reason);
        if (!outcome.broker_failure) outcome.broker_failure = result.error;
        outcome.failing.try_emplace(row.topic, result.reason);
        break;
      case delivery_status::blocked:
        metrics.publish_error(result.reason);
        outcome.blocked.try_emplace(row.topic, result.reason);
        break;
      case delivery_status::held_back:
        break;
    }
  }
  const auto acknowledged_at = clock_type::now();
  if (!all_acknowledged) sent.batch.remove(acknowledged);
  sent.batch.commit();
  spdlog::debug(
      "batch of {}: claimed in {:.1f}ms, acknowledged {:.1f}ms after sending ({:.1f}ms of it waited "
      "for), {} in {:.1f}ms",
      rows.size(), 1000 * seconds(sent.claimed_at - sent.claim_started), 1000 * seconds(acknowledged_at - sent.sent_at),
      1000 * seconds(sent.waited), all_acknowledged ? "committed" : "settled row by row and committed",
      1000 * seconds(clock_type::now() - acknowledged_at));
  outcome.published += acknowledged.size();
  published_total += acknowledged.size();
  dead_lettered_total += dead_lettered;
  for (std::size_t i = 0; i < dead_lettered; ++i) metrics.dead_lettered();
  if (outcome.broker_failure && !acknowledged.empty()) {
    spdlog::debug("batch of {}: {} acknowledged, the rest stays: {}", rows.size(), acknowledged.size(),
                  *outcome.broker_failure);
  }
}

void service::impl::handle_rejection(claimed_batch& batch, const outbox_row& row, const delivery_result& result,
                                     std::size_t& dead_lettered) {
  const int attempts = row.attempts + 1;
  const std::string key = row.key ? *row.key : "(none)";
  if (attempts >= config.outbox.max_attempts) {
    batch.dead_letter(row, result.error);
    ++dead_lettered;
    spdlog::error(
        "outbox row {} (topic {}, key {}) moved to outbox_dead_letters after {} attempts: {} "
        "(`walletctl dead-letters requeue {}` puts it back)",
        row.id, row.topic, key, attempts, result.error, row.id);
    return;
  }
  const auto retry_in = row_backoff.delay_for(static_cast<unsigned>(row.attempts));
  batch.reject(row, result.error, retry_in);
  const auto due = clock_type::now() + retry_in + 20ms;  // the database's clock set next_attempt_at
  if (!retry_due || due < *retry_due) retry_due = due;
  spdlog::warn(
      "outbox row {} (topic {}, key {}) rejected by the broker, attempt {} of {}: {}; next attempt in {}ms "
      "(later rows of its key wait)",
      row.id, row.topic, key, attempts, config.outbox.max_attempts, result.error, retry_in.count());
}

void service::impl::topics_blocked(const std::map<std::string, std::string>& topics) {
  const auto now = clock_type::now();
  const auto retry_at = now + topic_backoff.next();
  for (const auto& [topic, reason] : topics) {
    auto [it, fresh] = blocked.try_emplace(topic, blocked_topic{reason, now, retry_at, true});
    if (fresh || !it->second.refused) {
      spdlog::error(
          "topic {}: the broker refuses every message ({}); its rows stay in the outbox (no attempt "
          "counted) and are retried with backoff, other topics flow meanwhile",
          topic, reason);
    }
    if (it->second.reason != reason) metrics.publish_blocked(topic, it->second.reason, false);
    it->second.reason = reason;
    it->second.retry_at = retry_at;
    it->second.refused = true;
    metrics.publish_blocked(topic, reason, true);
  }
  if (!retry_due || retry_at < *retry_due) retry_due = retry_at;
  publish_blocked_summary();
}

void service::impl::topics_failing(const std::map<std::string, std::string>& topics) {
  const auto now = clock_type::now();
  for (const auto& [topic, reason] : topics) {
    auto [it, fresh] = blocked.try_emplace(topic, blocked_topic{reason, now, now, false});
    if (!fresh && it->second.reason != reason) {
      metrics.publish_blocked(topic, it->second.reason, false);
      it->second.reason = reason;
    }
    metrics.publish_blocked(topic, reason, true);
  }
  publish_blocked_summary();
}

void service::impl::topic_flows(const std::string& topic) {
  const auto it = blocked.find(topic);
  if (it == blocked.end()) return;
  spdlog::info("topic {}: the broker accepts messages again after {:.1f}s ({} before)", topic,
               seconds(clock_type::now() - it->second.since), it->second.reason);
  forget_topic(topic);
}

void service::impl::forget_topic(const std::string& topic) {
  const auto it = blocked.find(topic);
  if (it == blocked.end()) return;
  metrics.publish_blocked(topic, it->second.reason, false);
  blocked.erase(it);
  if (blocked.empty()) topic_backoff.reset();
  publish_blocked_summary();
}

void service::impl::forget_failing_topics() {
  std::vector<std::string> failing;
  for (const auto& [topic, state] : blocked) {
    if (!state.refused) failing.push_back(topic);
  }
  for (const auto& topic : failing) forget_topic(topic);
}

void service::impl::publish_blocked_summary() {
  std::string summary;
  for (const auto& [topic, state] : blocked) {
    summary += fmt::format("{}{} ({})", summary.empty() ? "" : ", ", topic, state.reason);
  }
  const std::lock_guard lock(blocked_mutex);
  blocked_summary = std::move(summary);
}

std::vector<std::string> service::impl::excluded_topics() const {
  std::vector<std::string> out;
  if (blocked.empty()) return out;
  const auto now = clock_type::now();
  for (const auto& [topic, state] : blocked) {
    if (state.retry_at > now) out.push_back(topic);
  }
  return out;
}

bool service::impl::wait_for_work() {
  // Wake for a rejected row's retry when it comes before the next poll.
  auto deadline = clock_type::now() + config.outbox.poll_interval;
  if (retry_due) deadline = std::min(deadline, *std::exchange(retry_due, std::nullopt));
  while (!stopping()) {
    housekeeping();
    if (auto problem = broker->connectivity_problem()) {
      broker_unavailable(*problem);
      return false;
    }
    const auto now = clock_type::now();
    if (now >= deadline) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (db->await_notification(std::min<std::chrono::milliseconds>(left, wait_slice))) return true;
  }
  return false;
}

bool service::impl::keep_waiting() {
  ping();
  if (auto problem = broker->connectivity_problem()) broker_unavailable(*problem);
  if (!stopping()) return true;
  return clock_type::now() < *daemon.stop_deadline();
}

}  // namespace relay
