#pragma once
// The withdrawal state machine as the database stores it (withdrawals.status), with the one
// mapping between the enum and its SQL text:
//   pending → signed → broadcast → confirmed, and → failed (refunded in the same transaction).
// A signed withdrawal may never have left the process; broadcast means a node accepted one of its
// versions at least once. Pure functions; thread-safe.

#include <string_view>

namespace broadcaster {

enum class withdrawal_status { pending, signed_, broadcast, confirmed, failed };

/// "pending", "signed", "broadcast", "confirmed", "failed".
std::string_view to_sql(withdrawal_status status) noexcept;

/// The inverse of to_sql(); throws std::invalid_argument naming an unknown text.
withdrawal_status parse_withdrawal_status(std::string_view text);

/// confirmed or failed: nothing more happens to it.
inline bool is_final(withdrawal_status status) noexcept {
  return status == withdrawal_status::confirmed || status == withdrawal_status::failed;
}

}  // namespace broadcaster
