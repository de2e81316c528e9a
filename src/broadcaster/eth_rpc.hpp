#pragma once
// A small blocking Ethereum JSON-RPC client over HTTP/1.1 (common/http_client.hpp), for the broadcaster and
// for tests that need to look at the chain.
//
// Every call has a deadline of `timeout` from its start (resolve + connect + write + read).
// One keep-alive connection is reused; when a reused connection turns out to be closed by the
// node, the call is retried once on a fresh one (every method used here is idempotent:
// re-sending a signed transaction yields the same hash).
//
// Errors:
//   rpc_unavailable — transport failure, timeout, HTTP 429/5xx or a non-JSON answer: transient,
//                     retry later.
//   rpc_error       — the node answered with a JSON-RPC error object (code, message).
// Thread-safety: none; use one eth_rpc per thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "chain/address.hpp"
#include "chain/keccak.hpp"
#include "chain/uint256.hpp"

namespace broadcaster {

struct rpc_endpoint {
  std::string host;
  std::string port;    // "80" when the URL has none
  std::string target;  // "/" when the URL has no path
};

/// Parses http://host[:port][/path]. Throws std::invalid_argument naming what is wrong
/// (https is not supported: terminate TLS in a local proxy).
rpc_endpoint parse_rpc_url(const std::string& url);

/// "http://host:port" of a valid chain.rpc_url, without its path and query string (providers put
/// API keys there): the only form of the URL that is ever logged.
std::string redacted_rpc_url(const std::string& url);

class rpc_unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class rpc_error : public std::runtime_error {
 public:
  rpc_error(std::int64_t code, std::string message);
  std::int64_t code() const noexcept { return code_; }
  /// The node's message without our prefix.
  const std::string& node_message() const noexcept { return node_message_; }

 private:
  std::int64_t code_;
  std::string node_message_;
};

/// Parses a JSON-RPC QUANTITY ("0x0", "0x1a2b"). Throws std::invalid_argument on anything else
/// (no prefix, empty, non-hex, more than 256 bits).
chain::uint256 parse_quantity(std::string_view text);
/// The same, checked to fit 64 bits.
std::uint64_t parse_quantity_u64(std::string_view text);
/// "0x" + minimal hex digits ("0x0" for zero).
std::string to_quantity(const chain::uint256& value);

/// How the node answered eth_sendRawTransaction.
enum class send_outcome {
  sent,           // accepted now
  already_known,  // the node (or the chain) already has this exact transaction: counts as sent
  rejected,       // refused for good (insufficient funds, intrinsic gas too low, nonce taken by another tx, ...)
  transient,      // try again later (node unreachable, timeout, 5xx, pool full)
};

struct send_result {
  send_outcome outcome = send_outcome::transient;
  std::string message;         // the node's error text (empty when sent)
  bool nonce_too_low = false;  // rejected because the sender's nonce moved past ours
};

/// What a JSON-RPC error returned by eth_sendRawTransaction means, judged from its message.
enum class send_error_kind { already_known, nonce_too_low, transient, permanent };
send_error_kind classify_send_error(std::int64_t code, std::string_view message);

struct transaction_receipt {
  bool success = false;  // status 0x1
  std::uint64_t block_number = 0;
  std::string block_hash;  // 0x + 64 hex digits, lower case
  chain::uint256 gas_used = 0;
  chain::uint256 effective_gas_price = 0;
};

/// A receipt as eth_getTransactionReceipt returns it; nullopt for null or a pending receipt.
/// Throws rpc_unavailable for a malformed one.
std::optional<transaction_receipt> parse_receipt(const nlohmann::json& receipt);

class eth_rpc {
 public:
  /// Throws std::invalid_argument for a bad URL. Does not connect yet.
  eth_rpc(const std::string& url, std::chrono::milliseconds timeout);
  ~eth_rpc();
  eth_rpc(const eth_rpc&) = delete;
  eth_rpc& operator=(const eth_rpc&) = delete;

  /// Any method; returns the "result" member. Throws rpc_unavailable or rpc_error.
  nlohmann::json call(std::string_view method, const nlohmann::json& params);

  /// A JSON-RPC batch: every (method, params) in one HTTP request; the "result" members in the
  /// same order. Throws rpc_unavailable (transport, malformed reply) or rpc_error (the first
  /// call that failed).
  std::vector<nlohmann::json> batch(const std::vector<std::pair<std::string, nlohmann::json>>& calls);

  std::uint64_t chain_id();
  /// eth_getTransactionCount(address, block) with block "latest" or "pending".
  std::uint64_t get_transaction_count(const chain::address& account, std::string_view block = "pending");
  chain::uint256 get_balance(const chain::address& account, std::string_view block = "latest");
  chain::uint256 gas_price();
  chain::uint256 max_priority_fee_per_gas();
  /// baseFeePerGas of the latest block; nullopt before London.
  std::optional<chain::uint256> base_fee_per_gas();

  /// Sends and classifies (never throws rpc_unavailable/rpc_error; those become the outcome).
  /// "nonce too low" and other refusals are checked against eth_getTransactionByHash(hash):
  /// if the node knows our transaction it is already_known, not rejected.
  send_result send_raw_transaction(std::span<const std::uint8_t> raw, const chain::hash256& hash);

  /// eth_getTransactionByHash(hash) != null.
  bool transaction_known(const chain::hash256& hash);
  /// nullopt while the transaction is not mined.
  std::optional<transaction_receipt> get_transaction_receipt(const chain::hash256& hash);

  /// redacted_rpc_url() of the URL, for logs.
  const std::string& url() const noexcept;

  /// Called with the method name of every JSON-RPC call made through call() or batch() (once per
  /// call of a batch), before it is sent: for counting (broadcaster_rpc_calls_total). Must not
  /// throw. Replaces the previous observer; an empty function turns it off.
  using call_observer = std::function<void(std::string_view method)>;
  void on_call(call_observer observer);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  call_observer observer_;
};

}  // namespace broadcaster
