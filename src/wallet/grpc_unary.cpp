#include "wallet/grpc_unary.hpp"

#include <grpc/grpc.h>
#include <grpcpp/impl/codegen/completion_queue_tag.h>

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

void server::complete_here_if_done(const std::function<void()>& start) {
  // grpc's thread-local cache keeps the first completion of the queue that happens on this thread
  // instead of posting it (and waking a waiting thread); the sync server uses it the same way.
  grpc_completion_queue_thread_local_cache_init(queue_->cq());
  start();
  void* core_tag = nullptr;
  int ok = 0;
  if (grpc_completion_queue_thread_local_cache_flush(queue_->cq(), &core_tag, &ok) == 0) return;
  // What the queue hands out is grpc++'s operation set; it turns itself into the caller's tag.
  void* tag = nullptr;
  bool success = ok != 0;
  if (static_cast<grpc::internal::CompletionQueueTag*>(core_tag)->FinalizeResult(&tag, &success)) {
    static_cast<pending*>(tag)->proceed(success);
  }
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
