#include "wallet/auth.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include <cryptopp/misc.h>
#include <cryptopp/sha.h>
#include <fmt/format.h>

namespace wallet {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  while (!(line = trim(line)).empty()) {
    const auto end = std::find_if(line.begin(), line.end(), is_blank);
    const auto length = static_cast<std::size_t>(end - line.begin());
    out.push_back(line.substr(0, length));
    line.remove_prefix(length);
  }
  return out;
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' || c == '-';
  });
}

std::optional<unsigned> parse_scopes(std::string_view text) {
  unsigned scopes = 0;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto word = text.substr(0, comma);
    if (word == "withdraw") {
      scopes |= static_cast<unsigned>(scope::withdraw);
    } else if (word == "read") {
      scopes |= static_cast<unsigned>(scope::read);
    } else if (word == "deposit") {
      scopes |= static_cast<unsigned>(scope::deposit);
    } else {
      return std::nullopt;
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    if (text.empty()) return std::nullopt;  // "read," is a typo, not "read"
  }
  return scopes == 0 ? std::nullopt : std::optional(scopes);
}

// "users=42,43": the accounts a token is bound to; nullopt unless every id is a positive integer.
std::optional<std::vector<std::int64_t>> parse_users(std::string_view text) {
  static constexpr std::string_view prefix = "users=";
  if (text.substr(0, prefix.size()) != prefix) return std::nullopt;
  text.remove_prefix(prefix.size());
  std::vector<std::int64_t> users;
  while (true) {
    const auto comma = text.find(',');
    const auto word = text.substr(0, comma);
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
    if (word.empty() || ec != std::errc() || end != word.data() + word.size() || id <= 0) return std::nullopt;
    users.push_back(id);
    if (comma == std::string_view::npos) return users;
    text.remove_prefix(comma + 1);
  }
}

}  // namespace

std::string_view scope_name(scope s) noexcept {
  switch (s) {
    case scope::withdraw:
      return "withdraw";
    case scope::read:
      return "read";
    case scope::deposit:
      return "deposit";
  }
  return "?";
}

token_set token_set::parse(std::string_view text, const std::string& origin) {
  token_set set;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const auto fields = words(line.substr(0, line.find('#')));
    if (fields.empty()) continue;
    auto refuse = [&](const std::string& why) {
      return common::config_error(origin, fmt::format("{} line {}: {}", origin, line_number, why));
    };

    entry e;
    const auto hex = fields[0];
    bool ok = hex.size() == 64;
    for (std::size_t i = 0; ok && i < e.d.size(); ++i) {
      const int hi = hex_value(hex[2 * i]);
      const int lo = hex_value(hex[2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      e.d[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    if (!ok) {
      throw refuse(
          "expected the 64-hex-digit SHA-256 of a token (printf %s \"$TOKEN\" | sha256sum), not the token "
          "itself");
    }
    // sha256sum prints "<digest>  -": accept its output pasted as it is.
    if (fields.size() == 1 || (fields.size() == 2 && fields[1] == "-")) {
      e.who.name = fmt::format("token-{}", std::string(hex.substr(0, 8)));
      for (auto& c : e.who.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (fields.size() == 3 || fields.size() == 4) {
      if (!valid_name(fields[1])) {
        throw refuse(fmt::format("token name \"{}\" must be 1..64 of A-Z a-z 0-9 . _ @ -", fields[1]));
      }
      const auto scopes = parse_scopes(fields[2]);
      if (!scopes) {
        throw refuse(
            fmt::format("scopes \"{}\" must be a comma-separated list of withdraw, read, deposit "
                        "(e.g. withdraw,read)",
                        fields[2]));
      }
      e.who.name = std::string(fields[1]);
      e.who.scopes = *scopes;
      if (fields.size() == 4) {
        auto users = parse_users(fields[3]);
        if (!users) {
          throw refuse(
              fmt::format("\"{}\" must be users=<user_id>,... with positive integers (e.g. users=42,43)", fields[3]));
        }
        e.who.users = std::move(*users);
      }
    } else {
      throw refuse(
          "expected \"<sha256-hex> <name> <scopes> [users=<id>,...]\" (e.g. \"<digest> gateway withdraw,read\") "
          "or the digest alone (every scope)");
    }
    set.entries_.push_back(std::move(e));
  }
  if (set.entries_.empty()) {
    throw common::config_error(origin, fmt::format("{} holds no token digest: every API request would be refused; "
                                                   "add one line per token (printf %s \"$TOKEN\" | sha256sum)",
                                                   origin));
  }
  return set;
}

std::optional<principal> token_set::authenticate(std::string_view authorization) const {
  static constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    // The scheme name is case-insensitive (RFC 9110 section 11.1).
    const char a = static_cast<char>(std::tolower(static_cast<unsigned char>(authorization[i])));
    const char b = static_cast<char>(std::tolower(static_cast<unsigned char>(scheme[i])));
    if (a != b) return std::nullopt;
  }
  const auto token = trim(authorization.substr(scheme.size()));
  if (token.empty()) return std::nullopt;
  digest presented{};
  CryptoPP::SHA256().CalculateDigest(presented.data(), reinterpret_cast<const CryptoPP::byte*>(token.data()),
                                     token.size());
  const entry* match = nullptr;
  // Every digest is compared, without an early exit, so the time taken does not tell which matched.
  for (const auto& e : entries_) {
    if (CryptoPP::VerifyBufsEqual(e.d.data(), presented.data(), e.d.size()) && match == nullptr) match = &e;
  }
  if (match == nullptr) return std::nullopt;
  return match->who;
}

std::shared_ptr<const token_set> load_tokens(const std::optional<std::filesystem::path>& tokens_file,
                                             bool auth_disabled, const common::env_lookup& env) {
  std::filesystem::path path;
  std::string origin;
  if (tokens_file) {
    path = *tokens_file;
    origin = "auth.tokens_file";
  } else if (auto dir = env("CREDENTIALS_DIRECTORY");
             dir && std::filesystem::exists(std::filesystem::path(*dir) / "api-tokens")) {
    path = std::filesystem::path(*dir) / "api-tokens";
    origin = "credential api-tokens";
  } else if (auth_disabled) {
    return nullptr;
  } else {
    throw common::config_error(
        "auth.tokens_file",
        "no API tokens configured, and the API does not run open by accident: set auth.tokens_file "
        "(WALLET_AUTH_TOKENS_FILE) to a file of token digests, or provide the systemd credential api-tokens, or set "
        "auth.disabled = true (WALLET_AUTH_DISABLED=true) for local development");
  }
  std::ifstream in(path);
  if (!in) {
    throw common::config_error(
        origin, fmt::format("{}: cannot read {}: check the path and its permissions", origin, path.string()));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return std::make_shared<const token_set>(token_set::parse(buffer.str(), origin + " (" + path.string() + ")"));
}

}  // namespace wallet
