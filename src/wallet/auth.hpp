#pragma once
// Bearer-token authentication and scopes of the API (HTTP and gRPC alike).
//
// The tokens file holds one line per token, never a token itself:
//
//   <sha256-hex> [<name> <scopes> [users=<id>,...]]   # comments and blank lines are ignored
//
//   printf %s "$TOKEN" | sha256sum        # the digest
//   9f86d0…0f00a08  risk-engine  read
//   2c26b4…b9d6e28  gateway      withdraw,read
//   fcde2b…fbf8fb9  shop-42      withdraw,read  users=42,43
//
// <name> (1..64 of A-Z a-z 0-9 . _ @ -) is who the token stands for: it is stored with each
// withdrawal and deposit (created_by), logged, and scopes Idempotency-Keys (two clients may use
// the same key). <scopes> is a comma-separated subset of withdraw, read, deposit. `users=` binds
// the token to those accounts (positive user_ids): it acts for no other user (see
// principal::may_act_for); without it the token acts for every user. A line with only
// the digest (sha256sum's "<digest>  -" too) grants every scope, named "token-<first 8 hex digits>".
// A presented token is hashed and compared with every digest in constant time, so neither the
// file nor the timing tells a token.
//
// Thread-safety: a token_set is immutable after construction; share it via shared_ptr.

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"

namespace wallet {

enum class scope : unsigned { withdraw = 1U, read = 2U, deposit = 4U };

/// "withdraw", "read", "deposit".
std::string_view scope_name(scope s) noexcept;

/// Who a request acts for: the token's name and what it may do.
struct principal {
  static constexpr unsigned all_scopes = 7U;

  std::string name;
  unsigned scopes = all_scopes;
  /// True for the caller of a service running with auth.disabled = true: no token, every scope,
  /// nothing recorded in created_by.
  bool anonymous = false;

  /// The accounts the token is bound to (users=); empty: every account.
  std::vector<std::int64_t> users;

  bool allows(scope s) const noexcept { return (scopes & static_cast<unsigned>(s)) != 0; }
  /// Whether the caller may act for (read, debit, credit) the account of `user_id`.
  bool may_act_for(std::int64_t user_id) const noexcept {
    return users.empty() || std::find(users.begin(), users.end(), user_id) != users.end();
  }
  /// The created_by value: the name, nullopt when anonymous.
  std::optional<std::string> created_by() const { return anonymous ? std::nullopt : std::optional(name); }
};

class token_set {
 public:
  using digest = std::array<std::uint8_t, 32>;

  /// Parses the file's text. `origin` names it in errors. Throws common::config_error naming the
  /// line when a line is not "<64 hex digits> [<name> <scopes> [users=<id>,...]]" (a token instead of
  /// its digest, a bad name, an unknown scope, a name without scopes, a user_id that is not a
  /// positive integer), and when no digest is present at all
  /// (which would refuse every request).
  static token_set parse(std::string_view text, const std::string& origin);

  /// The principal of the token when `authorization` is "Bearer <token>" (scheme case-insensitive)
  /// with a listed token; nullopt otherwise.
  std::optional<principal> authenticate(std::string_view authorization) const;
  bool accepts(std::string_view authorization) const { return authenticate(authorization).has_value(); }

  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct entry {
    digest d{};
    principal who;
  };
  std::vector<entry> entries_;
};

/// The token set the configuration asks for: auth.tokens_file when set, else the systemd
/// credential "api-tokens" in $CREDENTIALS_DIRECTORY when present. With neither, nullptr (no
/// authentication) when `auth_disabled`, and a common::config_error naming auth.tokens_file and
/// auth.disabled otherwise: the API never runs open by accident. Tokens, when configured, are
/// used even with `auth_disabled`. Throws common::config_error when the file cannot be read or
/// parsed.
std::shared_ptr<const token_set> load_tokens(const std::optional<std::filesystem::path>& tokens_file,
                                             bool auth_disabled,
                                             const common::env_lookup& env = common::process_environment());

}  // namespace wallet
