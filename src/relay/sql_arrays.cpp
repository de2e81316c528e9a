#include "relay/sql_arrays.hpp"

namespace relay {

namespace {

template <typename T>
std::string join_array(std::span<const T> values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

}  // namespace

std::string array_literal(std::span<const std::int16_t> values) { return join_array(values); }
std::string array_literal(std::span<const std::int64_t> values) { return join_array(values); }

std::string array_literal(std::span<const std::string> values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (const char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace relay
