// The text side of the JSON-RPC client: URLs, quantities, error objects and the classification
// of eth_sendRawTransaction refusals (declared in eth_rpc.hpp).
#include <algorithm>
#include <charconv>
#include <limits>

#include <fmt/format.h>

#include "broadcaster/eth_rpc.hpp"
#include "common/text.hpp"

namespace broadcaster {

rpc_endpoint parse_rpc_url(const std::string& url) {
  constexpr std::string_view scheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    throw std::invalid_argument(
        "https:// is not supported: point it at the node over http:// on a private network, "
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

bool contains_any(const std::string& haystack, std::initializer_list<std::string_view> needles) {
  return std::any_of(needles.begin(), needles.end(),
                     [&](std::string_view needle) { return haystack.find(needle) != std::string::npos; });
}

}  // namespace

send_error_kind classify_send_error(std::int64_t code, std::string_view message) {
  const std::string m = common::ascii_lower(message);
  // geth: "already known"; parity/openethereum: "known transaction", "already imported";
  // nethermind: "AlreadyKnown"; anvil/reth: "transaction already imported", "already known".
  if (contains_any(m, {"already known", "alreadyknown", "known transaction", "already imported", "already exists",
                       "already in the pool", "already in pool"})) {
    return send_error_kind::already_known;
  }
  if (contains_any(m, {"nonce too low", "nonce is too low", "oldnonce", "nonce has already been used"})) {
    return send_error_kind::nonce_too_low;
  }
  // Congestion and rate limits say nothing about the transaction itself.
  if (code == -32005 ||
      contains_any(m, {"txpool is full", "pool is full", "too many", "rate limit", "limit exceeded", "try again",
                       "timeout", "timed out", "temporarily", "busy", "header not found", "service unavailable"})) {
    return send_error_kind::transient;
  }
  return send_error_kind::permanent;
}

}  // namespace broadcaster
