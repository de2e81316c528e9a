#include "test_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
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
  throw std::runtime_error(fmt::format("{} is not set: start the services with `scripts/services up` and "
                                       "`eval \"$(scripts/services env)\"` (scripts/test does both)", name));
}

std::string unique_name(std::string_view prefix) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("{}_{}_{}", prefix, getpid(), counter++);
}

std::string bin_path(std::string_view name) { return fmt::format("{}/{}", OUTBOX_BIN_DIR, name); }

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout, std::chrono::milliseconds poll) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(poll);
  }
  return true;
}

test_schema::test_schema() : base_url_(require_env("DATABASE_URL")), name_(unique_name("t")) {
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

  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
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
  auto conf = common::kafka::make_conf(config, {{"group.id", unique_name("reader")},
                                               {"enable.auto.commit", "false"},
                                               {"enable.partition.eof", "false"}});
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

void create_topic(const std::string& topic, int partitions) {
  common::kafka::kafka_config config;
  config.bootstrap_servers = require_env("KAFKA_BOOTSTRAP_SERVERS");
  auto admin = common::kafka::make_producer(common::kafka::make_conf(config, {}));
  rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, nullptr, 0);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(admin.get());
  rd_kafka_CreateTopics(admin.get(), &new_topic, 1, nullptr, queue);
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
  }
  if (event != nullptr) rd_kafka_event_destroy(event);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy(new_topic);
  if (!error.empty()) throw std::runtime_error(fmt::format("create topic {}: {}", topic, error));
}

}  // namespace test_support
