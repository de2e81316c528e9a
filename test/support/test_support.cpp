#include "test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>
#include <pqxx/pqxx>

#include "common/kafka.hpp"
#include "common/migrate.hpp"

extern char** environ;

namespace test_support {

std::string require_env(const char* name) {
  if (const char* value = std::getenv(name); value != nullptr && *value != '\0') return value;
  throw std::runtime_error(
      fmt::format("{} is not set: start the services with `scripts/services up` and "
                  "`eval \"$(scripts/services env)\"` (scripts/test does both)",
                  name));
}

std::string unique_name(std::string_view prefix) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("{}_{}_{}", prefix, getpid(), counter++);
}

std::string bin_path(std::string_view name) { return fmt::format("{}/{}", OUTBOX_BIN_DIR, name); }

std::string new_log_path(std::string_view label) {
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("outbox-tests-{}", getpid());
  std::filesystem::create_directories(dir);
  return (dir / (unique_name(label) + ".log")).string();
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout, std::chrono::milliseconds poll) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(poll);
  }
  return true;
}

test_schema::test_schema() : test_schema(require_env("DATABASE_URL")) {}

test_schema::test_schema(std::string base_url) : base_url_(std::move(base_url)), name_(unique_name("t")) {
  url_ = base_url_ + (base_url_.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name_;
  {
    pqxx::connection admin(base_url_);
    pqxx::nontransaction tx(admin);
    tx.exec0("CREATE SCHEMA " + tx.quote_name(name_));
  }
  auto connection = connect();
  common::migrator(connection, common::default_migrations_dir()).up();
}

test_schema::~test_schema() {
  try {
    pqxx::connection admin(base_url_);
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP SCHEMA IF EXISTS " + tx.quote_name(name_) + " CASCADE");
  } catch (const std::exception&) {
    // A test that failed may leave its schema behind; scripts/services down removes the data dir anyway.
  }
}

pqxx::connection test_schema::connect() const { return pqxx::connection(url_); }

common::database_config test_schema::database_config(std::string application_name) const {
  common::database_config config;
  config.url = url_;
  config.application_name = std::move(application_name);
  return config;
}

child_process::child_process(std::string binary, std::vector<std::string> args,
                             std::map<std::string, std::string> extra_env, std::string log_path)
    : log_path_(std::move(log_path)) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    if (!extra_env.contains(entry.substr(0, entry.find('=')))) env_strings.push_back(std::move(entry));
  }
  for (const auto& [name, value] : extra_env) env_strings.push_back(name + "=" + value);
  std::vector<char*> argv{binary.data()};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  // Truncated: a file left by an earlier run (process ids recur) must not pass for this one's log.
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path_);
  pid_ = fork();
  if (pid_ == 0) {
    // Child: a clean signal mask (the parent may block signals), output to the log.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(log_fd);
  if (pid_ < 0) throw std::runtime_error("fork failed");
}

child_process::~child_process() {
  if (running()) {
    signal(SIGKILL);
    wait(std::chrono::seconds(10));
  }
}

void child_process::signal(int signo) const {
  if (pid_ > 0) ::kill(pid_, signo);
}

std::optional<int> child_process::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_;
    }
    if (r < 0 || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
}

bool child_process::running() { return pid_ > 0 && !wait(0ms).has_value(); }

std::string child_process::log() const {
  std::ifstream in(log_path_);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void services(std::string_view action, std::string_view service) {
  const std::string command = fmt::format("\"{}\" {} {}", require_env("OUTBOX_SERVICES_SCRIPT"), action, service);
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

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
  // rd_kafka_produceva: the typed form of rd_kafka_producev, whose macros need C casts.
  std::vector<rd_kafka_vu_t> fields(5 + m.headers.size());
  fields[0].vtype = RD_KAFKA_VTYPE_TOPIC;
  fields[0].u.cstr = m.topic.c_str();
  fields[1].vtype = RD_KAFKA_VTYPE_VALUE;
  fields[1].u.mem = {const_cast<char*>(m.payload.data()), m.payload.size()};
  fields[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  fields[2].u.i = RD_KAFKA_MSG_F_COPY;
  fields[3].vtype = RD_KAFKA_VTYPE_PARTITION;
  fields[3].u.i32 = m.partition < 0 ? RD_KAFKA_PARTITION_UA : m.partition;
  std::size_t n = 4;
  if (m.key) {
    fields[n].vtype = RD_KAFKA_VTYPE_KEY;
    fields[n].u.mem = {const_cast<char*>(m.key->data()), m.key->size()};
    ++n;
  }
  for (const auto& [name, value] : m.headers) {
    fields[n].vtype = RD_KAFKA_VTYPE_HEADER;
    fields[n].u.header = {name.c_str(), value.data(), static_cast<ssize_t>(value.size())};
    ++n;
  }
  rd_kafka_error_t* error = rd_kafka_produceva(state_->producer.get(), fields.data(), n);
  if (error != nullptr) {
    const std::string reason = rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
    throw std::runtime_error(fmt::format("produce to {}: {}", m.topic, reason));
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

std::map<std::int32_t, std::int64_t> committed_offsets(const std::string& group, const std::string& topic,
                                                       std::chrono::milliseconds timeout) {
  common::kafka::kafka_config config;
  config.bootstrap_servers = require_env("KAFKA_BOOTSTRAP_SERVERS");
  // Same group id, but never subscribe: rd_kafka_committed() only asks the coordinator.
  auto consumer = common::kafka::make_consumer(
      common::kafka::make_conf(config, {{"group.id", group}, {"enable.auto.commit", "false"}}));
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

std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("free_loopback_port: socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("free_loopback_port: bind/getsockname on 127.0.0.1:0 failed");
  return ntohs(address.sin_port);
}

std::optional<double> metric_value(std::string_view exposition, std::string_view sample) {
  std::size_t start = 0;
  while (start < exposition.size()) {
    std::size_t end = exposition.find('\n', start);
    if (end == std::string_view::npos) end = exposition.size();
    const std::string_view line = exposition.substr(start, end - start);
    start = end + 1;
    if (line.size() > sample.size() && line.substr(0, sample.size()) == sample && line[sample.size()] == ' ') {
      const std::string value(line.substr(sample.size() + 1));
      try {
        return std::stod(value);
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

namespace {

int database_port() {
  static const std::regex port(R"(://[^/?]*:(\d+)(?:[/?]|$))");
  const auto url = test_support::require_env("DATABASE_URL");
  std::smatch match;
  return std::regex_search(url, match, port) ? std::stoi(match[1].str()) : 5432;
}

// Local ports of `os_pid`'s TCP sockets connected to `remote_port`, from /proc/<pid>/net/tcp{,6}
// matched against the socket inodes of /proc/<pid>/fd.
std::vector<int> local_ports_to(int os_pid, int remote_port) {
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", os_pid), ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(entry.path(), link_ec).string();
    if (!link_ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::vector<int> ports;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in(fmt::format("/proc/{}/net/{}", os_pid, table));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (!inodes.contains(inode)) continue;
      const int rport = std::stoi(remote.substr(remote.rfind(':') + 1), nullptr, 16);
      if (rport == remote_port) ports.push_back(std::stoi(local.substr(local.rfind(':') + 1), nullptr, 16));
    }
  }
  return ports;
}

}  // namespace

std::vector<int> database_backends(int os_pid, pqxx::connection& db) {
  const auto ports = local_ports_to(os_pid, database_port());
  if (ports.empty()) return {};
  std::string array = "{";
  for (std::size_t i = 0; i < ports.size(); ++i) array += (i > 0 ? "," : "") + std::to_string(ports[i]);
  array += "}";
  pqxx::nontransaction tx(db);
  std::vector<int> pids;
  for (const auto& r :
       tx.exec_params("SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND client_addr IS NOT NULL "
                      "AND host(client_addr) IN ('127.0.0.1', '::1')",
                      array)) {
    pids.push_back(r[0].as<int>());
  }
  return pids;
}

}  // namespace test_support
