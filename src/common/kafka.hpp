#pragma once
// librdkafka glue: RAII holders for its C handles, configuration and a readiness probe.
// librdkafka's header stays out of here; code that calls its API includes <librdkafka/rdkafka.h>.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/config.hpp"

struct rd_kafka_s;
struct rd_kafka_conf_s;
struct rd_kafka_topic_partition_list_s;
struct rd_kafka_message_s;
struct rd_kafka_headers_s;
struct rd_kafka_error_s;
struct rd_kafka_queue_s;
struct rd_kafka_op_s;  // rd_kafka_event_t

namespace common::kafka {

struct handle_deleter {
  void operator()(rd_kafka_s* p) const noexcept;  // rd_kafka_destroy: blocks until its threads end
};
struct conf_deleter {
  void operator()(rd_kafka_conf_s* p) const noexcept;
};
struct partition_list_deleter {
  void operator()(rd_kafka_topic_partition_list_s* p) const noexcept;
};
struct message_deleter {
  void operator()(rd_kafka_message_s* p) const noexcept;
};
struct headers_deleter {
  void operator()(rd_kafka_headers_s* p) const noexcept;
};
struct error_deleter {
  void operator()(rd_kafka_error_s* p) const noexcept;  // rd_kafka_error_destroy
};
struct queue_deleter {
  void operator()(rd_kafka_queue_s* p) const noexcept;  // rd_kafka_queue_destroy
};
struct event_deleter {
  void operator()(rd_kafka_op_s* p) const noexcept;  // rd_kafka_event_destroy
};

using handle = std::unique_ptr<rd_kafka_s, handle_deleter>;
using conf = std::unique_ptr<rd_kafka_conf_s, conf_deleter>;
using partition_list = std::unique_ptr<rd_kafka_topic_partition_list_s, partition_list_deleter>;
using message = std::unique_ptr<rd_kafka_message_s, message_deleter>;
using headers = std::unique_ptr<rd_kafka_headers_s, headers_deleter>;
/// What rd_kafka_produceva() and the transactional/admin calls return on failure.
using error_object = std::unique_ptr<rd_kafka_error_s, error_deleter>;
/// rd_kafka_queue_new() and friends: e.g. a private queue to wait for one commit with a deadline.
using queue = std::unique_ptr<rd_kafka_queue_s, queue_deleter>;
/// What rd_kafka_queue_poll() returns (rd_kafka_event_t).
using event = std::unique_ptr<rd_kafka_op_s, event_deleter>;

struct kafka_config {
  std::string bootstrap_servers = "127.0.0.1:59092";
  /// Any librdkafka property; applied after the daemon's defaults, so it wins.
  std::map<std::string, std::string> properties;
};

/// Reads kafka.brokers (alias KAFKA_BOOTSTRAP_SERVERS) and the pass-through [kafka.properties].
kafka_config parse_kafka_config(config_reader& reader);

/// A conf with `defaults`, then config.properties, then bootstrap.servers applied.
/// A property librdkafka rejects throws config_error naming kafka.properties.<name>.
conf make_conf(const kafka_config& config, const std::map<std::string, std::string>& defaults);

/// Routes librdkafka's own log lines to spdlog: configuration warnings (CONFWARN) at warn,
/// everything else (connection chatter, repeated every retry while a broker is down) at debug.
void log_to_spdlog(rd_kafka_conf_s* configuration);

/// Creates a producer or consumer handle. On success librdkafka owns `configuration`
/// (it is released here); on failure it stays with the caller's holder and config_error is thrown.
handle make_producer(conf configuration);
handle make_consumer(conf configuration);

/// An empty headers list with room for `capacity` headers (it grows past that).
headers new_headers(std::size_t capacity);
/// Appends header `name` (copied) to `to`; nullopt adds a header with a null value.
void add_header(rd_kafka_headers_s* to, std::string_view name, std::optional<std::string_view> value);

/// One message for produce(). Nothing here is owned: key and value are copied by librdkafka
/// (RD_KAFKA_MSG_F_COPY), so the views need only outlive the call.
struct produce_fields {
  const char* topic = nullptr;          // NUL-terminated
  std::optional<std::string_view> key;  // nullopt: a message without a key
  std::string_view value;
  std::int32_t partition = -1;  // -1 (RD_KAFKA_PARTITION_UA): the partitioner picks, by key
  void* opaque = nullptr;       // handed back in the delivery report (rd_kafka_message_t::_private)
};

/// Queues one message, `fields`, with rd_kafka_produceva (the typed form of rd_kafka_producev, whose macros
/// need C casts). Does not block. On success librdkafka owns `message_headers` (released here;
/// an empty holder sends no headers); on failure they stay with the caller, to retry, and the
/// error is returned (RD_KAFKA_RESP_ERR__QUEUE_FULL: poll and try again).
error_object produce(rd_kafka_s* producer, const produce_fields& fields, headers& message_headers);

/// Asks the cluster for metadata; true when at least one broker answered within `timeout`.
bool broker_reachable(rd_kafka_s* client, std::chrono::milliseconds timeout);

}  // namespace common::kafka
