#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/daemon.hpp"

using namespace std::chrono_literals;

namespace {

// Stands in for systemd's notify socket: collects the datagrams the daemon sends.
class notify_socket {
 public:
  notify_socket() : path_("/tmp/outbox-daemon-test-" + std::to_string(::getpid()) + ".sock") {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(fd_ >= 0);
    ::unlink(path_.c_str());
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path_.copy(address.sun_path, sizeof(address.sun_path) - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~notify_socket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;

  std::vector<std::string> received() {
    std::vector<std::string> out;
    char buffer[4096];
    for (;;) {
      const auto n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) return out;
      out.emplace_back(buffer, static_cast<std::size_t>(n));
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

bool has(const std::vector<std::string>& messages, const std::string& wanted) {
  for (const auto& m : messages) {
    if (m.find(wanted) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("daemon: readiness, status, SIGHUP reload and the stop deadline reach systemd", "[daemon]") {
  notify_socket systemd;
  common::daemon daemon;
  int reloads = 0;
  daemon.on_status([] { return std::string("serving 3 partitions"); }, 10ms);
  daemon.on_reload([&] {
    ++reloads;
    if (reloads == 2) throw std::runtime_error("bad key");  // refused: logged, the daemon goes on
  });

  daemon.notify_ready();
  daemon.notify_ready();  // once only
  daemon.tick();
  auto messages = systemd.received();
  CHECK(std::count(messages.begin(), messages.end(), "READY=1") == 1);
  CHECK(has(messages, "STATUS=serving 3 partitions"));

  ::kill(::getpid(), SIGHUP);
  CHECK_FALSE(daemon.wait_for(300ms));
  CHECK(reloads == 1);
  ::kill(::getpid(), SIGHUP);
  daemon.wait_for(300ms);
  CHECK(reloads == 2);
  messages = systemd.received();
  CHECK(has(messages, "RELOADING=1"));
  CHECK(has(messages, "READY=1"));  // after each reload, refused or not

  daemon.request_stop();
  CHECK(daemon.wait_for(10s));  // wakes at once
  const auto deadline = daemon.begin_stop(5s, "finishing the batch in flight");
  CHECK(daemon.begin_stop(1s, "again") == deadline);  // the first call sets the deadline
  CHECK(daemon.stop_deadline() == deadline);
  messages = systemd.received();
  CHECK(has(messages, "STOPPING=1"));
  CHECK(has(messages, "STATUS=stopping: finishing the batch in flight"));
}

TEST_CASE("daemon: the watchdog is pinged only while the work is alive", "[daemon]") {
  notify_socket systemd;
  ::setenv("WATCHDOG_USEC", "200000", 1);  // pings every 100 ms
  common::daemon daemon;
  std::string problem;
  daemon.on_watchdog_check([&] { return problem; });

  daemon.wait_for(350ms);
  CHECK(has(systemd.received(), "WATCHDOG=1"));

  problem = "the source loop has been silent for 30 s";
  daemon.wait_for(350ms);
  CHECK_FALSE(has(systemd.received(), "WATCHDOG=1"));

  problem.clear();
  daemon.wait_for(350ms);
  CHECK(has(systemd.received(), "WATCHDOG=1"));
}

TEST_CASE("daemon: wait_until_ready retries the probe and gives up on a stop", "[daemon]") {
  common::daemon daemon;
  int probes = 0;
  CHECK(daemon.wait_until_ready("the database", [&] { return ++probes < 3 ? std::string("refused") : std::string(); }));
  CHECK(probes == 3);

  daemon.request_stop();
  CHECK_FALSE(daemon.wait_until_ready("the broker", [] { return std::string("down"); }));
}
