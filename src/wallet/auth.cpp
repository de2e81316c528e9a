#include "wallet/auth.hpp"

#include <cctype>
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

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

token_set token_set::parse(std::string_view text, const std::string& origin) {
  token_set set;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto end = text.find('\n');
    auto line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    // sha256sum prints "<digest>  -": accept its output pasted as it is.
    line = trim(line.substr(0, line.find_first_of(" \t")));
    digest d{};
    bool ok = line.size() == 64;
    for (std::size_t i = 0; ok && i < d.size(); ++i) {
      const int hi = hex_value(line[2 * i]);
      const int lo = hex_value(line[2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      d[i] = static_cast<std::uint8_t>((hi << 4) | lo);
    }
    if (!ok) {
      throw common::config_error(origin, fmt::format("{} line {}: expected the 64-hex-digit SHA-256 of a token "
                                                     "(printf %s \"$TOKEN\" | sha256sum), not the token itself",
                                                     origin, line_number));
    }
    set.digests_.push_back(d);
  }
  if (set.digests_.empty()) {
    throw common::config_error(origin, fmt::format("{} holds no token digest: every API request would be refused; "
                                                   "add one line per token (printf %s \"$TOKEN\" | sha256sum)",
                                                   origin));
  }
  return set;
}

bool token_set::accepts(std::string_view authorization) const {
  static constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    // The scheme name is case-insensitive (RFC 9110 section 11.1).
    const char a = static_cast<char>(std::tolower(static_cast<unsigned char>(authorization[i])));
    const char b = static_cast<char>(std::tolower(static_cast<unsigned char>(scheme[i])));
    if (a != b) return false;
  }
  const auto token = trim(authorization.substr(scheme.size()));
  if (token.empty()) return false;
  digest presented{};
  CryptoPP::SHA256().CalculateDigest(presented.data(), reinterpret_cast<const CryptoPP::byte*>(token.data()),
                                     token.size());
  bool match = false;
  // Every digest is compared, without an early exit, so the time taken does not tell which matched.
  for (const auto& d : digests_) match |= CryptoPP::VerifyBufsEqual(d.data(), presented.data(), d.size());
  return match;
}

std::shared_ptr<const token_set> load_tokens(const std::optional<std::filesystem::path>& tokens_file,
                                             const common::env_lookup& env) {
  std::filesystem::path path;
  std::string origin;
  if (tokens_file) {
    path = *tokens_file;
    origin = "auth.tokens_file";
  } else if (auto dir = env("CREDENTIALS_DIRECTORY")) {
    path = std::filesystem::path(*dir) / "api-tokens";
    if (!std::filesystem::exists(path)) return nullptr;
    origin = "credential api-tokens";
  } else {
    return nullptr;
  }
  std::ifstream in(path);
  if (!in) {
    throw common::config_error(origin, fmt::format("{}: cannot read {}: check the path and its permissions", origin,
                                                   path.string()));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return std::make_shared<const token_set>(token_set::parse(buffer.str(), origin + " (" + path.string() + ")"));
}

}  // namespace wallet
