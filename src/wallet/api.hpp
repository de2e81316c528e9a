#pragma once
// The HTTP JSON API of wallet-service: routing, authentication, request validation, mapping
// outcomes and failures to status codes, and the request metrics.
//
//   POST /v1/withdrawals                   create (Idempotency-Key optional)      201
//   GET  /v1/withdrawals/{id}              one withdrawal                         200
//   POST /v1/accounts/{user_id}/deposits   credit (api.enable_deposits only)      200
//   GET  /v1/accounts/{user_id}            balance                                200
//   GET  /healthz, GET /metrics            operations (never need a token)
//
// Thread-safety: handle() is called concurrently from the HTTP server's threads.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/database.hpp"
#include "common/http_server.hpp"
#include "wallet/auth.hpp"
#include "wallet/config.hpp"
#include "wallet/store.hpp"

namespace wallet {

class api {
 public:
  /// Keeps references to `config`, `store`, `pool` and `health`: they must outlive the api.
  /// `tokens` null: no authentication. Registers its metrics in `registry`.
  api(const service_config& config, store& store, common::connection_pool& pool, health_probe& health,
      std::shared_ptr<const token_set> tokens, std::shared_ptr<prometheus::Registry> registry);

  common::http::response handle(const common::http::request& request);

  /// Replaces the accepted tokens (SIGHUP). nullptr turns authentication off.
  void set_tokens(std::shared_ptr<const token_set> tokens);

 private:
  common::http::response route(const common::http::request& request, std::string& route_name);
  common::http::response create_withdrawal(const common::http::request& request);
  common::http::response get_withdrawal(std::int64_t id);
  common::http::response deposit(const common::http::request& request, std::int64_t user_id);
  common::http::response get_account(std::int64_t user_id);
  std::shared_ptr<const token_set> tokens() const;

  const service_config& config_;
  store& store_;
  common::connection_pool& pool_;
  health_probe& health_;
  mutable std::mutex tokens_mutex_;
  std::shared_ptr<const token_set> tokens_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Gauge& pool_in_use_;
  prometheus::Gauge& pool_size_;
  prometheus::Counter& withdrawals_created_;
};

}  // namespace wallet
