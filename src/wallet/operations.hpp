#pragma once
// The decisions of the wallet's API, shared by the HTTP and the gRPC front ends so that both
// answer every request the same way: who the caller is (token), whether its scope allows the call,
// whether an Idempotency-Key is present when required, the validation of the fields, the store
// call, and the mapping of every outcome (and database failure) to an api_error.
//
// A front end only turns its wire format into the inputs below (JSON body or protobuf message,
// header or metadata) and an outcome back into its wire format; HTTP statuses and error codes are
// decided here (api_error), gRPC derives its status code from them (grpc_status_code()).
//
// Thread-safety: every member may be called concurrently; set_tokens() swaps atomically.
// Blocking: the calls that reach the store block as store.hpp says.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "wallet/auth.hpp"
#include "wallet/config.hpp"
#include "wallet/request.hpp"
#include "wallet/store.hpp"

namespace wallet {

/// A result, or the api_error a client gets.
template <class T>
using outcome = std::variant<T, api_error>;

struct withdrawal_created {
  std::int64_t withdrawal_id = 0;
  std::string created_at;
  /// The client's Idempotency-Key was used before with the same request: this is that answer.
  bool replayed = false;
};

struct deposit_made {
  std::int64_t user_id = 0;
  std::string balance;  // right after the deposit
  bool replayed = false;
};

class operations {
 public:
  /// Keeps references to `config` and `store`. `tokens` null: no authentication (auth.disabled).
  /// Registers wallet_withdrawals_created_total in `registry`.
  operations(const service_config& config, store& store, std::shared_ptr<const token_set> tokens,
             prometheus::Registry& registry);

  /// The caller of `authorization` ("Bearer <token>"): 401 unauthorized unless the token is listed;
  /// the anonymous principal when authentication is off.
  outcome<principal> authenticate(std::string_view authorization) const;

  /// Scope withdraw. `fields` is what the front end parsed, or its parse error (answered after
  /// the scope and key checks, so a caller without the scope learns nothing about its input).
  /// An empty `idempotency_key` means none was sent; `traceparent` is dropped when invalid.
  outcome<withdrawal_created> create_withdrawal(const principal& caller, const parsed<withdrawal_fields>& fields,
                                                std::string_view idempotency_key, std::string_view traceparent);
  /// Scope read. 404 not_found when there is no such withdrawal.
  outcome<withdrawal_record> get_withdrawal(const principal& caller, std::int64_t withdrawal_id);
  /// Scope read. 404 unknown_user when there is no such account.
  outcome<account_record> get_account(const principal& caller, std::int64_t user_id);
  /// Scope deposit; 404 not_found unless api.enable_deposits. `amount` as for create_withdrawal.
  outcome<deposit_made> deposit(const principal& caller, std::int64_t user_id, const parsed<std::string>& amount,
                                std::string_view idempotency_key);

  /// Replaces the accepted tokens (SIGHUP). nullptr turns authentication off.
  void set_tokens(std::shared_ptr<const token_set> tokens);

 private:
  std::shared_ptr<const token_set> tokens() const;
  std::optional<api_error> check_key(std::string_view key, bool money_moves) const;

  const service_config& config_;
  store& store_;
  mutable std::mutex tokens_mutex_;
  std::shared_ptr<const token_set> tokens_;
  prometheus::Counter& withdrawals_created_;
};

/// 403 forbidden unless `caller` has `needed`.
std::optional<api_error> check_scope(const principal& caller, scope needed);
/// 403 forbidden when `caller`'s token is bound to accounts (users=) other than `user_id`.
/// Withdrawals, account reads and deposits check it; GetWithdrawal answers another account's
/// withdrawal 404 not_found instead, as if it did not exist.
std::optional<api_error> check_account(const principal& caller, std::int64_t user_id);

/// The 503 database_unavailable answer for `e` (nothing written; in doubt: retry with the same key).
api_error unavailable_error(const database_unavailable& e, bool money_moves);

/// The canonical gRPC status code of an api_error (grpc::StatusCode's value): 400 -> 3
/// INVALID_ARGUMENT, 401 -> 16 UNAUTHENTICATED, 403 -> 7 PERMISSION_DENIED, 404 -> 5 NOT_FOUND,
/// 409 insufficient_balance -> 9 FAILED_PRECONDITION, 409 idempotency_key_reused -> 6 ALREADY_EXISTS,
/// 413 -> 8 RESOURCE_EXHAUSTED, 503 -> 14 UNAVAILABLE, anything else -> 13 INTERNAL.
int grpc_status_code(const api_error& error) noexcept;

}  // namespace wallet
