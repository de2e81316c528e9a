#include "broadcaster/kafka_source.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include "broadcaster/event_handler.hpp"
#include "broadcaster/kafka_dead_letters.hpp"
#include "common/kafka.hpp"
#include "common/logging.hpp"

namespace broadcaster {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr auto poll_timeout = 500ms;
constexpr std::size_t max_batch = 100;  // events processed as one run
constexpr auto commit_timeout = 10s;
constexpr auto lag_interval = 5s;
constexpr const char* loop_name = "source";

std::string partitions_text(const rd_kafka_topic_partition_list_t* list) {
  std::string out;
  for (int i = 0; i < list->cnt; ++i) {
    out += fmt::format("{}{}[{}]", i == 0 ? "" : ", ", list->elems[i].topic, list->elems[i].partition);
  }
  return out.empty() ? "none" : out;
}

class kafka_source final : public event_source {
 public:
  kafka_source(const settings& config, processor& worker, metrics& counters, health& status,
               common::process_signals& signals)
      : config_(config),
        worker_(worker),
        metrics_(counters),
        health_(status),
        signals_(signals),
        dead_letters_(config, counters, status, signals, error_warning_, loop_name) {
    auto consumer_conf =
        common::kafka::make_conf(config.kafka, {{"group.id", config.consumer.group},
                                                {"client.id", "broadcaster-worker"},
                                                {"partition.assignment.strategy", "cooperative-sticky"},
                                                {"enable.auto.commit", "true"},
                                                {"auto.commit.interval.ms", "1000"},
                                                {"enable.auto.offset.store", "false"},
                                                {"auto.offset.reset", "earliest"},
                                                {"session.timeout.ms", "10000"},
                                                {"heartbeat.interval.ms", "2000"},
                                                {"enable.partition.eof", "false"}});
    rd_kafka_conf_set_rebalance_cb(consumer_conf.get(), &kafka_source::on_rebalance);
    rd_kafka_conf_set_error_cb(consumer_conf.get(), &kafka_source::on_error);
    common::kafka::log_to_spdlog(consumer_conf.get());
    rd_kafka_conf_set_opaque(consumer_conf.get(), this);
    consumer_ = common::kafka::make_consumer(std::move(consumer_conf));
    // Route the main queue (errors, rebalances) to rd_kafka_consumer_poll().
    rd_kafka_poll_set_consumer(consumer_.get());

    common::kafka::partition_list topics(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(topics.get(), config.consumer.topic.c_str(), RD_KAFKA_PARTITION_UA);
    if (const auto err = rd_kafka_subscribe(consumer_.get(), topics.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(
          fmt::format("kafka: cannot subscribe to {}: {}", config.consumer.topic, rd_kafka_err2str(err)));
    }
  }

  ~kafka_source() override {
    if (!closed_) close();
  }

  std::string describe() const override { return "MQ Mode: Kafka Consumer"; }

  std::string check_ready(std::chrono::milliseconds timeout) override {
    if (common::kafka::broker_reachable(consumer_.get(), timeout)) return {};
    return fmt::format("Kafka brokers {} do not answer", config_.kafka.bootstrap_servers);
  }

  void run() override {
    spdlog::info("consuming {} in group {} from {} (dead letters to {})", config_.consumer.topic,
                 config_.consumer.group, config_.kafka.bootstrap_servers, config_.consumer.dlq_topic);
    auto last_lag = clock::now() - lag_interval;
    while (!signals_.stop_requested()) {
      health_.beat(loop_name);
      dead_letters_.poll();
      if (clock::now() - last_lag >= lag_interval) {
        update_lag();
        last_lag = clock::now();
      }
      // What one poll fetched, up to max_batch messages, is processed as a run (one signing
      // transaction and one send batch for the ordinary events; see processor::broadcast_batch).
      std::vector<common::kafka::message> run;
      for (auto wait = poll_timeout; run.size() < max_batch; wait = 0ms) {
        common::kafka::message m(rd_kafka_consumer_poll(consumer_.get(), static_cast<int>(wait.count())));
        if (!m) break;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          on_consumer_error(m.get());
          break;
        }
        run.push_back(std::move(m));
      }
      if (!run.empty() && !handle(run)) break;  // stop requested with an event unfinished: its offset stays unstored
    }
    health_.beat(loop_name);
    close();
  }

 private:
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
                           void* opaque) {
    auto* self = static_cast<kafka_source*>(opaque);
    const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      spdlog::info("kafka: assigned {}", partitions_text(partitions));
      if (cooperative) {
        common::kafka::error_object e(rd_kafka_incremental_assign(rk, partitions));
        if (e) spdlog::error("kafka: incremental assign failed: {}", rd_kafka_error_string(e.get()));
      } else {
        rd_kafka_assign(rk, partitions);
      }
      return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      spdlog::info("kafka: revoking {}", partitions_text(partitions));
      if (rd_kafka_assignment_lost(rk)) {
        spdlog::warn(
            "kafka: assignment lost (session expired): its stored offsets cannot be committed; "
            "events after the last commit will be redelivered and skipped as duplicates");
      } else {
        self->commit_stored("revoke");
      }
      if (cooperative) {
        common::kafka::error_object e(rd_kafka_incremental_unassign(rk, partitions));
        if (e) spdlog::error("kafka: incremental unassign failed: {}", rd_kafka_error_string(e.get()));
      } else {
        rd_kafka_assign(rk, nullptr);
      }
      return;
    }
    spdlog::error("kafka: rebalance error: {}", rd_kafka_err2str(err));
    rd_kafka_assign(rk, nullptr);
  }

  static void on_error(rd_kafka_t*, int error_code, const char* reason, void* opaque) {
    log_kafka_client_error(static_cast<kafka_source*>(opaque)->error_warning_, error_code, reason);
  }

  // Commits the stored offsets of the whole assignment, waiting at most commit_timeout.
  bool commit_stored(const char* why) {
    common::kafka::queue results(rd_kafka_queue_new(consumer_.get()));
    auto err = rd_kafka_commit_queue(consumer_.get(), nullptr, results.get(), nullptr, nullptr);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      common::kafka::event done(
          rd_kafka_queue_poll(results.get(), static_cast<int>(std::chrono::milliseconds(commit_timeout).count())));
      if (!done) {
        spdlog::warn("kafka: offset commit ({}) did not finish within {} s", why, commit_timeout.count());
        return false;
      }
      err = rd_kafka_event_error(done.get());
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
      spdlog::debug("kafka: offsets committed ({})", why);
      return true;
    }
    spdlog::warn("kafka: offset commit ({}) failed: {}", why, rd_kafka_err2str(err));
    return false;
  }

  void close() {
    closed_ = true;
    spdlog::info("kafka: committing offsets and leaving group {}", config_.consumer.group);
    commit_stored("shutdown");
    // The blocking close serves the revoke (and its commit in on_rebalance) and discards messages
    // already prefetched for us. Serving rd_kafka_consumer_close_queue() with
    // rd_kafka_queue_poll_callback() instead aborts inside librdkafka when such messages are queued
    // (an op nobody consumes). Its wait is bounded by the group protocol's own timeouts.
    if (const auto err = rd_kafka_consumer_close(consumer_.get()); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::warn("kafka: leaving group {} failed: {}; the broker will expire the session", config_.consumer.group,
                   rd_kafka_err2str(err));
    } else {
      spdlog::info("kafka: left group {}", config_.consumer.group);
    }
    dead_letters_.flush();
  }

  void on_consumer_error(const rd_kafka_message_t* m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
      std::array<char, 512> reason{};
      const auto original = rd_kafka_fatal_error(consumer_.get(), reason.data(), reason.size());
      throw std::runtime_error(
          fmt::format("kafka: fatal consumer error {}: {}", rd_kafka_err2name(original), reason.data()));
    }
    const std::string text = m->rkt != nullptr
                                 ? fmt::format("kafka: {} ({}): {}", rd_kafka_err2name(m->err),
                                               rd_kafka_topic_name(m->rkt), rd_kafka_message_errstr(m))
                                 : fmt::format("kafka: {}: {}", rd_kafka_err2name(m->err), rd_kafka_message_errstr(m));
    error_warning_.warn(text);
  }

  static inbound_event to_event(const rd_kafka_message_t* m) {
    inbound_event event;
    if (m->payload != nullptr) event.payload = std::string_view(static_cast<const char*>(m->payload), m->len);
    event.origin = fmt::format("{}[{}]@{}", rd_kafka_topic_name(m->rkt), m->partition, m->offset);
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {  // owned by the message
      const char* name = nullptr;
      const void* value = nullptr;
      std::size_t size = 0;
      for (std::size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        event.headers[name] = value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string();
      }
    }
    return event;
  }

  // Processes a run of messages in order; true when every offset may advance (stored), false to
  // stop (the offsets from the unfinished event on stay unstored).
  bool handle(const std::vector<common::kafka::message>& run) {
    std::vector<inbound_event> events;
    events.reserve(run.size());
    for (const auto& m : run) events.push_back(to_event(m.get()));
    const auto results = handle_events(worker_, metrics_, events);
    for (std::size_t i = 0; i < results.size(); ++i) {
      const rd_kafka_message_t* m = run[i].get();
      const process_result& result = results[i];
      if (!acknowledge(result)) return false;
      if (result.what == outcome::dead_letter && !dead_letters_.publish(m, result.reason)) return false;

      common::kafka::partition_list offsets(rd_kafka_topic_partition_list_new(1));
      auto* entry = rd_kafka_topic_partition_list_add(offsets.get(), rd_kafka_topic_name(m->rkt), m->partition);
      entry->offset = m->offset + 1;
      const auto err = rd_kafka_offsets_store(consumer_.get(), offsets.get());
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR || entry->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        // The partition moved to another member meanwhile: it redelivers, the status guard skips.
        spdlog::warn("kafka: offset of {} not stored ({}): partition no longer assigned", events[i].origin,
                     rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : entry->err));
      }
    }
    return results.size() == run.size();
  }

  void update_lag() {
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(consumer_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    const common::kafka::partition_list assignment(raw);
    if (assignment->cnt == 0) {
      metrics_.consumer_lag.Set(0);
      return;
    }
    rd_kafka_position(consumer_.get(), assignment.get());
    // Nothing consumed yet from a partition since it was assigned: its position is unknown, so
    // count from the group's committed offset instead (one coordinator round trip, bounded).
    common::kafka::partition_list unknown(rd_kafka_topic_partition_list_new(assignment->cnt));
    for (int i = 0; i < assignment->cnt; ++i) {
      if (assignment->elems[i].offset < 0) {
        rd_kafka_topic_partition_list_add(unknown.get(), assignment->elems[i].topic, assignment->elems[i].partition);
      }
    }
    if (unknown->cnt > 0 && rd_kafka_committed(consumer_.get(), unknown.get(), 1000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return;  // keep the last value rather than report a guess
    }
    std::int64_t lag = 0;
    for (int i = 0; i < assignment->cnt; ++i) {
      const auto& p = assignment->elems[i];
      std::int64_t low = 0;
      std::int64_t high = 0;
      // Cached watermarks from fetch responses: no broker round trip.
      if (rd_kafka_get_watermark_offsets(consumer_.get(), p.topic, p.partition, &low, &high) !=
              RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0) {
        continue;
      }
      std::int64_t position = p.offset;
      if (position < 0) {
        const auto* committed = rd_kafka_topic_partition_list_find(unknown.get(), p.topic, p.partition);
        position = committed != nullptr && committed->offset >= 0 ? committed->offset : low;  // earliest
      }
      if (high > position) lag += high - position;
    }
    metrics_.consumer_lag.Set(static_cast<double>(lag));
  }

  const settings& config_;
  processor& worker_;
  metrics& metrics_;
  health& health_;
  common::process_signals& signals_;
  // Declared before dead_letters_, which shares it: broker and consume errors, each logged at
  // most every 30 s.
  common::repeated_warning error_warning_;
  common::kafka::handle consumer_;
  kafka_dead_letters dead_letters_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<event_source> make_kafka_source(const settings& config, processor& worker, metrics& counters,
                                                health& status, common::process_signals& signals) {
  return std::make_unique<kafka_source>(config, worker, counters, status, signals);
}

}  // namespace broadcaster
