#include "bench_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <fstream>
#include <iterator>
#include <sstream>

#include <fmt/format.h>
#include <librdkafka/rdkafka.h>

#include "test_support.hpp"

namespace bench {

void result(const std::string& name, double value) { fmt::print("result {} {:.6g}\n", name, value); }
void result(const std::string& name, std::int64_t value) { fmt::print("result {} {}\n", name, value); }

double seconds_since(steady::time_point start) { return std::chrono::duration<double>(steady::now() - start).count(); }

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t proc_status_kib(int pid, const std::string& field) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

double proc_cpu_seconds(int pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (stat.empty()) return NAN;
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long long utime = 0;
  long long stime = 0;
  for (int index = 3; fields >> field; ++index) {
    if (index == 14) utime = std::stoll(field);
    if (index == 15) {
      stime = std::stoll(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<std::int64_t> values, double q) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
  return static_cast<double>(values[std::clamp<std::size_t>(rank, 1, values.size()) - 1]);
}

void print_latencies(const std::string& name, const std::string& label, std::vector<std::int64_t> us) {
  auto ms = [&](double q) { return percentile(us, q) / 1000.0; };
  fmt::print("# {}: p50 {:.2f} ms, p90 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms ({} samples)\n", label, ms(0.5), ms(0.9),
             ms(0.99), ms(1.0), us.size());
  result(name + "p50_ms", ms(0.5));
  result(name + "p90_ms", ms(0.9));
  result(name + "p99_ms", ms(0.99));
  result(name + "max_ms", ms(1.0));
}

std::vector<paced_write> paced_writers(int rate, int writers, int warmup, int seconds,
                                       const std::function<write_receipt(int writer, std::int64_t seq)>& write_one,
                                       const std::function<void()>& tick) {
  std::vector<std::vector<paced_write>> per_writer(static_cast<std::size_t>(writers));
  std::vector<std::thread> threads;
  const auto start = steady::now() + std::chrono::milliseconds(200);
  const auto measured_from = start + std::chrono::seconds(warmup);
  const auto end = measured_from + std::chrono::seconds(seconds);
  const auto period = std::chrono::nanoseconds(std::int64_t{1'000'000'000} * writers / rate);
  std::atomic<std::int64_t> sequence{0};
  std::mutex error_mutex;
  std::exception_ptr error;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      try {
        auto& out = per_writer[static_cast<std::size_t>(w)];
        for (auto next = start + period * w / writers; next < end; next += period) {
          std::this_thread::sleep_until(next);
          const auto receipt = write_one(w, sequence.fetch_add(1) + 1);
          out.push_back({receipt, now_us(), next >= measured_from});
        }
      } catch (...) {
        const std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  if (tick) {
    while (steady::now() < end) {
      tick();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
  std::vector<paced_write> all;
  for (auto& list : per_writer) all.insert(all.end(), list.begin(), list.end());
  return all;
}

std::int64_t topic_size(const std::string& topic) {
  std::int64_t total = 0;
  for (const auto& [partition, end] : test_support::end_offsets(topic)) total += end;
  return total;
}

std::optional<std::int64_t> seq_of(std::string_view value) {
  constexpr std::string_view field = "\"seq\":";
  const auto at = value.find(field);
  if (at == std::string_view::npos) return std::nullopt;
  const auto digits = value.substr(at + field.size());
  std::int64_t seq = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc{} || end == digits.data()) return std::nullopt;
  return seq;
}

arrival_recorder::arrival_recorder(const std::string& topic, message_id id, int partitions) : id_(id) {
  common::kafka::kafka_config kafka;
  kafka.bootstrap_servers = test_support::require_env("KAFKA_BOOTSTRAP_SERVERS");
  consumer_ = common::kafka::make_consumer(
      common::kafka::make_conf(kafka, {{"group.id", test_support::unique_name("bench_arrivals")},
                                       {"enable.auto.commit", "false"},
                                       {"enable.partition.eof", "false"}}));
  common::kafka::partition_list assignment(rd_kafka_topic_partition_list_new(partitions));
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(assignment.get(), topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(consumer_.get(), assignment.get());
  reader_ = std::thread([this] { run(); });
}

arrival_recorder::~arrival_recorder() { stop(); }

std::size_t arrival_recorder::distinct() {
  std::lock_guard lock(mutex_);
  return first_arrival_us_.size();
}

std::pair<std::int64_t, std::int64_t> arrival_recorder::appended_ms() {
  std::lock_guard lock(mutex_);
  return {first_appended_ms_, last_appended_ms_};
}

void arrival_recorder::stop() {
  consuming_ = false;
  if (reader_.joinable()) reader_.join();
  if (consumer_) {
    rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
  }
}

void arrival_recorder::run() {
  while (consuming_) {
    common::kafka::message msg(rd_kafka_consumer_poll(consumer_.get(), 100));
    if (!msg || msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    const auto at = now_us();
    std::optional<std::int64_t> id;
    if (id_ == message_id::outbox_id_header) {
      rd_kafka_headers_t* headers = nullptr;
      const void* value = nullptr;
      std::size_t size = 0;
      if (rd_kafka_message_headers(msg.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          rd_kafka_header_get_last(headers, "outbox-id", &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        id = std::stoll(std::string(static_cast<const char*>(value), size));
      }
    } else {
      id = seq_of(std::string_view(static_cast<const char*>(msg->payload), msg->len));
    }
    if (!id) continue;
    rd_kafka_timestamp_type_t type{};
    const auto appended = rd_kafka_message_timestamp(msg.get(), &type);
    std::lock_guard lock(mutex_);
    if (first_arrival_us_.try_emplace(*id, at).second && type == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME) {
      first_appended_ms_ = first_appended_ms_ == 0 ? appended : std::min(first_appended_ms_, appended);
      last_appended_ms_ = std::max(last_appended_ms_, appended);
    }
    ++total_;
  }
}

}  // namespace bench
