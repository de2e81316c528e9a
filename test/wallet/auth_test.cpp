// Bearer tokens: the file holds SHA-256 digests (never tokens); a request is accepted when the
// digest of its token is in the file.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "test_support.hpp"
#include "wallet/auth.hpp"

namespace {

// Computed independently: printf %s "s3cret-token" | sha256sum
constexpr const char* s3cret_digest = "a81e611a041b13f078bf8ebe5dab4d4fd63fcc5594661c918bec093a2f416a7e";
// printf %s "other-token" | sha256sum
constexpr const char* other_digest = "6c67163bbed989f232b31acc4f04df54b31285bfc01bd022c735b71e041a4754";

common::env_lookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("a token is accepted when its digest is listed", "[wallet][auth]") {
  const auto set = wallet::token_set::parse(std::string("# api tokens\n\n") + s3cret_digest + "  -\n" +
                                                other_digest + "   # the batch job\n",
                                            "test");
  CHECK(set.size() == 2);
  CHECK(set.accepts("Bearer s3cret-token"));
  CHECK(set.accepts("bearer other-token"));  // the scheme is case-insensitive, the token is not
  CHECK_FALSE(set.accepts("Bearer S3CRET-TOKEN"));
  CHECK_FALSE(set.accepts("Bearer s3cret-token-2"));
  CHECK_FALSE(set.accepts(std::string("Bearer ") + s3cret_digest));  // the digest itself is not a token
  CHECK_FALSE(set.accepts("Basic czNjcmV0LXRva2Vu"));
  CHECK_FALSE(set.accepts("Bearer "));
  CHECK_FALSE(set.accepts("s3cret-token"));
  CHECK_FALSE(set.accepts(""));
}

TEST_CASE("upper-case digests are read as well", "[wallet][auth]") {
  std::string upper = s3cret_digest;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(wallet::token_set::parse(upper, "test").accepts("Bearer s3cret-token"));
}

TEST_CASE("a tokens file with a token instead of a digest, or no digest at all, is a config error", "[wallet][auth]") {
  CHECK_THROWS_AS(wallet::token_set::parse("s3cret-token\n", "test"), common::config_error);
  CHECK_THROWS_AS(wallet::token_set::parse(std::string(s3cret_digest) + "0\n", "test"), common::config_error);
  CHECK_THROWS_AS(wallet::token_set::parse("# nothing yet\n\n", "test"), common::config_error);
  try {
    (void)wallet::token_set::parse(std::string(s3cret_digest) + "\nnot-a-digest\n", "tokens.txt");
    FAIL("accepted a bad line");
  } catch (const common::config_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("line 2"));
  }
}

TEST_CASE("tokens come from auth.tokens_file, else the api-tokens credential, else nowhere", "[wallet][auth]") {
  const auto dir = std::filesystem::temp_directory_path() / test_support::unique_name("wallet_auth");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokens") << s3cret_digest << "\n";
  std::ofstream(dir / "api-tokens") << other_digest << "\n";

  CHECK(wallet::load_tokens(std::nullopt, env_of({})) == nullptr);
  CHECK(wallet::load_tokens(std::nullopt, env_of({{"CREDENTIALS_DIRECTORY", "/nonexistent"}})) == nullptr);
  auto from_file = wallet::load_tokens(dir / "tokens", env_of({{"CREDENTIALS_DIRECTORY", dir.string()}}));
  REQUIRE(from_file);
  CHECK(from_file->accepts("Bearer s3cret-token"));
  CHECK_FALSE(from_file->accepts("Bearer other-token"));
  auto from_credential = wallet::load_tokens(std::nullopt, env_of({{"CREDENTIALS_DIRECTORY", dir.string()}}));
  REQUIRE(from_credential);
  CHECK(from_credential->accepts("Bearer other-token"));
  CHECK_THROWS_AS(wallet::load_tokens(dir / "missing", env_of({})), common::config_error);
  std::filesystem::remove_all(dir);
}
