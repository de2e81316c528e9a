#include "broadcaster/eth_rpc.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "chain/hex.hpp"
#include "common/http_client.hpp"

namespace broadcaster {

using json = nlohmann::json;

namespace {
common::http::client_options node_client_options() {
  common::http::client_options options;
  options.user_agent = "broadcaster-worker";
  options.body_limit = 16 * 1024 * 1024;
  options.resend_on_stale_connection = true;  // every method used here is idempotent
  options.target_in_errors = false;           // providers put API keys in the path
  return options;
}
}  // namespace

struct eth_rpc::impl {
  impl(const std::string& u, std::chrono::milliseconds timeout)
      : endpoint(parse_rpc_url(u)),
        url(redacted_rpc_url(u)),
        http(endpoint.host, static_cast<std::uint16_t>(std::stoul(endpoint.port)), timeout, node_client_options()) {}

  rpc_endpoint endpoint;
  std::string url;
  common::http::client http;
  std::int64_t next_id = 1;

  // The answer's body; rpc_unavailable when there is none worth parsing.
  std::string post(std::string body) {
    common::http::client_response response;
    try {
      response = http.post_json(endpoint.target, std::move(body));
    } catch (const common::http::transport_error& e) {
      throw rpc_unavailable(fmt::format("eth node {}: {}", url, e.reason()));
    }
    const unsigned status = response.status;
    if (status == 429 || status >= 500) {
      throw rpc_unavailable(fmt::format("eth node {}: HTTP {} {}", url, status, response.reason));
    }
    if (status != 200) {
      // Some nodes answer JSON-RPC errors with 4xx: let the caller see the error object if there is one.
      if (json::accept(response.body)) return std::move(response.body);
      throw rpc_unavailable(fmt::format("eth node {}: HTTP {} {}", url, status, response.reason));
    }
    return std::move(response.body);
  }
};

eth_rpc::eth_rpc(const std::string& url, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>(url, timeout)) {}

eth_rpc::~eth_rpc() = default;

const std::string& eth_rpc::url() const noexcept { return impl_->url; }

void eth_rpc::on_call(call_observer observer) { observer_ = std::move(observer); }

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
  if (result == reply.end())
    throw rpc_unavailable(fmt::format("eth node {}: {} answered without a result", url, method));
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
  if (observer_) observer_(method);
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
    if (observer_) observer_(method);
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
  chain::hash256 parsed{};
  try {
    chain::from_hex(block_hash->get<std::string>(), parsed);
  } catch (const std::invalid_argument& e) {
    throw rpc_unavailable(fmt::format("eth_getTransactionReceipt: blockHash: {}", e.what()));
  }
  out.block_hash = chain::to_hex(parsed);  // one spelling: 0x + lower-case hex
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
    chain::hash256 reported{};
    const bool same = result.is_string() && [&] {
      try {
        chain::from_hex(result.get<std::string>(), reported);
        return reported == hash;
      } catch (const std::invalid_argument&) {
        return false;
      }
    }();
    if (result.is_string() && !same) {
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
