#include "common/http_server.hpp"

#include <algorithm>
#include <cctype>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

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

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, const server_config& config, const handler& on_request)
      : stream_(std::move(socket)), config_(config), on_request_(on_request) {}

  void run() {
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&session::read_next, shared_from_this()));
  }

 private:
  void read_next() {
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
      auto res = error_response(413, "body_too_large",
                                fmt::format("request body exceeds {} bytes", config_.body_limit));
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
    auto& msg = parser_->get();
    request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    for (const auto& field : msg) req.headers[lower(std::string(field.name_string()))] = std::string(field.value());
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
    auto msg = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(res.status), 11);
    msg->set(bhttp::field::server, "wallet-outbox");
    msg->set(bhttp::field::content_type, res.content_type);
    for (auto& [name, value] : res.headers) msg->set(name, value);
    msg->body() = std::move(res.body);
    msg->keep_alive(keep_alive);
    msg->prepare_payload();
    stream_.expires_after(config_.request_timeout);
    bhttp::async_write(stream_, *msg,
                       [self = shared_from_this(), msg, keep_alive](beast::error_code ec, std::size_t) {
                         if (ec || !keep_alive) return self->close();
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
  const server_config& config_;
  const handler& on_request_;
  bool first_request_ = true;
};

}  // namespace

struct server::impl {
  impl(server_config c, handler h) : config(std::move(c)), on_request(std::move(h)), acceptor(io) {}

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<session>(std::move(socket), config, on_request)->run();
      accept();
    });
  }

  server_config config;
  handler on_request;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  std::uint16_t bound_port = 0;
};

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
    throw std::system_error(e.code(), fmt::format("http: cannot listen on {}:{}", impl_->config.bind_address,
                                                  impl_->config.port));
  }
  impl_->bound_port = impl_->acceptor.local_endpoint().port();
  // Tests and operators read the bound port from this line (port 0 asks for an ephemeral one).
  spdlog::info("listening on http://{}:{}", impl_->config.bind_address, impl_->bound_port);
  impl_->accept();
  for (std::size_t i = 0; i < std::max<std::size_t>(1, impl_->config.threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
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
