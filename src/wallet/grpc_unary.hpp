#pragma once
// Unary methods of async-registered gRPC services, served the way the HTTP server serves requests:
// a fixed set of handler threads waiting on one completion queue, each running a call's handler
// (which may block on the database) inline and then sending its answer. Nothing is created per call
// but the call's own state: no thread starts or ends per call (grpc++'s synchronous server grows
// and shrinks its pollers around every blocking call).
//
// Every method keeps `waiting` calls requested; a call that arrives is replaced by a fresh request
// before its handler runs, so idle threads pick up the next calls while one blocks. One queue for
// all threads: a call never waits behind a busy thread while another is idle.
//
// Use: construct before grpc::ServerBuilder::BuildAndStart (it adds the queue), serve() each
// method, start() after the server started; after grpc::Server::Shutdown returned (every call
// answered or cancelled), stop() ends the threads. The server and the services outlive stop().
// Thread-safety: serve(), start() and stop() from one thread.

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace wallet::grpc_unary {

/// Something waiting on the queue: proceed() runs on a handler thread when it completes.
class pending {
 public:
  virtual ~pending() = default;
  virtual void proceed(bool ok) = 0;
};

/// What a unary method needs: how to request its next call (the generated
/// AsyncService::Request<Method>, given the queue twice) and the handler that answers it.
template <class Request, class Response>
struct method {
  std::function<void(grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Response>*,
                     grpc::ServerCompletionQueue*, void*)>
      request;
  std::function<grpc::Status(grpc::ServerContext&, const Request&, Response&)> handle;
};

class server {
 public:
  explicit server(grpc::ServerBuilder& builder) : queue_(builder.AddCompletionQueue()) {}
  ~server() { stop(); }
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Keeps `waiting` calls of `m` requested from now on (the server must be started).
  template <class Request, class Response>
  void serve(method<Request, Response> m, std::size_t waiting);
  void start(std::size_t threads);
  /// Shuts the queue down, drains it and joins the threads. Idempotent.
  void stop();

  /// Runs `post` (which requests a call on queue()) unless stop() began. Returns whether it ran.
  bool request_unless_stopping(const std::function<void()>& post);
  /// Runs `start` (which starts an operation whose completion goes to queue()) and, when the
  /// operation completed on this thread during it, proceeds with that completion here and then.
  /// Otherwise the completion arrives through the queue as usual. An answer's writes usually
  /// finish inside Finish, and a completion posted by a thread that is not waiting on the queue
  /// wakes one that is: this spares a thread wake-up per call. The completion's proceed() may
  /// delete the caller before this returns.
  void complete_here_if_done(const std::function<void()>& start);
  grpc::ServerCompletionQueue* queue() const noexcept { return queue_.get(); }

 private:
  std::unique_ptr<grpc::ServerCompletionQueue> queue_;
  std::vector<std::shared_ptr<const void>> methods_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  bool stopping_ = false;
};

namespace detail {

// One call: requested, then answered, then deleted.
template <class Request, class Response>
class unary_call final : public pending {
 public:
  static void request(server& owner, const method<Request, Response>& m) {
    auto* call = new unary_call(owner, m);
    // During stop() no request may reach the queue; the call is not wanted then.
    if (!owner.request_unless_stopping(
            [&] { m.request(&call->context_, &call->request_, &call->writer_, owner.queue(), call); })) {
      delete call;
    }
  }

  void proceed(bool ok) override {
    if (answered_) {
      delete this;  // the answer went out (ok) or the client was gone (!ok)
      return;
    }
    if (!ok) {
      delete this;  // the server is shutting down: it cancelled the request, no call came
      return;
    }
    request(owner_, method_);  // the next call finds a request waiting while this one runs
    answered_ = true;
    const grpc::Status status = method_.handle(context_, request_, response_);
    // A non-OK status sends no message. When the answer went out at once, proceed(true) deletes
    // this call before complete_here_if_done returns.
    owner_.complete_here_if_done([&] { writer_.Finish(response_, status, this); });
  }

 private:
  unary_call(server& owner, const method<Request, Response>& m) : owner_(owner), method_(m), writer_(&context_) {}

  server& owner_;
  const method<Request, Response>& method_;
  grpc::ServerContext context_;
  Request request_;
  Response response_;
  grpc::ServerAsyncResponseWriter<Response> writer_;
  bool answered_ = false;
};

}  // namespace detail

template <class Request, class Response>
void server::serve(method<Request, Response> m, std::size_t waiting) {
  auto owned = std::make_shared<const method<Request, Response>>(std::move(m));
  methods_.push_back(owned);
  for (std::size_t i = 0; i < waiting; ++i) detail::unary_call<Request, Response>::request(*this, *owned);
}

}  // namespace wallet::grpc_unary
