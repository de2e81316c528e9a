#include "broadcaster/block_scanner.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "chain/hex.hpp"
#include "common/text.hpp"

namespace broadcaster {
namespace {

using json = nlohmann::json;

constexpr std::uint64_t blocks_per_request = 16;
constexpr std::uint64_t max_blocks_per_advance = 1024;
constexpr std::uint64_t retained_beyond_confirmations = 4096;
// The first advance looks this far below the confirmation window too, so a transaction mined
// between the passes before the scan started is usually found without a per-transaction call.
constexpr std::uint64_t first_lookback = 16;

// JSON-RPC "method not found", or a node that words it differently.
bool method_missing(const rpc_error& e) {
  if (e.code() == -32601) return true;
  const std::string text = common::ascii_lower(e.node_message());
  const bool about_method = text.find("method") != std::string::npos;
  return about_method &&
         (text.find("not found") != std::string::npos || text.find("not supported") != std::string::npos ||
          text.find("does not exist") != std::string::npos || text.find("not available") != std::string::npos);
}

// 0x + lower-case hex of a 32-byte hash field; rpc_unavailable when absent or malformed.
std::string hash_field(const json& object, const char* field, std::string_view method) {
  const auto it = object.find(field);
  if (it == object.end() || !it->is_string()) {
    throw rpc_unavailable(fmt::format("{}: answer without {}", method, field));
  }
  chain::hash256 parsed{};
  try {
    chain::from_hex(it->get<std::string>(), parsed);
  } catch (const std::invalid_argument& e) {
    throw rpc_unavailable(fmt::format("{}: {}: {}", method, field, e.what()));
  }
  return chain::to_hex(parsed);
}

json header_call(std::uint64_t number) { return json::array({to_quantity(number), false}); }

}  // namespace

block_scanner::block_scanner(const chain::address& account, std::uint64_t confirmations)
    : account_(account.to_lower_hex()), confirmations_(std::max<std::uint64_t>(confirmations, 1)) {}

std::optional<transaction_receipt> block_scanner::find(const std::string& tx_hash) const {
  const auto it = receipts_.find(tx_hash);
  if (it == receipts_.end()) return std::nullopt;
  return it->second.receipt;
}

void block_scanner::forget(const std::string& tx_hash) { receipts_.erase(tx_hash); }

void block_scanner::reset() noexcept {
  blocks_.clear();
  receipts_.clear();
}

void block_scanner::drop_receipts(std::uint64_t first, std::uint64_t last) {
  std::erase_if(receipts_,
                [&](const auto& entry) { return entry.second.block >= first && entry.second.block <= last; });
}

void block_scanner::drop_last() {
  const auto last = std::prev(blocks_.end());
  drop_receipts(last->first, last->first);
  blocks_.erase(last);
}

void block_scanner::evict(std::uint64_t head) {
  const std::uint64_t keep = confirmations_ + retained_beyond_confirmations;
  if (head < keep || blocks_.empty() || blocks_.begin()->first >= head - keep) return;
  drop_receipts(0, head - keep - 1);
  blocks_.erase(blocks_.begin(), blocks_.lower_bound(head - keep));
}

void block_scanner::advance(eth_rpc& rpc, std::uint64_t head) {
  if (!supported_) return;
  std::uint64_t taken = 0;
  while (taken < max_blocks_per_advance) {
    const bool have_last = !blocks_.empty();
    const std::uint64_t lookback = confirmations_ + first_lookback;
    const std::uint64_t from =
        have_last ? blocks_.rbegin()->first + 1 : (head + 1 > lookback ? head + 1 - lookback : 0);
    const std::uint64_t to = std::min(head, from + std::min(blocks_per_request, max_blocks_per_advance - taken) - 1);
    std::vector<std::pair<std::string, json>> calls;
    if (have_last) calls.emplace_back("eth_getBlockByNumber", header_call(blocks_.rbegin()->first));
    for (std::uint64_t n = from; n <= to && from <= head; ++n) {
      calls.emplace_back("eth_getBlockByNumber", header_call(n));
      calls.emplace_back("eth_getBlockReceipts", json::array({to_quantity(n)}));
    }
    if (calls.empty()) return;
    std::vector<json> results;
    try {
      results = rpc.batch(calls);
    } catch (const rpc_error& e) {
      if (!method_missing(e)) throw;
      supported_ = false;
      blocks_.clear();
      receipts_.clear();
      spdlog::warn(
          "eth node {} has no eth_getBlockReceipts ({}): the confirmation tracker asks each in-flight "
          "transaction's receipt on every pass instead (one call per transaction)",
          rpc.url(), e.what());
      return;
    }

    std::size_t at = 0;
    if (have_last) {
      const json& header = results[at++];
      const bool same =
          header.is_object() && hash_field(header, "hash", "eth_getBlockByNumber") == blocks_.rbegin()->second;
      if (!same) {
        spdlog::warn("block {} {} is no longer on the chain (reorg): its receipts are checked again",
                     blocks_.rbegin()->first, blocks_.rbegin()->second);
        drop_last();
        continue;  // check the block below, then rescan from there
      }
    }
    for (std::uint64_t n = from; n <= to && from <= head; ++n, at += 2) {
      const json& header = results[at];
      const json& receipts = results[at + 1];
      if (!header.is_object() || !receipts.is_array()) return;  // not there (yet): next advance
      const std::string hash = hash_field(header, "hash", "eth_getBlockByNumber");
      if (!blocks_.empty() && (blocks_.rbegin()->first + 1 != n ||
                               hash_field(header, "parentHash", "eth_getBlockByNumber") != blocks_.rbegin()->second)) {
        return;  // the chain moved between our calls: the next advance checks the last block again
      }
      const auto transactions = header.find("transactions");
      if (transactions == header.end() || !transactions->is_array() || transactions->size() != receipts.size()) return;
      std::vector<std::pair<std::string, transaction_receipt>> ours;
      for (const auto& item : receipts) {
        if (!item.is_object()) throw rpc_unavailable("eth_getBlockReceipts returned " + item.dump());
        if (hash_field(item, "blockHash", "eth_getBlockReceipts") != hash) return;  // another block by now
        const auto sender = item.find("from");
        if (sender == item.end() || !sender->is_string() || common::ascii_lower(sender->get<std::string>()) != account_)
          continue;
        auto receipt = parse_receipt(item);
        if (!receipt) return;
        ours.emplace_back(hash_field(item, "transactionHash", "eth_getBlockReceipts"), std::move(*receipt));
      }
      for (auto& [tx_hash, receipt] : ours)
        receipts_.insert_or_assign(std::move(tx_hash), held_receipt{n, std::move(receipt)});
      blocks_.emplace(n, hash);
      ++taken;
    }
    if (to >= head || from > head) break;
  }
  evict(head);
}

}  // namespace broadcaster
