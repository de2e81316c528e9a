#include "broadcaster/eth_rpc.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "chain/hex.hpp"

namespace broadcaster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

rpc_endpoint parse_rpc_url(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    throw std::invalid_argument("https:// is not supported: point it at the node over http:// on a private network, "
                                "or at a local TLS-terminating proxy");
  }
  if (url.rfind(scheme, 0) != 0) {
    throw std::invalid_argument(fmt::format("expected http://host[:port][/path], got \"{}\"", url));
  }
  const std::string rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  rpc_endpoint out;
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (authority.find('@') != std::string::npos) {
    throw std::invalid_argument("credentials in the URL are not supported");
  }
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) throw std::invalid_argument("unterminated [IPv6] host");
    out.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw std::invalid_argument("expected :port after the [IPv6] host");
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) throw std::invalid_argument(fmt::format("no host in \"{}\"", url));
  if (port_text.empty()) {
    out.port = "80";
  } else {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      throw std::invalid_argument(fmt::format("port must be 1..65535, got \"{}\"", port_text));
    }
    out.port = port_text;
  }
  return out;
}

std::string redacted_rpc_url(const std::string& url) {
  const rpc_endpoint e = parse_rpc_url(url);
  const bool ipv6 = e.host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}", ipv6 ? "[" : "", e.host, ipv6 ? "]" : "", e.port);
}

rpc_error::rpc_error(std::int64_t code, std::string message)
    : std::runtime_error(fmt::format("JSON-RPC error {}: {}", code, message)),
      code_(code),
      node_message_(std::move(message)) {}

chain::uint256 parse_quantity(std::string_view text) {
  if (text.size() < 3 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) {
    throw std::invalid_argument(fmt::format("expected a 0x-prefixed hex quantity, got \"{}\"", text));
  }
  const std::string_view digits = text.substr(2);
  if (digits.size() > 64) throw std::invalid_argument("hex quantity exceeds 256 bits");
  chain::uint256 value = 0;
  for (const char c : digits) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      throw std::invalid_argument(fmt::format("expected a 0x-prefixed hex quantity, got \"{}\"", text));
    }
    value = (value << 4) | digit;
  }
  return value;
}

std::uint64_t parse_quantity_u64(std::string_view text) {
  const auto value = parse_quantity(text);
  if (value > std::numeric_limits<std::uint64_t>::max()) {
    throw std::invalid_argument(fmt::format("quantity {} does not fit 64 bits", text));
  }
  return value.convert_to<std::uint64_t>();
}

std::string to_quantity(const chain::uint256& value) {
  if (value == 0) return "0x0";
  std::string digits;
  chain::uint256 rest = value;
  while (rest != 0) {
    const auto nibble = static_cast<unsigned>(rest & 0xf);
    digits.push_back("0123456789abcdef"[nibble]);
    rest >>= 4;
  }
  std::reverse(digits.begin(), digits.end());
  return "0x" + digits;
}

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool contains_any(const std::string& haystack, std::initializer_list<std::string_view> needles) {
  return std::any_of(needles.begin(), needles.end(),
                     [&](std::string_view needle) { return haystack.find(needle) != std::string::npos; });
}

}  // namespace

send_error_kind classify_send_error(std::int64_t code, std::string_view message) {
  const std::string m = lower(message);
  // geth: "already known"; parity/openethereum: "known transaction", "already imported";
  // nethermind: "AlreadyKnown"; anvil/reth: "transaction already imported", "already known".
  if (contains_any(m, {"already known", "alreadyknown", "known transaction", "already imported",
                       "already exists", "already in the pool", "already in pool"})) {
    return send_error_kind::already_known;
  }
  if (contains_any(m, {"nonce too low", "nonce is too low", "oldnonce", "nonce has already been used"})) {
    return send_error_kind::nonce_too_low;
  }
  // Congestion and rate limits say nothing about the transaction itself.
  if (code == -32005 || contains_any(m, {"txpool is full", "pool is full", "too many", "rate limit", "limit exceeded",
                                         "try again", "timeout", "timed out", "temporarily", "busy",
                                         "header not found", "service unavailable"})) {
    return send_error_kind::transient;
  }
  return send_error_kind::permanent;
}

struct eth_rpc::impl {
  impl(const std::string& u, std::chrono::milliseconds t)
      : endpoint(parse_rpc_url(u)), url(redacted_rpc_url(u)), timeout(t) {}

  rpc_endpoint endpoint;
  std::string url;
  std::chrono::milliseconds timeout;
  asio::io_context io;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::int64_t next_id = 1;

  using clock = std::chrono::steady_clock;

  [[noreturn]] void fail(std::string_view what, const beast::error_code& ec) {
    stream.reset();
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      throw rpc_unavailable(fmt::format("eth node {}: {} timed out (deadline {} ms)", url, what, timeout.count()));
    }
    throw rpc_unavailable(fmt::format("eth node {}: {} failed: {}", url, what, ec.message()));
  }

  void connect(clock::time_point deadline) {
    tcp::resolver resolver(io);
    asio::steady_timer timer(io, deadline);
    beast::error_code ec = asio::error::would_block;
    tcp::resolver::results_type results;
    resolver.async_resolve(endpoint.host, endpoint.port,
                           [&](const beast::error_code& e, tcp::resolver::results_type r) {
                             ec = e;
                             results = std::move(r);
                             timer.cancel();
                           });
    timer.async_wait([&](const beast::error_code& e) {
      if (!e) resolver.cancel();
    });
    io.restart();
    io.run();
    if (ec) fail("resolving " + endpoint.host, ec);

    stream.emplace(io);
    stream->expires_at(deadline);
    ec = asio::error::would_block;
    stream->async_connect(results, [&](const beast::error_code& e, const tcp::endpoint&) { ec = e; });
    io.restart();
    io.run();
    if (ec) fail("connect", ec);
    buffer.clear();
  }

  // One request/response on the open stream. Returns the error instead of throwing so the caller
  // can tell a stale keep-alive connection from a real failure.
  beast::error_code exchange(const std::string& body, clock::time_point deadline,
                             bhttp::response<bhttp::string_body>& response) {
    bhttp::request<bhttp::string_body> request{bhttp::verb::post, endpoint.target, 11};
    request.set(bhttp::field::host, endpoint.host);
    request.set(bhttp::field::user_agent, "broadcaster-worker");
    request.set(bhttp::field::content_type, "application/json");
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();

    beast::error_code ec = asio::error::would_block;
    stream->expires_at(deadline);
    bhttp::async_write(*stream, request, [&](const beast::error_code& e, std::size_t) { ec = e; });
    io.restart();
    io.run();
    if (ec) return ec;

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    ec = asio::error::would_block;
    stream->expires_at(deadline);
    bhttp::async_read(*stream, buffer, parser, [&](const beast::error_code& e, std::size_t) { ec = e; });
    io.restart();
    io.run();
    if (!ec) response = parser.release();
    return ec;
  }

  std::string post(const std::string& body) {
    const auto deadline = clock::now() + timeout;
    bhttp::response<bhttp::string_body> response;
    for (int attempt = 0;; ++attempt) {
      const bool reused = stream.has_value();
      if (!reused) connect(deadline);
      const auto ec = exchange(body, deadline, response);
      if (!ec) break;
      // The node may have closed an idle keep-alive connection: one more try on a fresh one.
      if (reused && attempt == 0 && ec != beast::error::timeout && clock::now() < deadline) {
        stream.reset();
        continue;
      }
      fail("request", ec);
    }
    if (!response.keep_alive()) stream.reset();
    const unsigned status = response.result_int();
    if (status == 429 || status >= 500) {
      throw rpc_unavailable(fmt::format("eth node {}: HTTP {} {}", url, status, std::string(response.reason())));
    }
    if (status != 200) {
      // Some nodes answer JSON-RPC errors with 4xx: let the caller see the error object if there is one.
      if (json::accept(response.body())) return std::move(response.body());
      throw rpc_unavailable(fmt::format("eth node {}: HTTP {} {}", url, status, std::string(response.reason())));
    }
    return std::move(response.body());
  }
};

eth_rpc::eth_rpc(const std::string& url, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>(url, timeout)) {}

eth_rpc::~eth_rpc() = default;

const std::string& eth_rpc::url() const noexcept { return impl_->url; }

namespace {

// The "result" of one JSON-RPC reply object; rpc_error for an error object.
json result_of(json& reply, std::string_view method, const std::string& url) {
  if (!reply.is_object()) {
    throw rpc_unavailable(
        fmt::format("eth node {}: {} answered with a JSON {} instead of an object", url, method, reply.type_name()));
  }
  if (const auto error = reply.find("error"); error != reply.end() && !error->is_null()) {
    std::int64_t code = 0;
    std::string message = error->dump();
    if (error->is_object()) {
      if (auto c = error->find("code"); c != error->end() && c->is_number_integer()) code = c->get<std::int64_t>();
      if (auto m = error->find("message"); m != error->end() && m->is_string()) message = m->get<std::string>();
      // geth puts the revert/validation detail in data for some errors.
      if (auto d = error->find("data"); d != error->end() && d->is_string()) message += ": " + d->get<std::string>();
    }
    throw rpc_error(code, message);
  }
  const auto result = reply.find("result");
  if (result == reply.end()) throw rpc_unavailable(fmt::format("eth node {}: {} answered without a result", url, method));
  return std::move(*result);
}

json parse_reply(const std::string& text, std::string_view method, const std::string& url) {
  try {
    return json::parse(text);
  } catch (const json::parse_error&) {
    throw rpc_unavailable(fmt::format("eth node {}: {} answered with something that is not JSON", url, method));
  }
}

}  // namespace

json eth_rpc::call(std::string_view method, const json& params) {
  const json request = {{"jsonrpc", "2.0"}, {"id", impl_->next_id++}, {"method", method}, {"params", params}};
  json reply = parse_reply(impl_->post(request.dump()), method, impl_->url);
  return result_of(reply, method, impl_->url);
}

std::vector<json> eth_rpc::batch(const std::vector<std::pair<std::string, json>>& calls) {
  std::vector<json> results;
  if (calls.empty()) return results;
  json request = json::array();
  const std::int64_t first_id = impl_->next_id;
  for (const auto& [method, params] : calls) {
    request.push_back({{"jsonrpc", "2.0"}, {"id", impl_->next_id++}, {"method", method}, {"params", params}});
  }
  json reply = parse_reply(impl_->post(request.dump()), "batch", impl_->url);
  if (!reply.is_array() || reply.size() != calls.size()) {
    throw rpc_unavailable(fmt::format("eth node {}: a batch of {} calls got {} (does the node support batches?)",
                                      impl_->url, calls.size(), reply.is_array() ? reply.size() : 1));
  }
  // Replies may come in any order: match them by id.
  results.resize(calls.size());
  std::vector<bool> seen(calls.size(), false);
  for (auto& item : reply) {
    const auto id = item.is_object() ? item.find("id") : item.end();
    if (id == item.end() || !id->is_number_integer()) {
      throw rpc_unavailable(fmt::format("eth node {}: a batch reply without an integer id", impl_->url));
    }
    const auto at = id->get<std::int64_t>() - first_id;
    if (at < 0 || at >= static_cast<std::int64_t>(calls.size()) || seen[static_cast<std::size_t>(at)]) {
      throw rpc_unavailable(fmt::format("eth node {}: a batch reply with an unexpected id {}", impl_->url, id->dump()));
    }
    const auto index = static_cast<std::size_t>(at);
    seen[index] = true;
    results[index] = result_of(item, calls[index].first, impl_->url);
  }
  return results;
}

namespace {
std::string as_string(const json& value, std::string_view method) {
  if (!value.is_string()) {
    throw rpc_unavailable(fmt::format("{} returned {} where a hex string was expected", method, value.dump()));
  }
  return value.get<std::string>();
}

chain::uint256 quantity_of(const json& value, std::string_view method) {
  try {
    return parse_quantity(as_string(value, method));
  } catch (const std::invalid_argument& e) {
    throw rpc_unavailable(fmt::format("{}: {}", method, e.what()));
  }
}

std::uint64_t quantity64_of(const json& value, std::string_view method) {
  try {
    return parse_quantity_u64(as_string(value, method));
  } catch (const std::invalid_argument& e) {
    throw rpc_unavailable(fmt::format("{}: {}", method, e.what()));
  }
}
}  // namespace

std::uint64_t eth_rpc::chain_id() { return quantity64_of(call("eth_chainId", json::array()), "eth_chainId"); }

std::uint64_t eth_rpc::get_transaction_count(const chain::address& account, std::string_view block) {
  return quantity64_of(call("eth_getTransactionCount", json::array({account.to_lower_hex(), block})),
                       "eth_getTransactionCount");
}

chain::uint256 eth_rpc::get_balance(const chain::address& account, std::string_view block) {
  return quantity_of(call("eth_getBalance", json::array({account.to_lower_hex(), block})), "eth_getBalance");
}

chain::uint256 eth_rpc::gas_price() { return quantity_of(call("eth_gasPrice", json::array()), "eth_gasPrice"); }

chain::uint256 eth_rpc::max_priority_fee_per_gas() {
  return quantity_of(call("eth_maxPriorityFeePerGas", json::array()), "eth_maxPriorityFeePerGas");
}

std::optional<chain::uint256> eth_rpc::base_fee_per_gas() {
  const json block = call("eth_getBlockByNumber", json::array({"latest", false}));
  if (!block.is_object()) throw rpc_unavailable("eth_getBlockByNumber(latest) returned no block");
  const auto fee = block.find("baseFeePerGas");
  if (fee == block.end() || fee->is_null()) return std::nullopt;
  return quantity_of(*fee, "eth_getBlockByNumber");
}

bool eth_rpc::transaction_known(const chain::hash256& hash) {
  return !call("eth_getTransactionByHash", json::array({chain::to_hex(hash)})).is_null();
}

std::optional<transaction_receipt> parse_receipt(const json& receipt) {
  if (receipt.is_null()) return std::nullopt;
  if (!receipt.is_object()) throw rpc_unavailable("eth_getTransactionReceipt returned " + receipt.dump());
  const auto block = receipt.find("blockNumber");
  if (block == receipt.end() || block->is_null()) return std::nullopt;  // some nodes return pending receipts
  transaction_receipt out;
  out.block_number = quantity64_of(*block, "eth_getTransactionReceipt");
  const auto block_hash = receipt.find("blockHash");
  if (block_hash == receipt.end() || !block_hash->is_string()) {
    throw rpc_unavailable("eth_getTransactionReceipt: receipt without blockHash");
  }
  out.block_hash = lower(block_hash->get<std::string>());
  const auto status = receipt.find("status");
  if (status == receipt.end() || status->is_null()) {
    throw rpc_unavailable("eth_getTransactionReceipt: receipt without status (pre-Byzantium chain)");
  }
  out.success = quantity_of(*status, "eth_getTransactionReceipt") == 1;
  if (auto g = receipt.find("gasUsed"); g != receipt.end() && g->is_string()) {
    out.gas_used = quantity_of(*g, "eth_getTransactionReceipt");
  }
  if (auto p = receipt.find("effectiveGasPrice"); p != receipt.end() && p->is_string()) {
    out.effective_gas_price = quantity_of(*p, "eth_getTransactionReceipt");
  }
  return out;
}

std::optional<transaction_receipt> eth_rpc::get_transaction_receipt(const chain::hash256& hash) {
  return parse_receipt(call("eth_getTransactionReceipt", json::array({chain::to_hex(hash)})));
}

send_result eth_rpc::send_raw_transaction(std::span<const std::uint8_t> raw, const chain::hash256& hash) {
  const std::string our_hash = chain::to_hex(hash);
  try {
    const json result = call("eth_sendRawTransaction", json::array({chain::to_hex(raw)}));
    if (result.is_string() && lower(result.get<std::string>()) != our_hash) {
      spdlog::warn("eth node {} reported hash {} for our transaction {}", impl_->url, result.get<std::string>(),
                   our_hash);
    }
    return {send_outcome::sent, {}, false};
  } catch (const rpc_unavailable& e) {
    return {send_outcome::transient, e.what(), false};
  } catch (const rpc_error& e) {
    const auto kind = classify_send_error(e.code(), e.node_message());
    if (kind == send_error_kind::already_known) return {send_outcome::already_known, e.node_message(), false};
    if (kind == send_error_kind::transient) return {send_outcome::transient, e.what(), false};
    // Before calling anything a permanent refusal, make sure the node does not hold our very
    // transaction (mined or pending): then "nonce too low" just means it was ours.
    try {
      if (transaction_known(hash)) return {send_outcome::already_known, e.node_message(), false};
    } catch (const std::exception& check) {
      return {send_outcome::transient,
              fmt::format("{} (and eth_getTransactionByHash failed: {})", e.what(), check.what()), false};
    }
    return {send_outcome::rejected, e.node_message(), kind == send_error_kind::nonce_too_low};
  }
}

}  // namespace broadcaster
