#pragma once
// A blocking gRPC client of wallet.v1.WalletService, grpc.health.v1.Health and server reflection
// for the wallet suites: every call carries a deadline (30 s) and, when given, the bearer token.
// Not thread-safe per object: give each thread its own (they may share one channel).

#include <chrono>
#include <memory>
#include <set>
#include <string>

#include <grpcpp/grpcpp.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "wallet/v1/wallet.grpc.pb.h"

namespace wallet_test {

namespace v1 = wallet::v1;
inline constexpr auto serving = grpc::health::v1::HealthCheckResponse::SERVING;
inline constexpr auto not_serving = grpc::health::v1::HealthCheckResponse::NOT_SERVING;

template <class Response>
struct grpc_reply {
  grpc::Status status;
  Response response;
  /// The response metadata idempotent-replayed: true was sent.
  bool replayed = false;

  bool ok() const { return status.ok(); }
  grpc::StatusCode code() const { return status.error_code(); }
  std::string message() const { return status.error_message(); }
};

class grpc_client {
 public:
  explicit grpc_client(const std::string& target, std::string token = {})
      : grpc_client(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()), std::move(token)) {}
  grpc_client(std::shared_ptr<grpc::Channel> channel, std::string token)
      : channel_(std::move(channel)), token_(std::move(token)), stub_(v1::WalletService::NewStub(channel_)) {}

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  grpc_reply<v1::CreateWithdrawalResponse> create_withdrawal(const v1::CreateWithdrawalRequest& request) {
    return call<v1::CreateWithdrawalResponse>(&v1::WalletService::Stub::CreateWithdrawal, request);
  }
  grpc_reply<v1::CreateWithdrawalResponse> create_withdrawal(std::int64_t user_id, const std::string& to_address,
                                                             const std::string& amount, const std::string& key = {}) {
    v1::CreateWithdrawalRequest request;
    request.set_user_id(user_id);
    request.set_to_address(to_address);
    request.set_amount(amount);
    request.set_chain("eth");
    request.set_idempotency_key(key);
    return create_withdrawal(request);
  }
  grpc_reply<v1::DepositResponse> deposit(std::int64_t user_id, const std::string& amount,
                                          const std::string& key = {}) {
    v1::DepositRequest request;
    request.set_user_id(user_id);
    request.set_amount(amount);
    request.set_idempotency_key(key);
    return call<v1::DepositResponse>(&v1::WalletService::Stub::Deposit, request);
  }
  grpc_reply<v1::GetWithdrawalResponse> get_withdrawal(std::int64_t id) {
    v1::GetWithdrawalRequest request;
    request.set_withdrawal_id(id);
    return call<v1::GetWithdrawalResponse>(&v1::WalletService::Stub::GetWithdrawal, request);
  }
  grpc_reply<v1::GetAccountResponse> get_account(std::int64_t user_id) {
    v1::GetAccountRequest request;
    request.set_user_id(user_id);
    return call<v1::GetAccountResponse>(&v1::WalletService::Stub::GetAccount, request);
  }

  /// grpc.health.v1.Health/Check of `service` ("" = the server).
  grpc_reply<grpc::health::v1::HealthCheckResponse> health(const std::string& service = {}) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    auto health_stub = grpc::health::v1::Health::NewStub(channel_);
    return call_on<grpc::health::v1::HealthCheckResponse>(*health_stub, &grpc::health::v1::Health::Stub::Check,
                                                          request);
  }

  /// The services server reflection lists.
  std::set<std::string> list_services() {
    namespace reflection = grpc::reflection::v1alpha;
    auto reflection_stub = reflection::ServerReflection::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto stream = reflection_stub->ServerReflectionInfo(&context);
    reflection::ServerReflectionRequest request;
    request.set_list_services("*");
    std::set<std::string> names;
    reflection::ServerReflectionResponse response;
    if (stream->Write(request) && stream->WritesDone() && stream->Read(&response)) {
      for (const auto& service : response.list_services_response().service()) names.insert(service.name());
    }
    stream->Finish();
    return names;
  }

 private:
  template <class Response, class Request, class Method>
  grpc_reply<Response> call(Method method, const Request& request) {
    return call_on<Response>(*stub_, method, request);
  }

  template <class Response, class Stub, class Request, class Method>
  grpc_reply<Response> call_on(Stub& stub, Method method, const Request& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
    grpc_reply<Response> reply;
    reply.status = (stub.*method)(&context, request, &reply.response);
    const auto& metadata = context.GetServerInitialMetadata();
    const auto it = metadata.find("idempotent-replayed");
    reply.replayed = it != metadata.end() && it->second == "true";
    return reply;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
  std::unique_ptr<v1::WalletService::Stub> stub_;
};

}  // namespace wallet_test
