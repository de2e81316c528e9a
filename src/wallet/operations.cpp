#include "wallet/operations.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace wallet {

namespace {

api_error error(unsigned status, std::string code, std::string message) {
  return api_error{status, std::move(code), std::move(message)};
}

api_error internal_error() { return error(500, "internal", "internal error; see the service log"); }

std::optional<std::string> optional_text(std::string_view text) {
  return text.empty() ? std::nullopt : std::optional<std::string>(text);
}

// Runs `work`, turning a database failure into its 503 and anything unexpected into a 500 (logged).
template <class T, class F>
outcome<T> guarded(const char* what, bool money_moves, F&& work) {
  try {
    return work();
  } catch (const database_unavailable& e) {
    spdlog::warn("{}: {}", what, e.what());
    return unavailable_error(e, money_moves);
  } catch (const std::exception& e) {
    spdlog::error("{} failed: {}", what, e.what());
    return internal_error();
  }
}

}  // namespace

std::optional<api_error> check_scope(const principal& caller, scope needed) {
  if (caller.allows(needed)) return std::nullopt;
  return error(403, "forbidden",
               fmt::format("the token \"{}\" lacks the scope {}: ask for a token with it (tokens file: "
                           "<digest> <name> {})",
                           caller.name, scope_name(needed), scope_name(needed)));
}

std::optional<api_error> check_account(const principal& caller, std::int64_t user_id) {
  if (caller.may_act_for(user_id)) return std::nullopt;
  return error(403, "forbidden",
               fmt::format("the token \"{}\" is bound to other accounts than user_id {} (tokens file: users=); "
                           "nothing was written",
                           caller.name, user_id));
}

api_error unavailable_error(const database_unavailable& e, bool money_moves) {
  if (e.in_doubt()) {
    return error(503, "database_unavailable",
                 "the database connection broke while committing, so the outcome is unknown: retry with the same "
                 "Idempotency-Key to get the result (without a key, check the account before retrying)");
  }
  // The database's own words stay in the log (guarded() wrote them): clients get the kind of trouble.
  return error(503, "database_unavailable",
               fmt::format("the database is unavailable ({}); nothing was written{}", common::to_string(e.kind()),
                           money_moves ? ": retry later, with the same Idempotency-Key" : ": retry later"));
}

int grpc_status_code(const api_error& e) noexcept {
  switch (e.status) {
    case 400:
      return 3;  // INVALID_ARGUMENT
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 5;  // NOT_FOUND
    case 409:
      return e.code == "idempotency_key_reused" ? 6 : 9;  // ALREADY_EXISTS : FAILED_PRECONDITION
    case 413:
      return 8;  // RESOURCE_EXHAUSTED
    case 503:
      return 14;  // UNAVAILABLE
    default:
      return 13;  // INTERNAL
  }
}

operations::operations(const service_config& config, store& store, std::shared_ptr<const token_set> tokens,
                       prometheus::Registry& registry)
    : config_(config),
      store_(store),
      tokens_(std::move(tokens)),
      withdrawals_created_(prometheus::BuildCounter()
                               .Name("wallet_withdrawals_created_total")
                               .Help("Withdrawals committed with their outbox event (replays not counted)")
                               .Register(registry)
                               .Add({})) {}

void operations::set_tokens(std::shared_ptr<const token_set> tokens) {
  std::lock_guard lock(tokens_mutex_);
  tokens_ = std::move(tokens);
}

std::shared_ptr<const token_set> operations::tokens() const {
  std::lock_guard lock(tokens_mutex_);
  return tokens_;
}

outcome<principal> operations::authenticate(std::string_view authorization) const {
  const auto accepted = tokens();
  if (!accepted) return principal{"anonymous", principal::all_scopes, true, {}};
  if (auto who = accepted->authenticate(authorization)) return std::move(*who);
  return error(401, "unauthorized", "send Authorization: Bearer <token> with a token this service accepts");
}

std::optional<api_error> operations::check_key(std::string_view key, bool money_moves) const {
  if (key.empty()) {
    if (money_moves && config_.require_idempotency_key) {
      return error(400, "missing_idempotency_key",
                   "this service requires an Idempotency-Key on calls that move money (api.require_idempotency_key): "
                   "send a unique key per operation, e.g. a UUID, and the same key when retrying it");
    }
    return std::nullopt;
  }
  return check_idempotency_key(key);
}

outcome<withdrawal_created> operations::create_withdrawal(const principal& caller,
                                                          const parsed<withdrawal_fields>& fields,
                                                          std::string_view idempotency_key,
                                                          std::string_view traceparent) {
  if (auto denied = check_scope(caller, scope::withdraw)) return *denied;
  if (auto bad_key = check_key(idempotency_key, true)) return *bad_key;
  if (const auto* bad = std::get_if<api_error>(&fields)) return *bad;
  auto validated = validate_withdrawal(std::get<withdrawal_fields>(fields), config_.chains);
  if (const auto* bad = std::get_if<api_error>(&validated)) return *bad;
  const auto& request = std::get<withdrawal_request>(validated);
  if (auto denied = check_account(caller, request.user_id)) return *denied;

  return guarded<withdrawal_created>("create withdrawal", true, [&]() -> outcome<withdrawal_created> {
    const request_origin origin{optional_text(idempotency_key), caller.created_by()};
    auto result = store_.create_withdrawal(request, origin, valid_traceparent(traceparent));
    switch (result.outcome) {
      case create_outcome::created:
        withdrawals_created_.Increment();
        spdlog::info("withdrawal {} created by {}: user {} amount {} {} to {}", result.withdrawal_id, caller.name,
                     request.user_id, request.amount, request.chain, request.to_address);
        return withdrawal_created{result.withdrawal_id, std::move(result.created_at), false};
      case create_outcome::replayed:
        spdlog::info("withdrawal {} replayed for {} (Idempotency-Key {})", result.withdrawal_id, caller.name,
                     idempotency_key);
        return withdrawal_created{result.withdrawal_id, std::move(result.created_at), true};
      case create_outcome::unknown_user:
        return error(404, "unknown_user",
                     fmt::format("user_id {} has no account; nothing was written", request.user_id));
      case create_outcome::insufficient_balance:
        return error(409, "insufficient_balance",
                     fmt::format("the balance of user_id {} is below {}; nothing was "
                                 "debited",
                                 request.user_id, request.amount));
      case create_outcome::key_reused:
        return error(409, "idempotency_key_reused",
                     fmt::format("this Idempotency-Key was already used for a different withdrawal{}: send a new key "
                                 "for a new withdrawal, or the original request to get its answer",
                                 result.withdrawal_id != 0 ? fmt::format(" ({})", result.withdrawal_id) : ""));
    }
    return internal_error();
  });
}

outcome<withdrawal_record> operations::get_withdrawal(const principal& caller, std::int64_t withdrawal_id) {
  if (auto denied = check_scope(caller, scope::read)) return *denied;
  return guarded<withdrawal_record>("find withdrawal", false, [&]() -> outcome<withdrawal_record> {
    auto record = store_.find_withdrawal(withdrawal_id);
    // Another account's withdrawal is answered as absent: a bound token cannot probe ids.
    if (!record || !caller.may_act_for(record->user_id)) {
      return error(404, "not_found", fmt::format("no withdrawal with id {}", withdrawal_id));
    }
    return std::move(*record);
  });
}

outcome<account_record> operations::get_account(const principal& caller, std::int64_t user_id) {
  if (auto denied = check_scope(caller, scope::read)) return *denied;
  if (auto denied = check_account(caller, user_id)) return *denied;
  return guarded<account_record>("find account", false, [&]() -> outcome<account_record> {
    auto record = store_.find_account(user_id);
    if (!record) return error(404, "unknown_user", fmt::format("user_id {} has no account", user_id));
    return std::move(*record);
  });
}

outcome<deposit_made> operations::deposit(const principal& caller, std::int64_t user_id,
                                          const parsed<std::string>& amount, std::string_view idempotency_key) {
  if (!config_.enable_deposits) {
    return error(404, "not_found", "deposits are disabled on this service (api.enable_deposits = false)");
  }
  if (auto denied = check_scope(caller, scope::deposit)) return *denied;
  if (auto denied = check_account(caller, user_id)) return *denied;
  if (auto bad_key = check_key(idempotency_key, true)) return *bad_key;
  if (const auto* bad = std::get_if<api_error>(&amount)) return *bad;
  auto validated = validate_deposit_amount(std::get<std::string>(amount));
  if (const auto* bad = std::get_if<api_error>(&validated)) return *bad;
  const auto& canonical = std::get<std::string>(validated);

  return guarded<deposit_made>("deposit", true, [&]() -> outcome<deposit_made> {
    const request_origin origin{optional_text(idempotency_key), caller.created_by()};
    auto result = store_.deposit(user_id, canonical, origin);
    switch (result.outcome) {
      case deposit_outcome::credited:
        spdlog::info("deposit of {} to user {} by {}", canonical, user_id, caller.name);
        return deposit_made{user_id, std::move(result.balance), false};
      case deposit_outcome::replayed:
        return deposit_made{user_id, std::move(result.balance), true};
      case deposit_outcome::key_reused:
        return error(409, "idempotency_key_reused",
                     "this Idempotency-Key was already used for a different deposit: send a new key for a new "
                     "deposit, or the original request to get its answer");
      case deposit_outcome::out_of_range:
        return error(400, "invalid_amount",
                     "amount would take the balance beyond the largest value the wallet "
                     "stores (10^60); nothing was credited");
    }
    return internal_error();
  });
}

}  // namespace wallet
