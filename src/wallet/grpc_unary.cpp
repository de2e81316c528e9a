#include "wallet/grpc_unary.hpp"

namespace wallet::grpc_unary {

void server::start(std::size_t threads) {
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      void* tag = nullptr;
      bool ok = false;
      while (queue_->Next(&tag, &ok)) static_cast<pending*>(tag)->proceed(ok);
    });
  }
}

bool server::request_unless_stopping(const std::function<void()>& post) {
  std::lock_guard lock(mutex_);
  if (stopping_) return false;
  post();
  return true;
}

void server::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  queue_->Shutdown();
  if (threads_.empty()) {  // never started: drain here
    void* tag = nullptr;
    bool ok = false;
    while (queue_->Next(&tag, &ok)) static_cast<pending*>(tag)->proceed(ok);
  }
  // The threads drain the queue (requests the server's shutdown cancelled) and end.
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace wallet::grpc_unary
