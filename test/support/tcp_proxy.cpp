#include "tcp_proxy.hpp"

#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <optional>
#include <string_view>
#include <regex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace test_support {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// One forwarded connection: two sockets and a pump in each direction. Lives as long as a pump
// holds it; close() ends both pumps.
struct session : std::enable_shared_from_this<session> {
  using trip_wire = std::function<bool(std::string_view)>;

  session(tcp::socket client_socket, trip_wire wire)
      : client(std::move(client_socket)), server(client.get_executor()), trips(std::move(wire)) {}

  void close() {
    boost::system::error_code ignored;
    client.close(ignored);
    server.close(ignored);
  }

  void pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buffer) {
    from.async_read_some(asio::buffer(buffer), [self = shared_from_this(), &from, &to, &buffer](
                                                   const boost::system::error_code& ec, std::size_t n) {
      if (ec) return self->close();
      const bool last = &from == &self->client && self->trips(std::string_view(buffer.data(), n));
      asio::async_write(to, asio::buffer(buffer.data(), n),
                        [self, &from, &to, &buffer, last](const boost::system::error_code& write_ec, std::size_t) {
                          if (write_ec || last) return self->close();
                          self->pump(from, to, buffer);
                        });
    });
  }

  tcp::socket client;
  tcp::socket server;
  trip_wire trips;
  std::array<char, 16384> upstream{};
  std::array<char, 16384> downstream{};
};

}  // namespace

struct tcp_proxy::impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  tcp::endpoint target;
  bool cut = false;
  std::optional<std::string> trip_needle;
  std::atomic<int> trips{0};
  std::set<std::weak_ptr<session>, std::owner_less<std::weak_ptr<session>>> sessions;
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec && !cut) {
        auto s = std::make_shared<session>(std::move(socket), [this](std::string_view chunk) {
          if (!trip_needle || chunk.find(*trip_needle) == std::string_view::npos) return false;
          trip_needle.reset();
          ++trips;
          return true;
        });
        sessions.insert(s);
        s->server.async_connect(target, [this, s](const boost::system::error_code& connect_ec) {
          if (connect_ec || cut) return s->close();
          s->pump(s->client, s->server, s->upstream);
          s->pump(s->server, s->client, s->downstream);
        });
      }
      // When cut, the accepted socket is dropped here: the client sees the connection closed.
      accept();
    });
  }

  // Runs `f` on the forwarder's thread and waits for it.
  template <class F>
  void on_thread(F&& f) {
    std::promise<void> done;
    asio::post(io, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }
};

tcp_proxy::tcp_proxy(std::string target_host, std::uint16_t target_port) : impl_(std::make_unique<impl>()) {
  impl_->target = tcp::endpoint(asio::ip::make_address(target_host), target_port);
  const tcp::endpoint local(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(local.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(local);
  impl_->acceptor.listen();
  impl_->accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

tcp_proxy::~tcp_proxy() {
  impl_->on_thread([this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    for (const auto& weak : impl_->sessions) {
      if (auto s = weak.lock()) s->close();
    }
  });
  impl_->io.stop();
  impl_->thread.join();
}

std::uint16_t tcp_proxy::port() const noexcept { return impl_->acceptor.local_endpoint().port(); }

void tcp_proxy::cut() {
  impl_->on_thread([this] {
    impl_->cut = true;
    for (const auto& weak : impl_->sessions) {
      if (auto s = weak.lock()) s->close();
    }
    impl_->sessions.clear();
  });
}

void tcp_proxy::restore() {
  impl_->on_thread([this] { impl_->cut = false; });
}

void tcp_proxy::drop_after_client_sends(std::string needle) {
  impl_->on_thread([this, &needle] { impl_->trip_needle = std::move(needle); });
}

int tcp_proxy::trips() const { return impl_->trips.load(); }

std::pair<std::string, std::uint16_t> url_host_port(const std::string& url) {
  static const std::regex host_port(R"(^postgres(?:ql)?://(?:[^@/]*@)?([^:/?]+):(\d+))");
  std::smatch match;
  if (!std::regex_search(url, match, host_port)) {
    throw std::invalid_argument("expected postgresql://[user@]host:port/...: " + url);
  }
  return {match[1].str(), static_cast<std::uint16_t>(std::stoul(match[2].str()))};
}

std::string url_via_port(const std::string& url, std::uint16_t port) {
  static const std::regex host_port(R"(^(postgres(?:ql)?://(?:[^@/]*@)?)[^:/?]+:\d+)");
  std::smatch match;
  if (!std::regex_search(url, match, host_port)) {
    throw std::invalid_argument("expected postgresql://[user@]host:port/...: " + url);
  }
  return match[1].str() + "127.0.0.1:" + std::to_string(port) + match.suffix().str();
}

}  // namespace test_support
