#pragma once
// Partition leases: how live relays of one schema share the 256 key-hash partitions.
//
// Every relay aims at its fair share, ceil(256 / live relays): it releases partitions above it
// and tries to lock missing ones, starting from a random partition so that relays joining at the
// same moment do not all contend for the same ones. A partition changes hands only between
// batches (the store's session lock), so a key is never published by two relays at once; a new
// owner starts from the key's oldest row still in the table.

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace relay {

class store;

inline constexpr std::size_t partition_count = 256;

/// ceil(256 / live_relays); live_relays 0 counts as 1.
std::size_t lease_target(std::size_t live_relays) noexcept;

struct lease_plan {
  std::vector<std::int16_t> release;     // owned partitions above the target
  std::vector<std::int16_t> candidates;  // partitions not owned, in the order to try them
  std::size_t wanted = 0;                // how many candidates to lock at most
};

/// The step from `owned` (sorted, unique) toward the target for `live_relays`; candidates
/// start at partition `start` (mod 256) and wrap around. Pure: no database.
lease_plan plan_leases(const std::vector<std::int16_t>& owned, std::size_t live_relays, std::size_t start);

/// The partitions this relay's session holds. Not thread-safe.
class lease_set {
 public:
  lease_set();

  /// Sorted.
  const std::vector<std::int16_t>& owned() const noexcept { return owned_; }
  /// Releases the surplus and tries to lock what is missing through `db`; true when the owned
  /// set changed. Call between batches only (never with a claim transaction open).
  bool rebalance(store& db, std::size_t live_relays);
  /// Unlocks every partition through `db` (between batches only).
  void release_all(store& db);
  /// Forgets every lease: after a reconnect the old session's locks are gone.
  void reset() noexcept { owned_.clear(); }

 private:
  std::vector<std::int16_t> owned_;
  std::mt19937 random_;
};

}  // namespace relay
