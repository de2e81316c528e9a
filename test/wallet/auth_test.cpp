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
  const auto set = wallet::token_set::parse(
      std::string("# api tokens\n\n") + s3cret_digest + "  -\n" + other_digest + "   # the batch job\n", "test");
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

TEST_CASE("lines name the token and its scopes, a digest alone has every scope", "[wallet][auth]") {
  const auto set = wallet::token_set::parse(std::string(s3cret_digest) + " risk-engine read\n" + other_digest +
                                                "\tgateway   withdraw,read # the API gateway\n",
                                            "test");
  const auto reader = set.authenticate("Bearer s3cret-token");
  REQUIRE(reader);
  CHECK(reader->name == "risk-engine");
  CHECK(reader->allows(wallet::scope::read));
  CHECK_FALSE(reader->allows(wallet::scope::withdraw));
  CHECK_FALSE(reader->allows(wallet::scope::deposit));
  CHECK(reader->created_by() == "risk-engine");
  const auto gateway = set.authenticate("Bearer other-token");
  REQUIRE(gateway);
  CHECK(gateway->name == "gateway");
  CHECK(gateway->allows(wallet::scope::withdraw));
  CHECK(gateway->allows(wallet::scope::read));
  CHECK_FALSE(gateway->allows(wallet::scope::deposit));
  CHECK_FALSE(set.authenticate("Bearer nobody"));

  // Today's files keep their meaning: every scope, and a name that identifies the line, not the token.
  const auto plain =
      wallet::token_set::parse(std::string(s3cret_digest) + "  -\n", "test").authenticate("Bearer s3cret-token");
  REQUIRE(plain);
  CHECK(plain->name == "token-a81e611a");
  CHECK(plain->scopes == wallet::principal::all_scopes);
}

TEST_CASE("users= binds a token to accounts, without it a token acts for every account", "[wallet][auth]") {
  const auto set = wallet::token_set::parse(
      std::string(s3cret_digest) + " shop-42 withdraw,read users=42,43\n" + other_digest + " gateway withdraw,read\n",
      "test");
  const auto shop = set.authenticate("Bearer s3cret-token");
  REQUIRE(shop);
  CHECK(shop->users == std::vector<std::int64_t>{42, 43});
  CHECK(shop->may_act_for(42));
  CHECK(shop->may_act_for(43));
  CHECK_FALSE(shop->may_act_for(44));
  const auto gateway = set.authenticate("Bearer other-token");
  REQUIRE(gateway);
  CHECK(gateway->users.empty());
  CHECK(gateway->may_act_for(44));
}

TEST_CASE("bad names and scopes are config errors naming the line", "[wallet][auth]") {
  auto error_of = [](const std::string& line) -> std::string {
    try {
      (void)wallet::token_set::parse(std::string(s3cret_digest) + "\n" + line + "\n", "tokens.txt");
    } catch (const common::config_error& e) {
      return e.what();
    }
    return "(accepted)";
  };
  CHECK_THAT(error_of(std::string(other_digest) + " gateway"), Catch::Contains("line 2"));  // a name needs scopes
  CHECK_THAT(error_of(std::string(other_digest) + " gateway pay"), Catch::Contains("withdraw, read, deposit"));
  CHECK_THAT(error_of(std::string(other_digest) + " gateway read,"), Catch::Contains("scopes"));
  CHECK_THAT(error_of(std::string(other_digest) + " gate/way read"), Catch::Contains("token name"));
  CHECK_THAT(error_of(std::string(other_digest) + " gateway read extra"), Catch::Contains("line 2"));
  // users= takes positive integer user_ids only.
  for (const auto* bad : {"users=", "users=0", "users=-4", "users=4,", "users=4x", "users=a", "user=4"}) {
    CAPTURE(bad);
    CHECK_THAT(error_of(std::string(other_digest) + " gateway read " + bad), Catch::Contains("users=<user_id>"));
  }
  CHECK_THAT(error_of(std::string(other_digest) + " gateway read users=4 extra"), Catch::Contains("line 2"));
}

TEST_CASE("tokens come from auth.tokens_file, else the api-tokens credential, else auth.disabled", "[wallet][auth]") {
  const auto dir = std::filesystem::temp_directory_path() / test_support::unique_name("wallet_auth");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokens") << s3cret_digest << "\n";
  std::ofstream(dir / "api-tokens") << other_digest << "\n";

  CHECK(wallet::load_tokens(std::nullopt, true, env_of({})) == nullptr);
  CHECK(wallet::load_tokens(std::nullopt, true, env_of({{"CREDENTIALS_DIRECTORY", "/nonexistent"}})) == nullptr);
  auto from_file = wallet::load_tokens(dir / "tokens", false, env_of({{"CREDENTIALS_DIRECTORY", dir.string()}}));
  REQUIRE(from_file);
  CHECK(from_file->accepts("Bearer s3cret-token"));
  CHECK_FALSE(from_file->accepts("Bearer other-token"));
  auto from_credential = wallet::load_tokens(std::nullopt, false, env_of({{"CREDENTIALS_DIRECTORY", dir.string()}}));
  REQUIRE(from_credential);
  CHECK(from_credential->accepts("Bearer other-token"));
  // Configured tokens apply even with auth.disabled: it never turns a configured check off.
  CHECK(wallet::load_tokens(dir / "tokens", true, env_of({})));
  CHECK_THROWS_AS(wallet::load_tokens(dir / "missing", false, env_of({})), common::config_error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("without tokens and without auth.disabled the service refuses to start", "[wallet][auth]") {
  // The fail-open of review finding #9: a missing tokens file used to mean "no authentication".
  try {
    (void)wallet::load_tokens(std::nullopt, false, env_of({{"CREDENTIALS_DIRECTORY", "/nonexistent"}}));
    FAIL("started without tokens");
  } catch (const common::config_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("auth.disabled = true"));
    CHECK_THAT(e.what(), Catch::Contains("auth.tokens_file"));
  }
}
