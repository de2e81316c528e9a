#include "relay/leases.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "relay/store.hpp"

namespace relay {

std::size_t lease_target(std::size_t live_relays) noexcept {
  const std::size_t relays = std::max<std::size_t>(1, live_relays);
  return (partition_count + relays - 1) / relays;
}

lease_plan plan_leases(const std::vector<std::int16_t>& owned, std::size_t live_relays, std::size_t start) {
  lease_plan plan;
  const std::size_t target = lease_target(live_relays);
  if (owned.size() > target) {
    // The highest ones: any choice works, a fixed one keeps the plan easy to follow in logs.
    plan.release.assign(owned.end() - static_cast<std::ptrdiff_t>(owned.size() - target), owned.end());
    return plan;
  }
  plan.wanted = target - owned.size();
  if (plan.wanted == 0) return plan;
  plan.candidates.reserve(partition_count - owned.size());
  for (std::size_t i = 0; i < partition_count; ++i) {
    const auto partition = static_cast<std::int16_t>((start + i) % partition_count);
    if (!std::binary_search(owned.begin(), owned.end(), partition)) plan.candidates.push_back(partition);
  }
  return plan;
}

lease_set::lease_set() : random_(std::random_device{}()) {}

bool lease_set::rebalance(store& db, std::size_t live_relays) {
  const auto start = std::uniform_int_distribution<std::size_t>(0, partition_count - 1)(random_);
  const auto plan = plan_leases(owned_, live_relays, start);
  std::vector<std::int16_t> acquired;
  if (!plan.release.empty()) {
    db.unlock_partitions(plan.release);
    owned_.resize(owned_.size() - plan.release.size());  // plan.release is the tail of owned_
  } else if (plan.wanted > 0) {
    acquired = db.try_lock_partitions(plan.candidates, plan.wanted);
    owned_.insert(owned_.end(), acquired.begin(), acquired.end());
    std::sort(owned_.begin(), owned_.end());
  }
  if (plan.release.empty() && acquired.empty()) return false;
  spdlog::info("partition leases: {} of {} owned ({} released, {} acquired; {} live relays, target {})", owned_.size(),
               partition_count, plan.release.size(), acquired.size(), std::max<std::size_t>(1, live_relays),
               lease_target(live_relays));
  return true;
}

void lease_set::release_all(store& db) {
  if (owned_.empty()) return;
  db.unlock_partitions(owned_);
  spdlog::info("partition leases: released all {} while this relay cannot publish", owned_.size());
  owned_.clear();
}

}  // namespace relay
