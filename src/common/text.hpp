#pragma once
// Small text helpers shared by the components.

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace common {

/// `text` with ASCII letters lower-cased (HTTP header names, error messages to match); other
/// bytes unchanged, whatever the locale.
inline std::string ascii_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace common
