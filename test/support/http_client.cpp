#include "http_client.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <regex>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace test_support {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}
}  // namespace

std::string http_response::header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it == headers.end() ? std::string() : it->second;
}

struct http_client::impl {
  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  // Runs the queued asynchronous operation to completion (the stream's deadline bounds it).
  void run() {
    io.restart();
    io.run();
  }
};

http_client::http_client(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

http_client::~http_client() = default;

http_response http_client::request(std::string_view method, std::string_view target, std::string body,
                                   const std::map<std::string, std::string>& headers) {
  auto& d = *impl_;
  auto fail = [&](std::string_view step, const beast::error_code& ec) {
    d.stream.reset();
    d.buffer.clear();
    return std::runtime_error(
        fmt::format("http {} {} on {}:{}: {} failed: {}", method, target, d.host, d.port, step, ec.message()));
  };
  beast::error_code ec;
  if (!d.stream) {
    d.stream.emplace(d.io);
    d.stream->expires_after(d.timeout);
    d.stream->async_connect(tcp::endpoint(asio::ip::make_address(d.host), d.port),
                            [&](beast::error_code e) { ec = e; });
    d.run();
    if (ec) throw fail("connect", ec);
  }
  const beast::string_view verb(method.data(), method.size());
  bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(verb), std::string(target), 11);
  if (req.method() == bhttp::verb::unknown) req.method_string(verb);
  req.set(bhttp::field::host, fmt::format("{}:{}", d.host, d.port));
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = std::move(body);
  req.prepare_payload();
  req.keep_alive(true);

  d.stream->expires_after(d.timeout);
  bhttp::async_write(*d.stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  d.run();
  if (ec) throw fail("write", ec);

  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  d.stream->expires_after(d.timeout);
  bhttp::async_read(*d.stream, d.buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  d.run();
  if (ec) throw fail("read", ec);

  auto msg = parser.release();
  http_response out;
  out.status = msg.result_int();
  for (const auto& field : msg) out.headers[lower(std::string(field.name_string()))] = std::string(field.value());
  out.body = std::move(msg.body());
  if (!msg.keep_alive()) {
    d.stream.reset();
    d.buffer.clear();
  }
  return out;
}

http_response http_client::get(std::string_view target, const std::map<std::string, std::string>& headers) {
  return request("GET", target, {}, headers);
}

http_response http_client::post_json(std::string_view target, std::string body,
                                     std::map<std::string, std::string> headers) {
  bool has_content_type = false;
  for (const auto& [name, value] : headers) has_content_type = has_content_type || lower(name) == "content-type";
  if (!has_content_type) headers["Content-Type"] = "application/json";
  return request("POST", target, std::move(body), headers);
}

std::uint16_t wait_for_port(child_process& daemon, std::string_view scheme, std::chrono::milliseconds timeout) {
  const std::regex listening(fmt::format(R"(listening on {}://\S+:(\d+))", scheme));
  std::optional<std::uint16_t> port;
  wait_until(
      [&] {
        std::smatch match;
        const std::string log = daemon.log();
        if (std::regex_search(log, match, listening)) port = static_cast<std::uint16_t>(std::stoul(match[1].str()));
        return port.has_value() || !daemon.running();
      },
      timeout);
  if (!port) {
    throw std::runtime_error(fmt::format("no \"listening on {}://…\" line from pid {} within {} ms; log:\n{}", scheme,
                                         daemon.pid(), timeout.count(), daemon.log()));
  }
  return *port;
}

std::uint16_t wait_for_http_port(child_process& daemon, std::chrono::milliseconds timeout) {
  return wait_for_port(daemon, "http", timeout);
}

}  // namespace test_support
