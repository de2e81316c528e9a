#pragma once
// PostgreSQL array literals for statement parameters ($1::bigint[] and the like), shared by the
// relay's store and the operator commands (relay_admin). Pure functions.

#include <cstdint>
#include <span>
#include <string>

namespace relay {

/// "{1,2,3}": a PostgreSQL array literal of `values`.
std::string array_literal(std::span<const std::int16_t> values);
std::string array_literal(std::span<const std::int64_t> values);
/// {"a","b\"c"}: a PostgreSQL text array literal (quotes and backslashes escaped).
std::string array_literal(std::span<const std::string> values);

}  // namespace relay
