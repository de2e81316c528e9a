#include "relay/kafka_publisher.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace relay {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

delivery_status classify_kafka_error(int error_code) noexcept {
  switch (static_cast<rd_kafka_resp_err_t>(error_code)) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return delivery_status::persisted;
    // The message itself is the problem: sending it again unchanged will not help, so it counts as
    // an attempt and may end as a dead letter. TOPIC_EXCEPTION is an invalid topic name (the row's
    // own topic column), which no operator action can make valid.
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return delivery_status::rejected;
    // The topic or the cluster refuses every message for now (a topic not created yet with
    // auto-creation off, an ACL, too few in-sync replicas, no leader): no row's fault. Counting
    // these as attempts would dead-letter the whole backlog during one operator mistake.
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
      return delivery_status::blocked;
    // Everything else (timeouts, transport errors, all brokers down, purged, fatal): not the
    // message's fault either; the broker did not answer in time.
    default:
      return delivery_status::failed;
  }
}

std::string kafka_error_reason(int error_code) {
  std::string_view name = rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(error_code));
  while (!name.empty() && name.front() == '_') name.remove_prefix(1);
  std::string reason(name);
  std::transform(reason.begin(), reason.end(), reason.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return reason;
}

std::vector<kafka_header> kafka_headers(const std::string& headers_json) {
  const auto object = nlohmann::json::parse(headers_json, nullptr, false);
  if (!object.is_object()) throw std::invalid_argument("headers must be a JSON object, got: " + headers_json);
  std::vector<kafka_header> out;
  out.reserve(object.size());
  for (const auto& [name, value] : object.items()) {
    if (name == "outbox-id") continue;  // ours is the one consumers deduplicate on
    if (value.is_string()) {
      out.emplace_back(name, value.get<std::string>());
    } else if (value.is_null()) {
      out.emplace_back(name, std::nullopt);
    } else {
      out.emplace_back(name, value.dump());
    }
  }
  return out;
}

// The batch between send() and collect(). Written by librdkafka's callbacks, which run on the
// relay thread inside rd_kafka_poll()/flush().
struct kafka_publisher::batch_state {
  // Tags every message of a send() call, so a late report of an earlier batch is recognised.
  std::uint32_t generation = 0;
  bool open = false;  // between send() and the end of collect()
  std::vector<delivery_result> results;
  std::vector<bool> awaiting;
  std::size_t outstanding = 0;
  std::optional<std::string> connectivity_problem;
};

namespace {

void* message_tag(std::uint32_t generation, std::size_t index) {
  return reinterpret_cast<void*>((static_cast<std::uintptr_t>(generation) << 32) | static_cast<std::uintptr_t>(index));
}

std::string describe(rd_kafka_resp_err_t code) {
  return fmt::format("{} ({})", rd_kafka_err2str(code), kafka_error_reason(code));
}

std::chrono::milliseconds until(clock_type::time_point deadline) {
  return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()));
}

int poll_ms(std::chrono::milliseconds wait) { return static_cast<int>(std::min(wait, 100ms).count()); }

}  // namespace

void kafka_publisher::on_delivery(rd_kafka_s*, const rd_kafka_message_s* message, void* opaque) {
  auto* state = static_cast<batch_state*>(opaque);
  const auto tag = reinterpret_cast<std::uintptr_t>(message->_private);
  const auto generation = static_cast<std::uint32_t>(tag >> 32);
  const auto index = static_cast<std::size_t>(tag & 0xffffffffU);
  if (generation != state->generation || !state->open || index >= state->awaiting.size() || !state->awaiting[index]) {
    spdlog::debug("ignoring a late Kafka delivery report ({}) of an earlier batch", rd_kafka_err2name(message->err));
    return;
  }
  state->awaiting[index] = false;
  --state->outstanding;
  auto& result = state->results[index];
  result.at = clock_type::now();
  result.status = classify_kafka_error(message->err);
  if (result.status != delivery_status::persisted) {
    result.error = describe(message->err);
    result.reason = kafka_error_reason(message->err);
  } else {
    // Delivered: whatever connectivity trouble was reported before is over.
    state->connectivity_problem.reset();
  }
}

void kafka_publisher::on_error(rd_kafka_s*, int error_code, const char* reason, void* opaque) {
  auto* state = static_cast<batch_state*>(opaque);
  const auto code = static_cast<rd_kafka_resp_err_t>(error_code);
  if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    state->connectivity_problem = fmt::format("all Kafka brokers are down ({})", reason);
  }
  // Everything else (one line per failed connect attempt) would flood the log while a broker is
  // down; the relay logs the state change once instead, and recreate_if_fatal() a fatal error.
  spdlog::debug("librdkafka error {}: {}", rd_kafka_err2name(code), reason);
}

kafka_publisher::kafka_publisher(const relay_config& config)
    : config_(config), batch_(std::make_unique<batch_state>()) {
  create_producer();
}

kafka_publisher::~kafka_publisher() {
  if (producer_) {
    // The relay closes it with its shutdown deadline; this covers early exits.
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_.get(), 0);
  }
}

void kafka_publisher::create_producer() {
  auto conf = common::kafka::make_conf(config_.kafka, producer_defaults(config_));
  rd_kafka_conf_set_opaque(conf.get(), batch_.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &kafka_publisher::on_delivery);
  rd_kafka_conf_set_error_cb(conf.get(), &kafka_publisher::on_error);
  common::kafka::log_to_spdlog(conf.get());
  producer_ = common::kafka::make_producer(std::move(conf));
}

void kafka_publisher::recreate_if_fatal() {
  std::array<char, 512> text{};
  const auto code = rd_kafka_fatal_error(producer_.get(), text.data(), text.size());
  if (code == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  spdlog::error("Kafka producer failed for good ({}: {}); creating a new producer", rd_kafka_err2name(code),
                text.data());
  rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(producer_.get(), 0);
  producer_.reset();
  create_producer();
}

void kafka_publisher::send(std::span<const outbox_row> rows, clock_type::time_point deadline,
                           const std::function<bool()>& keep_waiting) {
  auto& state = *batch_;
  ++state.generation;
  state.open = true;
  state.results.assign(rows.size(), {});
  auto& results = state.results;
  state.awaiting.assign(rows.size(), false);
  state.outstanding = 0;

  std::set<std::string_view> blocked_keys;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (row.key && blocked_keys.contains(*row.key)) continue;  // held_back
    auto fail = [&](delivery_status status, std::string error, std::string reason) {
      results[i] = {status, std::move(error), std::move(reason), clock_type::now()};
      if (row.key) blocked_keys.insert(*row.key);
    };

    auto headers = common::kafka::new_headers(8);
    try {
      for (const auto& [name, value] : headers_of(row.headers)) common::kafka::add_header(headers.get(), name, value);
    } catch (const std::invalid_argument& e) {
      fail(delivery_status::rejected, e.what(), "invalid_headers");
      continue;
    }
    const auto outbox_id = std::to_string(row.id);  // the header consumers deduplicate on
    common::kafka::add_header(headers.get(), "outbox-id", outbox_id);

    common::kafka::produce_fields fields;
    fields.topic = row.topic.c_str();
    if (row.key) fields.key = *row.key;
    fields.value = row.payload;
    fields.opaque = message_tag(state.generation, i);
    for (;;) {
      const auto error = common::kafka::produce(producer_.get(), fields, headers);
      if (!error) {
        state.awaiting[i] = true;
        ++state.outstanding;
        break;
      }
      const auto code = rd_kafka_error_code(error.get());
      if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL && clock_type::now() < deadline && keep_waiting()) {
        // The local queue is bounded (queue.buffering.max.kbytes): let deliveries drain it.
        rd_kafka_poll(producer_.get(), poll_ms(until(deadline)));
        continue;
      }
      fail(classify_kafka_error(code), describe(code), kafka_error_reason(code));
      break;
    }
  }

  // librdkafka's threads send the batch from here on: after linger.ms (1 by default), or at once
  // when collect() flushes.
}

std::vector<delivery_result> kafka_publisher::collect(clock_type::time_point deadline,
                                                      const std::function<bool()>& keep_waiting) {
  auto& state = *batch_;
  // flush(), unlike poll(), sends what is still queued at once instead of after linger.ms.
  // poll_ms() slices of at most 100 ms keep the stop request (keep_waiting) responsive.
  while (state.outstanding > 0 && clock_type::now() < deadline && keep_waiting()) {
    rd_kafka_flush(producer_.get(), poll_ms(until(deadline)));
  }
  if (state.outstanding > 0) {
    // Out of time: take the rest back so none of it is sent after the caller gave up on it (and
    // perhaps gave its partition to another relay). In-flight ones may still land: duplicates, not loss.
    rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    const auto grace = clock_type::now() + 2s;
    while (state.outstanding > 0 && clock_type::now() < grace) rd_kafka_poll(producer_.get(), 50);
    for (std::size_t i = 0; i < state.awaiting.size(); ++i) {
      if (!state.awaiting[i]) continue;
      state.awaiting[i] = false;
      state.results[i] = {delivery_status::failed, "no delivery report before the batch deadline", "deadline",
                          clock_type::now()};
    }
    state.outstanding = 0;
  }
  state.open = false;
  recreate_if_fatal();
  return std::exchange(state.results, {});
}

const std::vector<kafka_header>& kafka_publisher::headers_of(const std::string& headers_json) {
  if (!last_headers_ || last_headers_->first != headers_json) {
    auto parsed = kafka_headers(headers_json);  // throws before the cache changes
    last_headers_.emplace(headers_json, std::move(parsed));
  }
  return last_headers_->second;
}

bool kafka_publisher::reachable(std::chrono::milliseconds timeout) {
  const bool answered = common::kafka::broker_reachable(producer_.get(), timeout);
  rd_kafka_poll(producer_.get(), 0);
  recreate_if_fatal();
  if (answered) batch_->connectivity_problem.reset();
  return answered;
}

void kafka_publisher::refresh_topics(std::span<const std::string> topics) {
  struct topic_deleter {
    void operator()(rd_kafka_topic_t* topic) const noexcept { rd_kafka_topic_destroy(topic); }
  };
  for (const auto& name : topics) {
    // A metadata request for the topic itself updates librdkafka's cache at once (a topic it
    // marked as not existing would otherwise stay so until its periodic refresh).
    const std::unique_ptr<rd_kafka_topic_t, topic_deleter> topic(
        rd_kafka_topic_new(producer_.get(), name.c_str(), nullptr));
    if (!topic) continue;
    const rd_kafka_metadata_t* metadata = nullptr;
    const auto code = rd_kafka_metadata(producer_.get(), 0, topic.get(), &metadata, 2000);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
      spdlog::debug("topic {}: metadata refreshed ({})", name,
                    metadata->topic_cnt > 0 ? rd_kafka_err2name(metadata->topics[0].err) : "no topic");
      rd_kafka_metadata_destroy(metadata);
    }
  }
  rd_kafka_poll(producer_.get(), 0);
}

std::optional<std::string> kafka_publisher::connectivity_problem() {
  rd_kafka_poll(producer_.get(), 0);
  if (!batch_->open) recreate_if_fatal();  // not in the middle of a batch
  return std::exchange(batch_->connectivity_problem, std::nullopt);
}

std::size_t kafka_publisher::close(std::chrono::milliseconds timeout) {
  if (!producer_) return 0;
  rd_kafka_flush(producer_.get(), static_cast<int>(timeout.count()));
  const auto left = rd_kafka_outq_len(producer_.get());
  rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_poll(producer_.get(), 0);
  producer_.reset();
  return static_cast<std::size_t>(std::max(0, left));
}

}  // namespace relay
