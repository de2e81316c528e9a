#include "common/kafka.hpp"

#include <array>
#include <string_view>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

namespace common::kafka {

void handle_deleter::operator()(rd_kafka_s* p) const noexcept { rd_kafka_destroy(p); }
void conf_deleter::operator()(rd_kafka_conf_s* p) const noexcept { rd_kafka_conf_destroy(p); }
void partition_list_deleter::operator()(rd_kafka_topic_partition_list_s* list) const noexcept {
  rd_kafka_topic_partition_list_destroy(list);
}
void message_deleter::operator()(rd_kafka_message_s* p) const noexcept { rd_kafka_message_destroy(p); }
void headers_deleter::operator()(rd_kafka_headers_s* p) const noexcept { rd_kafka_headers_destroy(p); }
void error_deleter::operator()(rd_kafka_error_s* p) const noexcept { rd_kafka_error_destroy(p); }
void queue_deleter::operator()(rd_kafka_queue_s* p) const noexcept { rd_kafka_queue_destroy(p); }
void event_deleter::operator()(rd_kafka_op_s* p) const noexcept { rd_kafka_event_destroy(p); }

headers new_headers(std::size_t capacity) { return headers(rd_kafka_headers_new(capacity)); }

void add_header(rd_kafka_headers_s* to, std::string_view name, std::optional<std::string_view> value) {
  rd_kafka_header_add(to, name.data(), static_cast<ssize_t>(name.size()), value ? value->data() : nullptr,
                      value ? static_cast<ssize_t>(value->size()) : 0);
}

error_object produce(rd_kafka_s* producer, const produce_fields& fields, headers& message_headers) {
  std::array<rd_kafka_vu_t, 7> values{};
  std::size_t count = 0;
  auto add = [&](rd_kafka_vtype_t type) -> rd_kafka_vu_t& {
    values[count].vtype = type;
    return values[count++];
  };
  add(RD_KAFKA_VTYPE_TOPIC).u.cstr = fields.topic;
  if (fields.partition >= 0) add(RD_KAFKA_VTYPE_PARTITION).u.i32 = fields.partition;
  if (fields.key) {
    // librdkafka copies key and value (RD_KAFKA_MSG_F_COPY) and never writes through these.
    add(RD_KAFKA_VTYPE_KEY).u.mem = {const_cast<char*>(fields.key->data()), fields.key->size()};
  }
  add(RD_KAFKA_VTYPE_VALUE).u.mem = {const_cast<char*>(fields.value.data()), fields.value.size()};
  add(RD_KAFKA_VTYPE_MSGFLAGS).u.i = RD_KAFKA_MSG_F_COPY;
  if (message_headers) add(RD_KAFKA_VTYPE_HEADERS).u.headers = message_headers.get();
  if (fields.opaque != nullptr) add(RD_KAFKA_VTYPE_OPAQUE).u.ptr = fields.opaque;
  error_object error(rd_kafka_produceva(producer, values.data(), count));
  if (!error) static_cast<void>(message_headers.release());  // the queued message owns them now
  return error;
}

kafka_config parse_kafka_config(config_reader& reader) {
  kafka_config config;
  config.bootstrap_servers = reader.get_string("kafka.brokers", config.bootstrap_servers, {"KAFKA_BOOTSTRAP_SERVERS"});
  if (config.bootstrap_servers.empty()) {
    throw config_error("kafka.brokers", "kafka.brokers must list at least one host:port");
  }
  config.properties = reader.get_properties("kafka.properties");
  return config;
}

conf make_conf(const kafka_config& config, const std::map<std::string, std::string>& defaults) {
  conf result(rd_kafka_conf_new());
  std::array<char, 512> error{};
  auto set = [&](const std::string& name, const std::string& value, const std::string& origin) {
    if (rd_kafka_conf_set(result.get(), name.c_str(), value.c_str(), error.data(), error.size()) != RD_KAFKA_CONF_OK) {
      throw config_error(origin, fmt::format("{}: {} (see librdkafka CONFIGURATION.md)", origin, error.data()));
    }
  };
  for (const auto& [name, value] : defaults) set(name, value, "kafka default " + name);
  for (const auto& [name, value] : config.properties) set(name, value, "kafka.properties." + name);
  set("bootstrap.servers", config.bootstrap_servers, "kafka.brokers");
  return result;
}

void log_to_spdlog(rd_kafka_conf_s* configuration) {
  rd_kafka_conf_set_log_cb(configuration, [](const rd_kafka_t*, int level, const char* facility, const char* text) {
    if (level <= 4 && std::string_view(facility) == "CONFWARN") {
      spdlog::warn("librdkafka: {}", text);
    } else {
      spdlog::debug("librdkafka {} {}: {}", level, facility, text);
    }
  });
}

namespace {
handle make_handle(rd_kafka_type_t type, conf configuration) {
  std::array<char, 512> error{};
  rd_kafka_t* raw = rd_kafka_new(type, configuration.get(), error.data(), error.size());
  if (raw == nullptr)
    throw config_error("kafka.properties", fmt::format("cannot create Kafka client: {}", error.data()));
  static_cast<void>(configuration.release());  // rd_kafka_new took ownership of the conf on success
  return handle(raw);
}
}  // namespace

handle make_producer(conf configuration) { return make_handle(RD_KAFKA_PRODUCER, std::move(configuration)); }
handle make_consumer(conf configuration) { return make_handle(RD_KAFKA_CONSUMER, std::move(configuration)); }

bool broker_reachable(rd_kafka_s* client, std::chrono::milliseconds timeout) {
  const struct rd_kafka_metadata* metadata = nullptr;
  const auto err = rd_kafka_metadata(client, 0, nullptr, &metadata, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
  const bool reachable = metadata->broker_cnt > 0;
  rd_kafka_metadata_destroy(metadata);
  return reachable;
}

}  // namespace common::kafka
