#pragma once
// The gRPC front end of wallet-service (proto/wallet/v1/wallet.proto): wallet.v1.WalletService
// over wallet::operations (the same decisions as the HTTP API), grpc.health.v1.Health (SERVING
// while the database answers the health probe, asked at each Check), and server reflection.
//
// Status codes come from the api_error of each refusal (grpc_status_code()); the message starts
// with the HTTP error code ("invalid_amount: ..."). A replayed call adds the response metadata
// `idempotent-replayed: true`. Metrics: wallet_grpc_requests_total{method,code},
// wallet_grpc_request_duration_seconds{method}.
//
// Thread-safety: start() and stop() from one thread. WalletService calls are answered on
// grpc.threads handler threads of our own (grpc_unary.hpp: a call blocks one of them while it waits
// for the database, as an HTTP request blocks an HTTP thread); health and reflection on gRPC's.

#include <chrono>
#include <cstdint>
#include <memory>

#include <prometheus/registry.h>

#include "wallet/config.hpp"
#include "wallet/operations.hpp"
#include "wallet/store.hpp"

namespace wallet {

class grpc_api {
 public:
  /// Keeps references to `operations` and `health`: they must outlive this object. Registers its
  /// metrics in `registry`.
  grpc_api(grpc_config config, operations& operations, health_probe& health, prometheus::Registry& registry);
  ~grpc_api();  // stop(0) if still running
  grpc_api(const grpc_api&) = delete;
  grpc_api& operator=(const grpc_api&) = delete;

  /// Binds and starts serving, logging "listening on grpc://<address>:<port>". Throws
  /// std::runtime_error naming the address when it cannot listen (port taken, bad address).
  void start();
  /// The bound port (useful with grpc.port = 0); 0 before start().
  std::uint16_t port() const noexcept;
  /// Graceful stop: refuses new calls at once, lets calls in flight finish for up to `timeout`,
  /// then cancels the rest; health watchers are ended first. Blocks until done. Idempotent.
  void stop(std::chrono::milliseconds timeout);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace wallet
