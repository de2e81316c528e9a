#pragma once
// Bearer-token authentication of the API routes.
//
// The tokens file holds one lower- or upper-case hex SHA-256 digest per line (blank lines and
// "#" comments ignored), never a token itself:  printf %s "$TOKEN" | sha256sum
// A presented token is hashed and compared with every digest in constant time, so neither the
// file nor the timing tells a token.
//
// Thread-safety: a token_set is immutable after construction; share it via shared_ptr.

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "common/config.hpp"

namespace wallet {

class token_set {
 public:
  using digest = std::array<std::uint8_t, 32>;

  /// Parses the file's text. `origin` names it in errors. Throws common::config_error naming the
  /// line when a line is not a 64-digit hex digest, and when no digest is present at all (which
  /// would refuse every request).
  static token_set parse(std::string_view text, const std::string& origin);

  /// True when `authorization` is "Bearer <token>" with a token whose digest is in the set.
  bool accepts(std::string_view authorization) const;

  std::size_t size() const noexcept { return digests_.size(); }

 private:
  std::vector<digest> digests_;
};

/// The token set the configuration asks for: auth.tokens_file when set, else the systemd
/// credential "api-tokens" in $CREDENTIALS_DIRECTORY when present, else nullptr (no
/// authentication). Throws common::config_error when the file cannot be read or parsed.
std::shared_ptr<const token_set> load_tokens(const std::optional<std::filesystem::path>& tokens_file,
                                             const common::env_lookup& env = common::process_environment());

}  // namespace wallet
