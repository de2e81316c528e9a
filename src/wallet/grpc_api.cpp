#include "wallet/grpc_api.hpp"

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include <absl/synchronization/mutex.h>
#include <fmt/format.h>
#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/metrics.hpp"
#include "grpc/health/v1/health.grpc.pb.h"
#include "wallet/grpc_unary.hpp"
#include "wallet/v1/wallet.grpc.pb.h"

namespace wallet {

namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

const char* code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "INTERNAL";
  }
}

grpc::Status status_of(const api_error& e) {
  return {static_cast<grpc::StatusCode>(grpc_status_code(e)), fmt::format("{}: {}", e.code, e.message)};
}

std::string_view metadata(const grpc::ServerContext& context, const char* key) {
  const auto& entries = context.client_metadata();
  const auto it = entries.find(key);
  if (it == entries.end()) return {};
  return {it->second.data(), it->second.size()};
}

// proto3 cannot tell an empty string from an absent field: both are "missing", as in JSON.
std::optional<api_error> missing(std::string_view field, bool absent, std::string_view needs) {
  if (!absent) return std::nullopt;
  return api_error{400, "missing_field", fmt::format("missing field \"{}\": {}", field, needs)};
}

v1::WithdrawalStatus status_enum(const std::string& status) {
  if (status == "pending") return v1::WITHDRAWAL_STATUS_PENDING;
  if (status == "signed") return v1::WITHDRAWAL_STATUS_SIGNED;
  if (status == "broadcast") return v1::WITHDRAWAL_STATUS_BROADCAST;
  if (status == "confirmed") return v1::WITHDRAWAL_STATUS_CONFIRMED;
  if (status == "failed") return v1::WITHDRAWAL_STATUS_FAILED;
  return v1::WITHDRAWAL_STATUS_UNSPECIFIED;
}

// Counts and times each call, whatever its outcome. The children of each method are looked up
// once (Family::Add hashes the labels under a lock) and kept.
class call_metrics {
 public:
  explicit call_metrics(prometheus::Registry& registry)
      : requests_(prometheus::BuildCounter()
                      .Name("wallet_grpc_requests_total")
                      .Help("gRPC calls answered, by method and status code")
                      .Register(registry)),
        durations_(prometheus::BuildHistogram()
                       .Name("wallet_grpc_request_duration_seconds")
                       .Help("Time from a received gRPC call to its answer, by method")
                       .Register(registry)) {}

  /// The children of one method, created on first use.
  class method {
   public:
    method(call_metrics& owner, const char* name) : owner_(owner), name_(name) {}

    template <class F>
    grpc::Status measure(F&& work) {
      const auto start = std::chrono::steady_clock::now();
      grpc::Status status;
      try {
        status = work();
      } catch (const std::exception& e) {
        spdlog::error("gRPC {} failed: {}", name_, e.what());
        status = grpc::Status(grpc::StatusCode::INTERNAL, "internal: internal error; see the service log");
      }
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
      requests(status.error_code()).Increment();
      duration().Observe(elapsed.count());
      return status;
    }

   private:
    prometheus::Counter& requests(grpc::StatusCode code) {
      const auto index = static_cast<std::size_t>(code) < requests_.size() ? static_cast<std::size_t>(code) : 2;
      auto* counter = requests_[index].load(std::memory_order_acquire);
      if (counter == nullptr) {  // Add returns the same child to every thread that races here
        counter = &owner_.requests_.Add({{"method", name_}, {"code", code_name(code)}});
        requests_[index].store(counter, std::memory_order_release);
      }
      return *counter;
    }
    prometheus::Histogram& duration() {
      auto* histogram = duration_.load(std::memory_order_acquire);
      if (histogram == nullptr) {
        histogram = &owner_.durations_.Add({{"method", name_}}, common::latency_buckets());
        duration_.store(histogram, std::memory_order_release);
      }
      return *histogram;
    }

    call_metrics& owner_;
    const char* name_;
    std::array<std::atomic<prometheus::Counter*>, 17> requests_{};  // by grpc::StatusCode, UNKNOWN for others
    std::atomic<prometheus::Histogram*> duration_{nullptr};
  };

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
};

// wallet.v1.WalletService's decisions: each method turns its request into operations' inputs and
// the outcome into the response and status. Called on the handler threads of grpc_unary.
class wallet_service {
 public:
  wallet_service(operations& operations, call_metrics& metrics)
      : operations_(operations),
        create_withdrawal_(metrics, "CreateWithdrawal"),
        get_withdrawal_(metrics, "GetWithdrawal"),
        get_account_(metrics, "GetAccount"),
        deposit_(metrics, "Deposit") {}

  grpc::Status CreateWithdrawal(grpc::ServerContext* context, const v1::CreateWithdrawalRequest* request,
                                v1::CreateWithdrawalResponse* response) {
    return create_withdrawal_.measure([&] {
      return authenticated(*context, [&](const principal& caller) {
        static constexpr std::string_view needs = "CreateWithdrawal needs user_id, to_address, amount, chain";
        parsed<withdrawal_fields> fields =
            withdrawal_fields{request->user_id(), request->to_address(), request->amount(), request->chain()};
        auto absent = missing("user_id", request->user_id() == 0, needs);
        if (!absent) absent = missing("to_address", request->to_address().empty(), needs);
        if (!absent) absent = missing("amount", request->amount().empty(), needs);
        if (!absent) absent = missing("chain", request->chain().empty(), needs);
        if (absent) fields = *absent;
        const auto result =
            operations_.create_withdrawal(caller, fields, request->idempotency_key(), request->traceparent());
        if (const auto* refused = std::get_if<api_error>(&result)) return status_of(*refused);
        const auto& created = std::get<withdrawal_created>(result);
        response->set_withdrawal_id(created.withdrawal_id);
        response->set_status(v1::WITHDRAWAL_STATUS_PENDING);
        response->set_created_at(created.created_at);
        if (created.replayed) context->AddInitialMetadata("idempotent-replayed", "true");
        return grpc::Status::OK;
      });
    });
  }

  grpc::Status GetWithdrawal(grpc::ServerContext* context, const v1::GetWithdrawalRequest* request,
                             v1::GetWithdrawalResponse* response) {
    return get_withdrawal_.measure([&] {
      return authenticated(*context, [&](const principal& caller) {
        const auto result = operations_.get_withdrawal(caller, request->withdrawal_id());
        if (const auto* refused = std::get_if<api_error>(&result)) return status_of(*refused);
        const auto& r = std::get<withdrawal_record>(result);
        response->set_withdrawal_id(r.id);
        response->set_user_id(r.user_id);
        response->set_status(status_enum(r.status));
        response->set_amount(r.amount);
        response->set_to_address(r.to_address);
        response->set_chain(r.chain);
        response->set_tx_hash(r.tx_hash.value_or(""));
        response->set_failure_reason(r.failure_reason.value_or(""));
        response->set_created_at(r.created_at);
        response->set_updated_at(r.updated_at);
        response->set_signed_at(r.signed_at.value_or(""));
        response->set_broadcast_at(r.broadcast_at.value_or(""));
        response->set_confirmed_at(r.confirmed_at.value_or(""));
        response->set_failed_at(r.failed_at.value_or(""));
        return grpc::Status::OK;
      });
    });
  }

  grpc::Status GetAccount(grpc::ServerContext* context, const v1::GetAccountRequest* request,
                          v1::GetAccountResponse* response) {
    return get_account_.measure([&] {
      return authenticated(*context, [&](const principal& caller) {
        const auto result = operations_.get_account(caller, request->user_id());
        if (const auto* refused = std::get_if<api_error>(&result)) return status_of(*refused);
        const auto& r = std::get<account_record>(result);
        response->set_user_id(r.user_id);
        response->set_balance(r.balance);
        response->set_created_at(r.created_at);
        response->set_updated_at(r.updated_at);
        return grpc::Status::OK;
      });
    });
  }

  grpc::Status Deposit(grpc::ServerContext* context, const v1::DepositRequest* request, v1::DepositResponse* response) {
    return deposit_.measure([&] {
      return authenticated(*context, [&](const principal& caller) {
        parsed<std::string> amount = request->amount();
        if (auto e = missing("amount", request->amount().empty(), "Deposit needs user_id and amount")) amount = *e;
        if (request->user_id() <= 0) {
          amount = api_error{400, "invalid_type",
                             fmt::format("user_id must be a positive integer such as 42, got {}", request->user_id())};
        }
        const auto result = operations_.deposit(caller, request->user_id(), amount, request->idempotency_key());
        if (const auto* refused = std::get_if<api_error>(&result)) return status_of(*refused);
        const auto& made = std::get<deposit_made>(result);
        response->set_user_id(made.user_id);
        response->set_balance(made.balance);
        if (made.replayed) context->AddInitialMetadata("idempotent-replayed", "true");
        return grpc::Status::OK;
      });
    });
  }

 private:
  template <class F>
  grpc::Status authenticated(const grpc::ServerContext& context, F&& work) {
    const auto caller = operations_.authenticate(metadata(context, "authorization"));
    if (const auto* refused = std::get_if<api_error>(&caller)) return status_of(*refused);
    return work(std::get<principal>(caller));
  }

  operations& operations_;
  call_metrics::method create_withdrawal_;
  call_metrics::method get_withdrawal_;
  call_metrics::method get_account_;
  call_metrics::method deposit_;
};

// grpc.health.v1.Health over the same probe as /healthz: "" (the server) and
// "wallet.v1.WalletService" are known; both are SERVING exactly while the database answers.
class health_service final : public grpc::health::v1::Health::Service {
 public:
  health_service(health_probe& probe, call_metrics& metrics) : probe_(probe), check_(metrics, "Check") {}

  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest* request, HealthCheckResponse* response) override {
    return check_.measure([&] {
      if (!known(request->service())) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, fmt::format("not_found: no service \"{}\"; ask for \"\" or "
                                                                     "\"wallet.v1.WalletService\"",
                                                                     request->service()));
      }
      response->set_status(current());
      return grpc::Status::OK;
    });
  }

  grpc::Status Watch(grpc::ServerContext* context, const HealthCheckRequest* request,
                     grpc::ServerWriter<HealthCheckResponse>* writer) override {
    std::optional<HealthCheckResponse::ServingStatus> sent;
    std::unique_lock lock(mutex_);
    while (!stopping_ && !context->IsCancelled()) {
      lock.unlock();
      const auto status = known(request->service()) ? current() : HealthCheckResponse::SERVICE_UNKNOWN;
      if (status != sent) {
        HealthCheckResponse response;
        response.set_status(status);
        if (!writer->Write(response)) return grpc::Status::CANCELLED;
        sent = status;
      }
      lock.lock();
      wake_.wait_for(lock, std::chrono::seconds(1));
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "unavailable: the server is stopping");
  }

  /// Ends every Watch (before the server's shutdown waits for calls in flight).
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
  }

 private:
  static bool known(const std::string& service) { return service.empty() || service == "wallet.v1.WalletService"; }
  HealthCheckResponse::ServingStatus current() {
    return probe_.problem().empty() ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
  }

  health_probe& probe_;
  call_metrics::method check_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
};

std::string host_port(const std::string& address, std::uint16_t port) {
  return address.find(':') != std::string::npos ? fmt::format("[{}]:{}", address, port)
                                                : fmt::format("{}:{}", address, port);
}

}  // namespace

struct grpc_api::impl {
  impl(grpc_config c, operations& ops, health_probe& probe, prometheus::Registry& registry)
      : config(std::move(c)), metrics(registry), wallet(ops, metrics), health(probe, metrics) {}

  // Each method of wallet.v1.WalletService, answered on the handler threads by `wallet`.
  template <class Request, class Response, class Requester>
  void serve(Requester requester,
             grpc::Status (wallet_service::*handle)(grpc::ServerContext*, const Request*, Response*)) {
    unary->serve(
        grpc_unary::method<Request, Response>{
            [this, requester](grpc::ServerContext* context, Request* request,
                              grpc::ServerAsyncResponseWriter<Response>* writer, grpc::ServerCompletionQueue* queue,
                              void* tag) { (async.*requester)(context, request, writer, queue, queue, tag); },
            [this, handle](grpc::ServerContext& context, const Request& request, Response& response) {
              return (wallet.*handle)(&context, &request, &response);
            }},
        config.threads);
  }

  grpc_config config;
  call_metrics metrics;
  wallet_service wallet;
  health_service health;
  v1::WalletService::AsyncService async;
  std::unique_ptr<grpc_unary::server> unary;  // its queue outlives `server`
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

grpc_api::grpc_api(grpc_config config, operations& operations, health_probe& health, prometheus::Registry& registry)
    : impl_(std::make_unique<impl>(std::move(config), operations, health, registry)) {}

grpc_api::~grpc_api() { stop(std::chrono::milliseconds(0)); }

void grpc_api::start() {
  // Debian builds Abseil with its debug lock-order graph on: every absl::Mutex that grpc takes per
  // call then walked it (GraphCycles in the profile). Cycle detection is a development aid.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const auto address = host_port(impl_->config.listen, impl_->config.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &impl_->port);
  // A second wallet-service on the same port must fail to start, not share its calls.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // No channelz service is registered: its per-call counters would be kept for nobody.
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(impl_->config.max_receive_bytes));
  builder.RegisterService(&impl_->async);
  builder.RegisterService(&impl_->health);  // synchronous: Watch streams block a thread of gRPC's own
  impl_->unary = std::make_unique<grpc_unary::server>(builder);
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || impl_->port == 0) {
    impl_->server.reset();
    impl_->unary.reset();
    throw std::runtime_error(
        fmt::format("gRPC: cannot listen on {}: is the port taken? (grpc.listen / grpc.port, "
                    "or grpc.enabled = false)",
                    address));
  }
  using service = v1::WalletService::AsyncService;
  impl_->serve(&service::RequestCreateWithdrawal, &wallet_service::CreateWithdrawal);
  impl_->serve(&service::RequestGetWithdrawal, &wallet_service::GetWithdrawal);
  impl_->serve(&service::RequestGetAccount, &wallet_service::GetAccount);
  impl_->serve(&service::RequestDeposit, &wallet_service::Deposit);
  impl_->unary->start(impl_->config.threads);
  spdlog::info("listening on grpc://{}", host_port(impl_->config.listen, static_cast<std::uint16_t>(impl_->port)));
}

std::uint16_t grpc_api::port() const noexcept { return static_cast<std::uint16_t>(impl_->port); }

void grpc_api::stop(std::chrono::milliseconds timeout) {
  if (!impl_->server) return;
  impl_->health.stop();
  // Refuses new calls, waits for the calls in flight until the deadline, then cancels them; the
  // handler threads keep answering meanwhile.
  impl_->server->Shutdown(std::chrono::system_clock::now() + timeout);
  impl_->unary->stop();
  impl_->server->Wait();
  impl_->server.reset();
  impl_->unary.reset();
}

}  // namespace wallet
