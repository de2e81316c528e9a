// Kafka for the suites: reading topics, creating them, producing, offsets and groups (test_support.hpp).
#include "test_support.hpp"

#include <stdexcept>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include "common/kafka.hpp"

namespace test_support {

namespace {
common::kafka::handle make_reader() {
  common::kafka::kafka_config config;
  config.bootstrap_servers = require_env("KAFKA_BOOTSTRAP_SERVERS");
  auto conf = common::kafka::make_conf(
      config,
      {{"group.id", unique_name("reader")}, {"enable.auto.commit", "false"}, {"enable.partition.eof", "false"}});
  return common::kafka::make_consumer(std::move(conf));
}
}  // namespace

std::vector<consumed_message> read_topic(const std::string& topic, std::size_t count,
                                         std::chrono::milliseconds timeout) {
  auto consumer = make_reader();
  const struct rd_kafka_metadata* metadata = nullptr;
  auto topic_handle = rd_kafka_topic_new(consumer.get(), topic.c_str(), nullptr);
  const auto err = rd_kafka_metadata(consumer.get(), 0, topic_handle, &metadata, 10000);
  rd_kafka_topic_destroy(topic_handle);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || metadata->topic_cnt != 1) {
    throw std::runtime_error(fmt::format("metadata for {}: {}", topic, rd_kafka_err2str(err)));
  }
  common::kafka::partition_list assignment(rd_kafka_topic_partition_list_new(metadata->topics[0].partition_cnt));
  for (int p = 0; p < metadata->topics[0].partition_cnt; ++p) {
    rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), metadata->topics[0].partitions[p].id)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_metadata_destroy(metadata);
  rd_kafka_assign(consumer.get(), assignment.get());

  std::vector<consumed_message> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    common::kafka::message msg(rd_kafka_consumer_poll(consumer.get(), 200));
    if (!msg || msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    consumed_message m;
    m.topic = topic;
    m.partition = msg->partition;
    m.offset = msg->offset;
    if (msg->key != nullptr) m.key = std::string(static_cast<const char*>(msg->key), msg->key_len);
    m.payload.assign(static_cast<const char*>(msg->payload), msg->len);
    m.timestamp_ms = rd_kafka_message_timestamp(msg.get(), nullptr);
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(msg.get(), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
        m.headers[name] = value != nullptr ? std::string(static_cast<const char*>(value), size) : std::string();
      }
    }
    out.push_back(std::move(m));
  }
  rd_kafka_consumer_close(consumer.get());
  return out;
}

namespace {

// One CreateTopics request; "" on success (or when the topic exists), else the broker's answer.
std::string try_create_topic(rd_kafka_t* admin, const std::string& topic, int partitions,
                             const std::map<std::string, std::string>& topic_config) {
  // Replication factor -1: the broker's default.replication.factor (3 on the test cluster).
  rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, nullptr, 0);
  for (const auto& [name, value] : topic_config) rd_kafka_NewTopic_set_config(new_topic, name.c_str(), value.c_str());
  rd_kafka_queue_t* queue = rd_kafka_queue_new(admin);
  rd_kafka_CreateTopics(admin, &new_topic, 1, nullptr, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 15000);
  std::string error;
  if (event == nullptr) {
    error = "no answer within 15 s";
  } else if (const auto* result = rd_kafka_event_CreateTopics_result(event)) {
    size_t n = 0;
    const rd_kafka_topic_result_t** topics = rd_kafka_CreateTopics_result_topics(result, &n);
    if (n == 1 && rd_kafka_topic_result_error(topics[0]) != RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_topic_result_error(topics[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      error = rd_kafka_topic_result_error_string(topics[0]);
    }
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    error = rd_kafka_event_error_string(event);
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(new_topic);
  return error;
}

}  // namespace

void create_topic(const std::string& topic, int partitions, const std::map<std::string, std::string>& topic_config) {
  common::kafka::kafka_config config;
  config.bootstrap_servers = require_env("KAFKA_BOOTSTRAP_SERVERS");
  auto admin = common::kafka::make_producer(common::kafka::make_conf(config, {}));
  // A broker that has just started answers Metadata before its controller takes CreateTopics:
  // retried for a while, the last answer is the error.
  std::string error;
  wait_until([&] { return (error = try_create_topic(admin.get(), topic, partitions, topic_config)).empty(); },
             std::chrono::seconds(30), std::chrono::milliseconds(250));
  if (!error.empty()) throw std::runtime_error(fmt::format("create topic {}: {}", topic, error));
}

struct kafka_producer::state {
  common::kafka::handle producer;
  std::size_t queued = 0;
  std::size_t persisted = 0;
  std::string first_error;
};

kafka_producer::kafka_producer() : state_(std::make_unique<state>()) {
  common::kafka::kafka_config config;
  config.bootstrap_servers = require_env("KAFKA_BOOTSTRAP_SERVERS");
  auto conf = common::kafka::make_conf(config, {{"enable.idempotence", "true"}, {"acks", "all"}});
  rd_kafka_conf_set_opaque(conf.get(), state_.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* s = static_cast<state*>(opaque);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_PERSISTED) {
      ++s->persisted;
    } else if (s->first_error.empty()) {
      s->first_error = rd_kafka_err2str(m->err);
    }
  });
  state_->producer = common::kafka::make_producer(std::move(conf));
}

kafka_producer::~kafka_producer() {
  // Delivery reports reference *state_: let librdkafka finish (or give up) before it goes away.
  if (state_ && state_->producer) rd_kafka_flush(state_->producer.get(), 10000);
}

void kafka_producer::send(const message& m) {
  auto headers = m.headers.empty() ? common::kafka::headers() : common::kafka::new_headers(m.headers.size());
  for (const auto& [name, value] : m.headers) common::kafka::add_header(headers.get(), name, value);
  common::kafka::produce_fields fields;
  fields.topic = m.topic.c_str();
  if (m.key) fields.key = *m.key;
  fields.value = m.payload;
  fields.partition = m.partition;
  if (const auto error = common::kafka::produce(state_->producer.get(), fields, headers)) {
    throw std::runtime_error(fmt::format("produce to {}: {}", m.topic, rd_kafka_error_string(error.get())));
  }
  ++state_->queued;
}

void kafka_producer::flush(std::chrono::milliseconds timeout) {
  const auto err = rd_kafka_flush(state_->producer.get(), static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(fmt::format("produce: flush: {}", rd_kafka_err2str(err)));
  }
  if (!state_->first_error.empty() || state_->persisted != state_->queued) {
    throw std::runtime_error(fmt::format("produce: {} of {} messages persisted (first error: {})", state_->persisted,
                                         state_->queued, state_->first_error));
  }
}

namespace {
int timeout_ms(std::chrono::milliseconds timeout) { return static_cast<int>(timeout.count()); }

std::vector<std::int32_t> partitions_of(rd_kafka_t* client, const std::string& topic,
                                        std::chrono::milliseconds timeout) {
  const struct rd_kafka_metadata* metadata = nullptr;
  auto topic_handle = rd_kafka_topic_new(client, topic.c_str(), nullptr);
  const auto err = rd_kafka_metadata(client, 0, topic_handle, &metadata, timeout_ms(timeout));
  rd_kafka_topic_destroy(topic_handle);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR || metadata->topic_cnt != 1 || metadata->topics[0].err != 0) {
    if (metadata != nullptr) rd_kafka_metadata_destroy(metadata);
    throw std::runtime_error(fmt::format("metadata for {}: {}", topic, rd_kafka_err2str(err)));
  }
  std::vector<std::int32_t> out;
  for (int p = 0; p < metadata->topics[0].partition_cnt; ++p) out.push_back(metadata->topics[0].partitions[p].id);
  rd_kafka_metadata_destroy(metadata);
  return out;
}
}  // namespace

std::map<std::int32_t, std::int64_t> end_offsets(const std::string& topic, std::chrono::milliseconds timeout) {
  auto consumer = make_reader();
  std::map<std::int32_t, std::int64_t> out;
  for (const auto partition : partitions_of(consumer.get(), topic, timeout)) {
    std::int64_t low = 0;
    std::int64_t high = 0;
    // A topic created moments ago (auto-created by a first produce) may not have elected its
    // partition leaders yet: retry those answers until the deadline instead of failing the test.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (;;) {
      err =
          rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), partition, &low, &high, timeout_ms(timeout));
      const bool leader_pending = err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                                  err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                                  err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
      if (!leader_pending || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(100ms);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(fmt::format("watermarks of {} [{}]: {}", topic, partition, rd_kafka_err2str(err)));
    }
    out[partition] = high;
  }
  return out;
}

namespace {

// A consumer of `group` that never subscribes: it only talks to the group's coordinator.
common::kafka::handle group_client(const std::string& group) {
  common::kafka::kafka_config config;
  config.bootstrap_servers = require_env("KAFKA_BOOTSTRAP_SERVERS");
  return common::kafka::make_consumer(
      common::kafka::make_conf(config, {{"group.id", group}, {"enable.auto.commit", "false"}}));
}

}  // namespace

std::map<std::int32_t, std::int64_t> committed_offsets(const std::string& group, const std::string& topic,
                                                       std::chrono::milliseconds timeout) {
  auto consumer = group_client(group);
  const auto partitions = partitions_of(consumer.get(), topic, timeout);
  common::kafka::partition_list list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto partition : partitions) rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  const auto err = rd_kafka_committed(consumer.get(), list.get(), timeout_ms(timeout));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(fmt::format("committed offsets of {} on {}: {}", group, topic, rd_kafka_err2str(err)));
  }
  std::map<std::int32_t, std::int64_t> out;
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].offset >= 0) out[list->elems[i].partition] = list->elems[i].offset;
  }
  rd_kafka_consumer_close(consumer.get());
  return out;
}

void commit_offsets(const std::string& group, const std::string& topic,
                    const std::map<std::int32_t, std::int64_t>& offsets) {
  auto consumer = group_client(group);
  common::kafka::partition_list list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& [partition, offset] : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
  }
  const auto err = rd_kafka_commit(consumer.get(), list.get(), 0);  // synchronous
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(fmt::format("committing offsets of {} on {}: {}", group, topic, rd_kafka_err2str(err)));
  }
  rd_kafka_consumer_close(consumer.get());
}

group_description describe_group(const std::string& group, std::chrono::milliseconds timeout) {
  common::kafka::kafka_config config;
  config.bootstrap_servers = require_env("KAFKA_BOOTSTRAP_SERVERS");
  auto admin = common::kafka::make_producer(common::kafka::make_conf(config, {}));
  rd_kafka_queue_t* queue = rd_kafka_queue_new(admin.get());
  const char* groups[] = {group.c_str()};
  rd_kafka_DescribeConsumerGroups(admin.get(), groups, 1, nullptr, queue);
  rd_kafka_event_t* event = rd_kafka_queue_poll(queue, timeout_ms(timeout));
  group_description out;
  std::string error;
  if (event == nullptr) {
    error = "no answer in time";
  } else if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    error = rd_kafka_event_error_string(event);
  } else if (const auto* result = rd_kafka_event_DescribeConsumerGroups_result(event)) {
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t** descriptions =
        rd_kafka_DescribeConsumerGroups_result_groups(result, &n);
    if (n != 1) {
      error = fmt::format("{} descriptions", n);
    } else if (const rd_kafka_error_t* e = rd_kafka_ConsumerGroupDescription_error(descriptions[0])) {
      error = rd_kafka_error_string(e);
    } else {
      out.state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(descriptions[0]));
      for (size_t m = 0; m < rd_kafka_ConsumerGroupDescription_member_count(descriptions[0]); ++m) {
        const rd_kafka_MemberDescription_t* member = rd_kafka_ConsumerGroupDescription_member(descriptions[0], m);
        group_member gm;
        gm.member_id = rd_kafka_MemberDescription_consumer_id(member);
        gm.client_id = rd_kafka_MemberDescription_client_id(member);
        if (const rd_kafka_MemberAssignment_t* assignment = rd_kafka_MemberDescription_assignment(member)) {
          if (const auto* parts = rd_kafka_MemberAssignment_partitions(assignment)) {
            for (int i = 0; i < parts->cnt; ++i)
              gm.assignment.emplace_back(parts->elems[i].topic, parts->elems[i].partition);
          }
        }
        out.members.push_back(std::move(gm));
      }
    }
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  if (!error.empty()) throw std::runtime_error(fmt::format("describe group {}: {}", group, error));
  return out;
}

}  // namespace test_support
