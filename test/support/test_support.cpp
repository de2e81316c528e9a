// Environment, unique names, waiting, free ports and metric samples (test_support.hpp).
#include "test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "common/redis.hpp"

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

redis_keys::~redis_keys() {
  try {
    for (const auto& key : keys_) redis_.command({"DEL", key});
  } catch (const std::exception&) {
    // Best effort: a leftover key under a unique name harms no other test.
  }
}

}  // namespace test_support
