#include "common/http_server.hpp"

#include <atomic>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/text.hpp"

namespace common::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

const std::string& request::header(const std::string& lower_case_name) const {
  static const std::string empty;
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? empty : it->second;
}

std::string request::path() const { return target.substr(0, target.find('?')); }

response error_response(unsigned status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  return response{status, "application/json", body.dump(), {}};
}

namespace {

class session;

// What the sessions share with the server: settings, the handler and the bookkeeping drain() needs.
struct shared_state {
  shared_state(server_config c, handler h) : config(std::move(c)), on_request(std::move(h)) {}

  const server_config config;
  const handler on_request;
  std::atomic<bool> draining{false};
  std::mutex mutex;
  std::condition_variable all_closed;
  std::list<std::weak_ptr<session>> sessions;  // guarded by mutex
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, shared_state& state)
      : stream_(std::move(socket)), state_(state), config_(state.config), on_request_(state.on_request) {
    // Answers go out in one write; do not let Nagle hold them back waiting for the client's ACK.
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
  }

  ~session() {
    if (!registered_) return;
    std::lock_guard lock(state_.mutex);
    state_.sessions.erase(registration_);
    if (state_.sessions.empty()) state_.all_closed.notify_all();
  }

  void run() {
    {
      std::lock_guard lock(state_.mutex);
      registration_ = state_.sessions.insert(state_.sessions.end(), weak_from_this());
      registered_ = true;
    }
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&session::read_next, shared_from_this()));
  }

  /// drain(): a connection waiting for its next request is closed; one whose request is being
  /// handled or answered finishes that first (send() and read_next() see `draining`).
  void close_if_idle() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->busy_) self->stream_.cancel();
    });
  }

 private:
  void read_next() {
    busy_ = false;
    if (state_.draining) return close();
    parser_.emplace();
    parser_->body_limit(config_.body_limit);
    // First byte may take up to idle_timeout (keep-alive); the request itself gets request_timeout
    // from its first byte on, which Beast cannot split: use the shorter of the two once a request started.
    stream_.expires_after(first_request_ ? config_.request_timeout : config_.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    first_request_ = false;
    if (ec == bhttp::error::body_limit) {
      auto res =
          error_response(413, "body_too_large", fmt::format("request body exceeds {} bytes", config_.body_limit));
      return send(std::move(res), false);
    }
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      return close();
    }
    if (ec) {
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) {
        return send(error_response(400, "bad_request", ec.message()), false);
      }
      return close();
    }
    busy_ = true;
    auto& msg = parser_->get();
    request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& field : msg)
      req.headers[ascii_lower(std::string(field.name_string()))] = std::string(field.value());
    req.body = std::move(msg.body());
    const bool keep_alive = msg.keep_alive();
    response res;
    try {
      res = on_request_(req);
    } catch (const std::exception& e) {
      spdlog::error("http: {} {} failed: {}", req.method, req.path(), e.what());
      res = error_response(500, "internal", "internal error; see the service log");
    }
    send(std::move(res), keep_alive);
  }

  void send(response res, bool keep_alive) {
    busy_ = true;
    keep_alive = keep_alive && !state_.draining;
    auto msg = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(res.status), 11);
    msg->set(bhttp::field::server, "wallet-outbox");
    msg->set(bhttp::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) msg->set(name, value);
    msg->body() = std::move(res.body);
    msg->keep_alive(keep_alive);
    msg->prepare_payload();
    stream_.expires_after(config_.request_timeout);
    bhttp::async_write(stream_, *msg, [self = shared_from_this(), msg, keep_alive](beast::error_code ec, std::size_t) {
      if (ec || !keep_alive || self->state_.draining) return self->close();
      self->read_next();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  shared_state& state_;
  const server_config& config_;
  const handler& on_request_;
  bool first_request_ = true;
  bool busy_ = false;  // a request is being handled or answered; touched on the strand only
  bool registered_ = false;
  std::list<std::weak_ptr<session>>::iterator registration_;
};

}  // namespace

struct server::impl {
  impl(server_config c, handler h)
      : state(std::move(c), std::move(h)), config(state.config), acceptor(asio::make_strand(io)) {}

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) std::make_shared<session>(std::move(socket), state)->run();
      accept();
    });
  }

  shared_state state;
  const server_config& config;
  asio::io_context io;
  tcp::acceptor acceptor;  // on its own strand: drain() closes it from outside the I/O threads
  std::vector<std::thread> threads;
  std::uint16_t bound_port = 0;
};

std::string parse_listen_address(config_reader& reader, std::string_view key, std::string_view fallback) {
  auto address = reader.get_string(key, fallback);
  boost::system::error_code ec;
  asio::ip::make_address(address, ec);
  if (ec) {
    throw config_error(std::string(key), fmt::format("{} must be an IP address such as \"127.0.0.1\" or \"::1\", "
                                                     "got \"{}\"",
                                                     key, address));
  }
  return address;
}

server_config parse_server_config(config_reader& reader, std::uint16_t default_port) {
  server_config config;
  config.bind_address = parse_listen_address(reader, "http.listen", config.bind_address);
  config.port = static_cast<std::uint16_t>(reader.get_int("http.port", default_port, 0, 65535));
  return config;
}

server::server(server_config config, handler on_request)
    : impl_(std::make_unique<impl>(std::move(config), std::move(on_request))) {}

server::~server() { stop(); }

void server::start() {
  const auto address = asio::ip::make_address(impl_->config.bind_address);
  const tcp::endpoint endpoint(address, impl_->config.port);
  try {
    impl_->acceptor.open(endpoint.protocol());
    impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
    impl_->acceptor.bind(endpoint);
    impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    throw std::system_error(
        e.code(), fmt::format("http: cannot listen on {}:{}", impl_->config.bind_address, impl_->config.port));
  }
  impl_->bound_port = impl_->acceptor.local_endpoint().port();
  // Tests and operators read the bound port from this line (port 0 asks for an ephemeral one).
  spdlog::info("listening on http://{}:{}", impl_->config.bind_address, impl_->bound_port);
  impl_->accept();
  for (std::size_t i = 0; i < std::max<std::size_t>(1, impl_->config.threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
}

bool server::drain(std::chrono::milliseconds timeout) {
  if (!impl_ || impl_->threads.empty()) return true;
  impl_->state.draining = true;
  asio::post(impl_->acceptor.get_executor(), [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<session>> live;
  {
    std::lock_guard lock(impl_->state.mutex);
    for (auto& weak : impl_->state.sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->close_if_idle();
  live.clear();  // the sessions must be free to end
  bool finished = false;
  {
    std::unique_lock lock(impl_->state.mutex);
    finished = impl_->state.all_closed.wait_for(lock, timeout, [this] { return impl_->state.sessions.empty(); });
  }
  if (!finished) spdlog::warn("http: connections still busy after {} ms; closing them", timeout.count());
  stop();
  return finished;
}

void server::stop() noexcept {
  if (!impl_ || impl_->threads.empty()) return;
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

std::uint16_t server::port() const noexcept { return impl_->bound_port; }

}  // namespace common::http
