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

response json_response(unsigned status, const json& body) {
  return response{status, "application/json", body.dump(), {}};
}

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
  auto res =
      error_response(405, "method_not_allowed", fmt::format("{} is not allowed on {}; use {}", method, path, allowed));
  res.headers.emplace_back("Allow", std::string(allowed));
  return res;
}

// An api_error as the HTTP answer: {"error": {"code", "message"}}, plus the headers its status asks for.
response error_of(const api_error& e) {
  auto res = error_response(e.status, e.code, e.message);
  if (e.status == 401) res.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (e.status == 503) res.headers.emplace_back("Retry-After", "1");
  return res;
}

json optional_string(const std::optional<std::string>& value) { return value ? json(*value) : json(nullptr); }

}  // namespace

api::api(operations& operations, common::connection_pool& pool, health_probe& health,
         std::shared_ptr<prometheus::Registry> registry)
    : operations_(operations),
      pool_(pool),
      health_(health),
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
                     .Add({})) {
  pool_size_.Set(static_cast<double>(pool_.size()));
}

response api::handle(const common::http::request& request) {
  const auto start = std::chrono::steady_clock::now();
  std::string route_name = "unmatched";
  response res;
  try {
    res = route(request, route_name);
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
  const auto caller = operations_.authenticate(request.header("authorization"));
  if (const auto* refused = std::get_if<api_error>(&caller)) return error_of(*refused);
  const auto& who = std::get<principal>(caller);
  if (allowed.empty()) return error_response(404, "not_found", fmt::format("no route {} {}", request.method, path));
  if (request.method != allowed) return method_not_allowed(request.method, path, allowed);

  if (route_name == "create_withdrawal") return create_withdrawal(request, who);
  const auto id = parse_positive_id(segments[2]);
  if (!id) {
    return error_response(404, "not_found",
                          fmt::format("no such {}: \"{}\" is not a positive integer id",
                                      segments[1] == "withdrawals" ? "withdrawal" : "account", segments[2]));
  }
  if (route_name == "get_withdrawal") return get_withdrawal(who, *id);
  if (route_name == "get_account") return get_account(who, *id);
  return deposit(request, who, *id);
}

response api::create_withdrawal(const common::http::request& request, const principal& caller) {
  parsed<withdrawal_fields> fields =
      api_error{415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json"};
  if (is_json_content_type(request.header("content-type"))) fields = parse_withdrawal_json(request.body);
  const auto result =
      operations_.create_withdrawal(caller, fields, request.header("idempotency-key"), request.header("traceparent"));
  if (const auto* refused = std::get_if<api_error>(&result)) return error_of(*refused);
  const auto& created = std::get<withdrawal_created>(result);
  auto res = json_response(
      201, json{{"withdrawal_id", created.withdrawal_id}, {"status", "pending"}, {"created_at", created.created_at}});
  res.headers.emplace_back("Location", fmt::format("/v1/withdrawals/{}", created.withdrawal_id));
  if (created.replayed) res.headers.emplace_back("Idempotent-Replayed", "true");
  return res;
}

response api::get_withdrawal(const principal& caller, std::int64_t id) {
  const auto result = operations_.get_withdrawal(caller, id);
  if (const auto* refused = std::get_if<api_error>(&result)) return error_of(*refused);
  const auto& record = std::get<withdrawal_record>(result);
  return json_response(200, json{{"withdrawal_id", record.id},
                                 {"user_id", record.user_id},
                                 {"status", record.status},
                                 {"amount", record.amount},
                                 {"to_address", record.to_address},
                                 {"chain", record.chain},
                                 {"tx_hash", optional_string(record.tx_hash)},
                                 {"failure_reason", optional_string(record.failure_reason)},
                                 {"created_at", record.created_at},
                                 {"updated_at", record.updated_at},
                                 {"signed_at", optional_string(record.signed_at)},
                                 {"broadcast_at", optional_string(record.broadcast_at)},
                                 {"confirmed_at", optional_string(record.confirmed_at)},
                                 {"failed_at", optional_string(record.failed_at)}});
}

response api::deposit(const common::http::request& request, const principal& caller, std::int64_t user_id) {
  parsed<std::string> amount =
      api_error{415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json"};
  if (is_json_content_type(request.header("content-type"))) amount = parse_deposit_json(request.body);
  const auto result = operations_.deposit(caller, user_id, amount, request.header("idempotency-key"));
  if (const auto* refused = std::get_if<api_error>(&result)) return error_of(*refused);
  const auto& made = std::get<deposit_made>(result);
  auto res = json_response(200, json{{"user_id", made.user_id}, {"balance", made.balance}});
  if (made.replayed) res.headers.emplace_back("Idempotent-Replayed", "true");
  return res;
}

response api::get_account(const principal& caller, std::int64_t user_id) {
  const auto result = operations_.get_account(caller, user_id);
  if (const auto* refused = std::get_if<api_error>(&result)) return error_of(*refused);
  const auto& record = std::get<account_record>(result);
  return json_response(200, json{{"user_id", record.user_id},
                                 {"balance", record.balance},
                                 {"created_at", record.created_at},
                                 {"updated_at", record.updated_at}});
}

}  // namespace wallet
