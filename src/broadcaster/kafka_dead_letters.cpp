#include "broadcaster/kafka_dead_letters.hpp"

#include <optional>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include "common/backoff.hpp"

namespace broadcaster {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// After a stop request, how long an undelivered DLQ message may still hold the shutdown.
constexpr auto dead_letter_stop_grace = 10s;

}  // namespace

// Runs on the run() thread (from rd_kafka_consumer_poll / rd_kafka_poll). Connection failures
// repeat every retry while a broker is down: only "all brokers down" is worth a warning.
void log_kafka_client_error(common::repeated_warning& warning, int error_code, const char* reason) {
  const auto code = static_cast<rd_kafka_resp_err_t>(error_code);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    spdlog::error("kafka: fatal error: {}", reason);
  } else if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    warning.warn(fmt::format("kafka: all brokers are down ({}); waiting for them", reason));
  } else {
    spdlog::debug("librdkafka error {}: {}", rd_kafka_err2name(code), reason);
  }
}

kafka_dead_letters::kafka_dead_letters(const settings& config, metrics& counters, health& status,
                                       common::process_signals& signals, common::repeated_warning& broker_warning,
                                       const char* loop)
    : config_(config),
      metrics_(counters),
      health_(status),
      signals_(signals),
      broker_warning_(broker_warning),
      loop_(loop) {
  auto producer_conf = common::kafka::make_conf(config.kafka, {{"client.id", "broadcaster-worker-dlq"},
                                                               {"enable.idempotence", "true"},
                                                               {"acks", "all"},
                                                               {"linger.ms", "0"},
                                                               {"message.timeout.ms", "30000"}});
  rd_kafka_conf_set_dr_msg_cb(producer_conf.get(), &kafka_dead_letters::on_delivery);
  rd_kafka_conf_set_error_cb(producer_conf.get(), &kafka_dead_letters::on_error);
  common::kafka::log_to_spdlog(producer_conf.get());
  rd_kafka_conf_set_opaque(producer_conf.get(), this);
  producer_ = common::kafka::make_producer(std::move(producer_conf));
}

void kafka_dead_letters::on_error(rd_kafka_t*, int error_code, const char* reason, void* opaque) {
  log_kafka_client_error(static_cast<kafka_dead_letters*>(opaque)->broker_warning_, error_code, reason);
}

void kafka_dead_letters::on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<kafka_dead_letters*>(opaque);
  const auto token = reinterpret_cast<std::uintptr_t>(m->_private);
  const auto it = self->deliveries_.find(token);
  if (it == self->deliveries_.end()) return;  // abandoned at shutdown
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    it->second.what = delivery::state::delivered;
  } else {
    it->second.what = delivery::state::failed;
    it->second.error = rd_kafka_err2str(m->err);
  }
}

void kafka_dead_letters::poll() { rd_kafka_poll(producer_.get(), 0); }

void kafka_dead_letters::flush() {
  if (const auto err = rd_kafka_flush(producer_.get(), 5000); err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    spdlog::warn("kafka: {} dead-letter message(s) not delivered at shutdown", rd_kafka_outq_len(producer_.get()));
  }
}

bool kafka_dead_letters::publish(const rd_kafka_message_t* m, const std::string& reason) {
  common::backoff delay(config_.consumer.retry_backoff, config_.consumer.retry_backoff_max);
  const std::string origin = fmt::format("{}[{}]@{}", rd_kafka_topic_name(m->rkt), m->partition, m->offset);
  std::optional<clock::time_point> give_up_at;
  for (;;) {
    common::kafka::headers headers;
    rd_kafka_headers_t* original = nullptr;
    if (rd_kafka_message_headers(m, &original) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      headers.reset(rd_kafka_headers_copy(original));
    } else {
      headers = common::kafka::new_headers(4);
    }
    common::kafka::add_header(headers.get(), "error", reason);
    common::kafka::add_header(headers.get(), "original-topic", rd_kafka_topic_name(m->rkt));
    common::kafka::add_header(headers.get(), "original-partition", std::to_string(m->partition));
    common::kafka::add_header(headers.get(), "original-offset", std::to_string(m->offset));

    const std::uintptr_t token = ++next_token_;
    deliveries_[token] = delivery{};
    std::string failure;
    common::kafka::produce_fields fields;
    fields.topic = config_.consumer.dlq_topic.c_str();
    if (m->key != nullptr) fields.key = std::string_view(static_cast<const char*>(m->key), m->key_len);
    fields.value = std::string_view(static_cast<const char*>(m->payload), m->len);
    fields.opaque = reinterpret_cast<void*>(token);
    const auto produce_error = common::kafka::produce(producer_.get(), fields, headers);
    if (produce_error) {
      deliveries_.erase(token);
      failure = rd_kafka_error_string(produce_error.get());
    } else {
      while (deliveries_[token].what == delivery::state::pending) {
        rd_kafka_poll(producer_.get(), 100);
        health_.beat(loop_);
        if (signals_.stop_requested()) {
          if (!give_up_at) give_up_at = clock::now() + dead_letter_stop_grace;
          if (clock::now() >= *give_up_at) {
            deliveries_.erase(token);
            spdlog::warn("{}: dead-letter delivery unconfirmed at shutdown: offset left unstored", origin);
            return false;
          }
        }
      }
      const delivery outcome = deliveries_[token];
      deliveries_.erase(token);
      if (outcome.what == delivery::state::delivered) {
        metrics_.dead_letters.Increment();
        metrics_.failure(failure_reason::dead_letter);
        spdlog::warn("{} → {}: {}", origin, config_.consumer.dlq_topic, reason);
        return true;
      }
      failure = outcome.error;
    }
    const auto wait = delay.next();
    spdlog::warn("{}: cannot publish to {}: {}; retrying in {} ms", origin, config_.consumer.dlq_topic, failure,
                 wait.count());
    health_.beat(loop_);
    if (signals_.wait_for(wait)) return false;
  }
}

}  // namespace broadcaster
