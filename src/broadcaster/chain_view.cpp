#include "broadcaster/chain_view.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace broadcaster {

using json = nlohmann::json;

namespace {

std::uint64_t u64(const json& value, const char* method) {
  if (!value.is_string()) throw rpc_unavailable(fmt::format("{} returned {}", method, value.dump()));
  try {
    return parse_quantity_u64(value.get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw rpc_unavailable(fmt::format("{}: {}", method, e.what()));
  }
}

}  // namespace

chain_snapshot read_chain(eth_rpc& rpc, const chain::address& account, std::uint64_t confirmations) {
  const std::string who = account.to_lower_hex();
  const auto first = rpc.batch({{"eth_blockNumber", json::array()},
                                {"eth_getTransactionCount", json::array({who, "latest"})},
                                {"eth_getBalance", json::array({who, "latest"})}});
  chain_snapshot out;
  out.head = u64(first[0], "eth_blockNumber");
  out.mined_count = u64(first[1], "eth_getTransactionCount");
  if (!first[2].is_string()) throw rpc_unavailable("eth_getBalance returned " + first[2].dump());
  try {
    out.balance = parse_quantity(first[2].get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw rpc_unavailable(fmt::format("eth_getBalance: {}", e.what()));
  }
  if (confirmations <= 1) {
    out.final_count = out.mined_count;
  } else if (out.head + 1 < confirmations) {
    out.final_count = 0;  // the chain is not that long yet: nothing is final
  } else {
    const auto final_block = to_quantity(out.head - confirmations + 1);
    out.final_count =
        u64(rpc.call("eth_getTransactionCount", json::array({who, final_block})), "eth_getTransactionCount");
  }
  // A node behind a load balancer may answer from two backends: never believe more is final than mined.
  if (out.final_count > out.mined_count) out.final_count = out.mined_count;
  return out;
}

std::vector<std::optional<transaction_receipt>> read_receipts(eth_rpc& rpc, const std::vector<std::string>& hashes) {
  std::vector<std::pair<std::string, json>> calls;
  calls.reserve(hashes.size());
  for (const auto& hash : hashes) calls.emplace_back("eth_getTransactionReceipt", json::array({hash}));
  std::vector<std::optional<transaction_receipt>> out;
  out.reserve(hashes.size());
  for (const auto& receipt : rpc.batch(calls)) out.push_back(parse_receipt(receipt));
  return out;
}

bool any_known(eth_rpc& rpc, const std::vector<std::string>& hashes) {
  std::vector<std::pair<std::string, json>> calls;
  for (const auto& hash : hashes) calls.emplace_back("eth_getTransactionByHash", json::array({hash}));
  const auto found = rpc.batch(calls);
  return std::any_of(found.begin(), found.end(), [](const json& tx) { return !tx.is_null(); });
}

}  // namespace broadcaster
