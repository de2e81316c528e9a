#pragma once
// The HTTP JSON front end of wallet-service: routing, JSON bodies and headers in, JSON answers
// out, and the HTTP request metrics. What to answer is decided by wallet::operations, which the
// gRPC front end shares.
//
//   POST /v1/withdrawals                   create (scope withdraw; Idempotency-Key)   201
//   GET  /v1/withdrawals/{id}              one withdrawal (scope read)                200
//   POST /v1/accounts/{user_id}/deposits   credit (scope deposit; api.enable_deposits) 200
//   GET  /v1/accounts/{user_id}            balance (scope read)                       200
//   GET  /healthz, GET /metrics            operations (never need a token)
//
// Thread-safety: handle() is called concurrently from the HTTP server's threads.

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/database.hpp"
#include "common/http_server.hpp"
#include "wallet/operations.hpp"
#include "wallet/store.hpp"

namespace wallet {

class api {
 public:
  /// Keeps references to `operations`, `pool` and `health`: they must outlive the api. Registers
  /// its metrics in `registry` and serves it on /metrics.
  api(operations& operations, common::connection_pool& pool, health_probe& health,
      std::shared_ptr<prometheus::Registry> registry);

  common::http::response handle(const common::http::request& request);

 private:
  common::http::response route(const common::http::request& request, std::string& route_name);
  common::http::response create_withdrawal(const common::http::request& request, const principal& caller);
  common::http::response get_withdrawal(const principal& caller, std::int64_t id);
  common::http::response deposit(const common::http::request& request, const principal& caller, std::int64_t user_id);
  common::http::response get_account(const principal& caller, std::int64_t user_id);

  operations& operations_;
  common::connection_pool& pool_;
  health_probe& health_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Gauge& pool_in_use_;
  prometheus::Gauge& pool_size_;
};

}  // namespace wallet
