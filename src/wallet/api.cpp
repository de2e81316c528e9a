#include "wallet/api.hpp"

#include <chrono>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/metrics.hpp"

namespace wallet {

namespace {

using common::http::error_response;
using common::http::response;
using json = nlohmann::ordered_json;

response json_response(unsigned status, const json& body) { return response{status, "application/json", body.dump(), {}}; }

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> segments;
  if (path.empty() || path.front() != '/') return segments;
  path.remove_prefix(1);
  for (;;) {
    const auto slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

response method_not_allowed(const std::string& method, std::string_view path, std::string_view allowed) {
  auto res = error_response(405, "method_not_allowed",
                            fmt::format("{} is not allowed on {}; use {}", method, path, allowed));
  res.headers.emplace_back("Allow", std::string(allowed));
  return res;
}

response unavailable(const database_unavailable& e, bool withdrawal) {
  response res;
  if (e.in_doubt()) {
    res = error_response(503, "database_unavailable",
                         "the database connection broke while committing, so the outcome is unknown: retry with the "
                         "same Idempotency-Key to get the withdrawal's result (without a key, check the account "
                         "before retrying)");
  } else {
    res = error_response(503, "database_unavailable",
                         fmt::format("{}; nothing was written{}", e.what(),
                                     withdrawal ? ": retry later, with the same Idempotency-Key" : ": retry later"));
  }
  res.headers.emplace_back("Retry-After", "1");
  return res;
}

json optional_string(const std::optional<std::string>& value) { return value ? json(*value) : json(nullptr); }

}  // namespace

api::api(const service_config& config, store& store, common::connection_pool& pool, health_probe& health,
         std::shared_ptr<const token_set> tokens, std::shared_ptr<prometheus::Registry> registry)
    : config_(config),
      store_(store),
      pool_(pool),
      health_(health),
      tokens_(std::move(tokens)),
      registry_(std::move(registry)),
      requests_(prometheus::BuildCounter()
                    .Name("wallet_http_requests_total")
                    .Help("HTTP requests answered, by route and status code")
                    .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("wallet_http_request_duration_seconds")
                     .Help("Time from a complete request to its answer, by route")
                     .Register(*registry_)),
      pool_in_use_(prometheus::BuildGauge()
                       .Name("wallet_db_pool_in_use")
                       .Help("Database connections lent out right now")
                       .Register(*registry_)
                       .Add({})),
      pool_size_(prometheus::BuildGauge()
                     .Name("wallet_db_pool_size")
                     .Help("Size of the database connection pool")
                     .Register(*registry_)
                     .Add({})),
      withdrawals_created_(prometheus::BuildCounter()
                               .Name("wallet_withdrawals_created_total")
                               .Help("Withdrawals committed with their outbox event (replays not counted)")
                               .Register(*registry_)
                               .Add({})) {
  pool_size_.Set(static_cast<double>(pool_.size()));
}

void api::set_tokens(std::shared_ptr<const token_set> tokens) {
  std::lock_guard lock(tokens_mutex_);
  tokens_ = std::move(tokens);
}

std::shared_ptr<const token_set> api::tokens() const {
  std::lock_guard lock(tokens_mutex_);
  return tokens_;
}

response api::handle(const common::http::request& request) {
  const auto start = std::chrono::steady_clock::now();
  std::string route_name = "unmatched";
  response res;
  try {
    res = route(request, route_name);
  } catch (const database_unavailable& e) {
    spdlog::warn("{} {}: {}", request.method, request.path(), e.what());
    res = unavailable(e, route_name == "create_withdrawal");
  } catch (const std::exception& e) {
    spdlog::error("{} {} failed: {}", request.method, request.path(), e.what());
    res = error_response(500, "internal", "internal error; see the service log");
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  requests_.Add({{"route", route_name}, {"status", std::to_string(res.status)}}).Increment();
  durations_.Add({{"route", route_name}}, common::latency_buckets()).Observe(elapsed.count());
  return res;
}

response api::route(const common::http::request& request, std::string& route_name) {
  const std::string path = request.path();
  if (path == "/healthz" || path == "/metrics") {
    route_name = path.substr(1);
    pool_in_use_.Set(static_cast<double>(pool_.in_use()));
    if (auto res = common::handle_operations(request, *registry_, [this] { return health_.problem(); })) return *res;
    return method_not_allowed(request.method, path, "GET");
  }

  const auto segments = split_path(path);
  const bool v1 = segments.size() >= 2 && segments[0] == "v1";
  std::string_view allowed;
  if (v1 && segments[1] == "withdrawals" && segments.size() == 2) {
    route_name = "create_withdrawal";
    allowed = "POST";
  } else if (v1 && segments[1] == "withdrawals" && segments.size() == 3) {
    route_name = "get_withdrawal";
    allowed = "GET";
  } else if (v1 && segments[1] == "accounts" && segments.size() == 3) {
    route_name = "get_account";
    allowed = "GET";
  } else if (v1 && segments[1] == "accounts" && segments.size() == 4 && segments[3] == "deposits") {
    route_name = "deposit";
    allowed = "POST";
  }

  // Before anything else, so that without a token nothing, not even which routes exist, is told.
  if (auto accepted = tokens(); accepted && !accepted->accepts(request.header("authorization"))) {
    auto res = error_response(401, "unauthorized", "send Authorization: Bearer <token> with a token this service "
                                                   "accepts");
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    return res;
  }
  if (allowed.empty()) return error_response(404, "not_found", fmt::format("no route {} {}", request.method, path));
  if (request.method != allowed) return method_not_allowed(request.method, path, allowed);
  if (route_name == "deposit" && !config_.enable_deposits) {
    return error_response(404, "not_found", "deposits are disabled on this service (api.enable_deposits = false)");
  }

  if (route_name == "create_withdrawal") return create_withdrawal(request);
  const auto id = parse_positive_id(segments[2]);
  if (!id) {
    return error_response(404, "not_found", fmt::format("no such {}: \"{}\" is not a positive integer id",
                                                        segments[1] == "withdrawals" ? "withdrawal" : "account",
                                                        segments[2]));
  }
  if (route_name == "get_withdrawal") return get_withdrawal(*id);
  if (route_name == "get_account") return get_account(*id);
  return deposit(request, *id);
}

response api::create_withdrawal(const common::http::request& request) {
  if (!is_json_content_type(request.header("content-type"))) {
    return error_response(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json");
  }
  std::optional<std::string> idempotency_key;
  if (auto it = request.headers.find("idempotency-key"); it != request.headers.end()) {
    if (auto error = check_idempotency_key(it->second)) return error_response(error->status, error->code, error->message);
    idempotency_key = it->second;
  }
  auto parsed_request = parse_withdrawal_request(request.body, config_.chains);
  if (auto* error = std::get_if<api_error>(&parsed_request)) {
    return error_response(error->status, error->code, error->message);
  }
  const auto& withdrawal = std::get<withdrawal_request>(parsed_request);
  const auto result = store_.create_withdrawal(withdrawal, idempotency_key, valid_traceparent(request.header("traceparent")));

  switch (result.outcome) {
    case create_outcome::created:
    case create_outcome::replayed: {
      auto res = json_response(201, json{{"withdrawal_id", result.withdrawal_id}, {"status", "pending"}});
      res.headers.emplace_back("Location", fmt::format("/v1/withdrawals/{}", result.withdrawal_id));
      if (result.outcome == create_outcome::replayed) {
        res.headers.emplace_back("Idempotent-Replayed", "true");
        spdlog::debug("withdrawal {} replayed for Idempotency-Key {}", result.withdrawal_id, *idempotency_key);
      } else {
        withdrawals_created_.Increment();
        spdlog::debug("withdrawal {} created: user {} amount {} {}", result.withdrawal_id, withdrawal.user_id,
                      withdrawal.amount, withdrawal.chain);
      }
      return res;
    }
    case create_outcome::unknown_user:
      return error_response(404, "unknown_user", fmt::format("user_id {} has no account; nothing was written",
                                                             withdrawal.user_id));
    case create_outcome::insufficient_balance:
      return error_response(409, "insufficient_balance",
                            fmt::format("the balance of user_id {} is below {}; nothing was debited",
                                        withdrawal.user_id, withdrawal.amount));
    case create_outcome::key_reused:
      return error_response(409, "idempotency_key_reused",
                            fmt::format("this Idempotency-Key was already used for a different withdrawal{}: send a "
                                        "new key for a new withdrawal, or the original body to get its answer",
                                        result.withdrawal_id != 0 ? fmt::format(" ({})", result.withdrawal_id) : ""));
  }
  return error_response(500, "internal", "internal error; see the service log");
}

response api::get_withdrawal(std::int64_t id) {
  const auto record = store_.find_withdrawal(id);
  if (!record) return error_response(404, "not_found", fmt::format("no withdrawal with id {}", id));
  return json_response(200, json{{"withdrawal_id", record->id},
                                 {"user_id", record->user_id},
                                 {"status", record->status},
                                 {"amount", record->amount},
                                 {"to_address", record->to_address},
                                 {"chain", record->chain},
                                 {"tx_hash", optional_string(record->tx_hash)},
                                 {"failure_reason", optional_string(record->failure_reason)},
                                 {"created_at", record->created_at},
                                 {"updated_at", record->updated_at},
                                 {"signed_at", optional_string(record->signed_at)},
                                 {"broadcast_at", optional_string(record->broadcast_at)},
                                 {"confirmed_at", optional_string(record->confirmed_at)},
                                 {"failed_at", optional_string(record->failed_at)}});
}

response api::deposit(const common::http::request& request, std::int64_t user_id) {
  if (!is_json_content_type(request.header("content-type"))) {
    return error_response(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json");
  }
  auto amount = parse_deposit_request(request.body);
  if (auto* error = std::get_if<api_error>(&amount)) return error_response(error->status, error->code, error->message);
  const auto result = store_.deposit(user_id, std::get<std::string>(amount));
  if (!result.balance) {
    return error_response(400, "invalid_amount", "amount would take the balance beyond the largest value the "
                                                 "wallet stores (10^60); nothing was credited");
  }
  return json_response(200, json{{"user_id", user_id}, {"balance", *result.balance}});
}

response api::get_account(std::int64_t user_id) {
  const auto record = store_.find_account(user_id);
  if (!record) return error_response(404, "unknown_user", fmt::format("user_id {} has no account", user_id));
  return json_response(200, json{{"user_id", record->user_id},
                                 {"balance", record->balance},
                                 {"created_at", record->created_at},
                                 {"updated_at", record->updated_at}});
}

}  // namespace wallet
