#include "common/http_client.hpp"

#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include "common/text.hpp"

namespace common::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

std::string client_response::header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? std::string() : it->second;
}

transport_error::transport_error(const std::string& request, std::string reason, bool timed_out)
    : std::runtime_error(request + ": " + reason), reason_(std::move(reason)), timed_out_(timed_out) {}

namespace {
bool is_timeout(const beast::error_code& ec) {
  return ec == beast::error::timeout || ec == asio::error::operation_aborted;
}
}  // namespace

struct client::impl {
  impl(std::string h, std::uint16_t p, std::chrono::milliseconds t, client_options o)
      : host(std::move(h)), port(p), timeout(t), options(std::move(o)) {}

  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  client_options options;
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  bool ipv6() const { return host.find(':') != std::string::npos; }

  std::string origin() const {
    return fmt::format("http://{}{}{}:{}", ipv6() ? "[" : "", host, ipv6() ? "]" : "", port);
  }

  // Runs the queued asynchronous operation to completion (a deadline bounds it).
  void run() {
    io.restart();
    io.run();
  }

  void drop() {
    stream.reset();
    buffer.clear();
  }

  [[noreturn]] void fail(std::string_view method, std::string_view target, std::string_view step,
                         const beast::error_code& ec) {
    drop();
    const std::string request =
        fmt::format("http {} {}{}", method, origin(), options.target_in_errors ? target : std::string_view());
    if (is_timeout(ec)) {
      throw transport_error(request, fmt::format("{} timed out (deadline {} ms)", step, timeout.count()), true);
    }
    throw transport_error(request, fmt::format("{} failed: {}", step, ec.message()), false);
  }

  // Resolves and connects within the deadline; the error, if any, names the step in `step`.
  beast::error_code connect(steady::time_point deadline, std::string_view& step) {
    step = "resolving the host";
    tcp::resolver resolver(io);
    asio::steady_timer timer(io, deadline);
    beast::error_code ec = asio::error::would_block;
    tcp::resolver::results_type results;
    resolver.async_resolve(host, std::to_string(port), [&](const beast::error_code& e, tcp::resolver::results_type r) {
      ec = e;
      results = std::move(r);
      timer.cancel();
    });
    timer.async_wait([&](const beast::error_code& e) {
      if (!e) resolver.cancel();
    });
    run();
    if (ec) return ec;

    step = "connect";
    stream.emplace(io);
    buffer.clear();
    stream->expires_at(deadline);
    ec = asio::error::would_block;
    stream->async_connect(results, [&](const beast::error_code& e, const tcp::endpoint&) { ec = e; });
    run();
    return ec;
  }

  // One request/answer on the open stream. Returns the error instead of throwing so the caller
  // can tell a stale keep-alive connection from a real failure.
  beast::error_code exchange(const bhttp::request<bhttp::string_body>& request, steady::time_point deadline,
                             bhttp::response<bhttp::string_body>& response, std::string_view& step) {
    step = "write";
    beast::error_code ec = asio::error::would_block;
    stream->expires_at(deadline);
    bhttp::async_write(*stream, request, [&](const beast::error_code& e, std::size_t) { ec = e; });
    run();
    if (ec) return ec;

    step = "read";
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options.body_limit);
    ec = asio::error::would_block;
    stream->expires_at(deadline);
    bhttp::async_read(*stream, buffer, parser, [&](const beast::error_code& e, std::size_t) { ec = e; });
    run();
    if (!ec) response = parser.release();
    return ec;
  }
};

client::client(std::string host, std::uint16_t port, std::chrono::milliseconds timeout, client_options options)
    : impl_(std::make_unique<impl>(std::move(host), port, timeout, std::move(options))) {}

client::~client() = default;

std::string client::origin() const { return impl_->origin(); }

client_response client::request(std::string_view method, std::string_view target, std::string body,
                                const std::map<std::string, std::string>& headers) {
  auto& d = *impl_;
  const auto deadline = steady::now() + d.timeout;

  const beast::string_view verb(method.data(), method.size());
  bhttp::request<bhttp::string_body> request(bhttp::string_to_verb(verb), std::string(target), 11);
  if (request.method() == bhttp::verb::unknown) request.method_string(verb);
  // The port is part of Host unless it is the scheme's default (RFC 9110 7.2).
  const std::string host = d.ipv6() ? "[" + d.host + "]" : d.host;
  request.set(bhttp::field::host, d.port == 80 ? host : fmt::format("{}:{}", host, d.port));
  if (!d.options.user_agent.empty()) request.set(bhttp::field::user_agent, d.options.user_agent);
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = std::move(body);
  request.prepare_payload();
  request.keep_alive(true);

  bhttp::response<bhttp::string_body> response;
  std::string_view step;
  for (int attempt = 0;; ++attempt) {
    const bool reused = d.stream.has_value();
    if (!reused) {
      if (const auto ec = d.connect(deadline, step)) d.fail(method, target, step, ec);
    }
    const auto ec = d.exchange(request, deadline, response, step);
    if (!ec) break;
    // The server may have closed an idle keep-alive connection: one more try on a fresh one.
    if (d.options.resend_on_stale_connection && reused && attempt == 0 && !is_timeout(ec) && steady::now() < deadline) {
      d.drop();
      continue;
    }
    d.fail(method, target, step, ec);
  }

  client_response out;
  out.status = response.result_int();
  out.reason = std::string(response.reason());
  for (const auto& field : response) {
    const auto name = field.name_string();
    out.headers[ascii_lower({name.data(), name.size()})] = std::string(field.value());
  }
  out.body = std::move(response.body());
  if (!response.keep_alive()) d.drop();
  return out;
}

client_response client::get(std::string_view target, const std::map<std::string, std::string>& headers) {
  return request("GET", target, {}, headers);
}

client_response client::post_json(std::string_view target, std::string body,
                                  std::map<std::string, std::string> headers) {
  bool has_content_type = false;
  for (const auto& [name, value] : headers) has_content_type = has_content_type || ascii_lower(name) == "content-type";
  if (!has_content_type) headers["Content-Type"] = "application/json";
  return request("POST", target, std::move(body), headers);
}

}  // namespace common::http
