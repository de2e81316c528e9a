// wallet_load: a closed-loop load generator that drives wallet-service's HTTP and gRPC APIs the
// same way, so the two can be compared on the same cores. N clients, each with one withdrawal
// outstanding at a time: a fresh idempotency key per call, a user drawn uniformly from 1..users,
// the same address, amount and chain. Calls answered during the warm-up are not counted; the
// measured window follows it; calls still in flight when it ends are answered but not counted.
// Any answer but a created withdrawal (HTTP 201, gRPC OK without a replay) fails the run (exit 1).
//
//   wallet_load --api http|grpc --port P [--host 127.0.0.1] [--clients 8] [--seconds 10]
//               [--warmup 2] [--users 10000] [--threads 1] [--connections 4] [--token T]
//               [--latencies FILE]
//
// HTTP: one keep-alive connection per client (Boost.Beast, async). gRPC: the clients share
// min(clients, connections) channels, each its own HTTP/2 connection, through the async stub.
// Both: `threads` client threads, each with its own share of the clients and its own event loop.
// Prints `result ok_per_s`, `result ok`, `result failed`, p50/p90/p99/max (bench_support), and
// `result answered` (OK answers of the whole run, warm-up included) with the client's own CPU per
// answer (`result client_cpu_ms_per_call`), so the script can weigh the server's CPU per call.
// --latencies writes each measured call's latency in µs, one per line, for percentiles over runs.
#include <absl/synchronization/mutex.h>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fmt/format.h>
#include <fstream>
#include <grpcpp/grpcpp.h>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "bench_support.hpp"
#include "wallet/v1/wallet.grpc.pb.h"

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using steady = std::chrono::steady_clock;

constexpr std::string_view to_address = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
constexpr std::string_view amount = "0.000001";
constexpr auto call_timeout = std::chrono::seconds(10);

struct options {
  std::string api;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t clients = 8;
  std::chrono::seconds seconds{10};
  std::chrono::seconds warmup{2};
  std::int64_t users = 10000;
  std::size_t threads = 1;
  std::size_t connections = 4;
  std::string token;
  std::string latencies_file;
};

// What one client thread saw; merged at the end.
struct tally {
  steady::time_point begin;  // the measured window
  steady::time_point end;
  std::vector<std::int64_t> latencies_us;  // OK calls answered inside the window
  std::int64_t answered = 0;               // OK calls answered at any time (warm-up and tail too)
  std::int64_t failed = 0;
  std::vector<std::string> failures;  // the first few, for the report

  bool measuring_over(steady::time_point now) const { return now >= end; }
  void ok(steady::time_point started, steady::time_point at) {
    ++answered;
    if (at < begin || at > end) return;
    latencies_us.push_back(std::chrono::duration_cast<std::chrono::microseconds>(at - started).count());
  }
  void fail(std::string what) {
    ++failed;
    if (failures.size() < 5) failures.push_back(std::move(what));
  }
};

// Fresh idempotency keys and random users, per thread.
class call_source {
 public:
  call_source(std::int64_t users, std::size_t thread)
      : users_(1, users),
        random_(std::random_device{}()),
        prefix_(fmt::format("load-{}-{}-{}-", ::getpid(), steady::now().time_since_epoch().count(), thread)) {}
  std::int64_t user() { return users_(random_); }
  std::string key() { return prefix_ + std::to_string(++counter_); }

 private:
  std::uniform_int_distribution<std::int64_t> users_;
  std::mt19937_64 random_;
  std::string prefix_;
  std::uint64_t counter_ = 0;
};

// ---- HTTP: one keep-alive connection per client, POST /v1/withdrawals ----

class http_client {
 public:
  http_client(asio::io_context& io, const asio::ip::tcp::endpoint& endpoint, const options& o, call_source& source,
              tally& t)
      : socket_(io), source_(source), tally_(t) {
    socket_.connect(endpoint);
    socket_.set_option(asio::ip::tcp::no_delay(true));
    request_.method(http::verb::post);
    request_.target("/v1/withdrawals");
    request_.set(http::field::host, o.host);
    request_.set(http::field::content_type, "application/json");
    if (!o.token.empty()) request_.set(http::field::authorization, "Bearer " + o.token);
  }

  void next() {
    if (tally_.measuring_over(steady::now())) return;
    request_.set("Idempotency-Key", source_.key());
    request_.body() = fmt::format(R"({{"user_id": {}, "to_address": "{}", "amount": "{}", "chain": "eth"}})",
                                  source_.user(), to_address, amount);
    request_.prepare_payload();
    started_ = steady::now();
    http::async_write(socket_, request_, [this](boost::system::error_code error, std::size_t) {
      if (error) return tally_.fail("HTTP write: " + error.message());
      response_ = {};
      http::async_read(socket_, buffer_, response_, [this](boost::system::error_code e, std::size_t) { answered(e); });
    });
  }

 private:
  void answered(boost::system::error_code error) {
    if (error) return tally_.fail("HTTP read: " + error.message());
    if (response_.result_int() != 201) {
      return tally_.fail(fmt::format("HTTP {}: {}", response_.result_int(), response_.body()));
    }
    tally_.ok(started_, steady::now());
    next();
  }

  asio::ip::tcp::socket socket_;
  call_source& source_;
  tally& tally_;
  boost::beast::flat_buffer buffer_;
  http::request<http::string_body> request_{http::verb::post, "/", 11};
  http::response<http::string_body> response_;
  steady::time_point started_;
};

void run_http(const options& o, std::size_t clients, std::size_t thread, tally& t) {
  asio::io_context io(1);
  call_source source(o.users, thread);
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(o.host), o.port);
  std::vector<std::unique_ptr<http_client>> all;
  for (std::size_t i = 0; i < clients; ++i) all.push_back(std::make_unique<http_client>(io, endpoint, o, source, t));
  for (auto& c : all) c->next();
  io.run();  // returns once every client stopped after the window
}

// ---- gRPC: CreateWithdrawal through the async stub over shared channels ----

namespace v1 = wallet::v1;

struct grpc_call {
  grpc::ClientContext context;
  v1::CreateWithdrawalResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::CreateWithdrawalResponse>> reader;
  steady::time_point started;
};

class grpc_client {
 public:
  grpc_client(v1::WalletService::Stub& stub, grpc::CompletionQueue& queue, const options& o, call_source& source,
              tally& t)
      : stub_(stub), queue_(queue), token_(o.token.empty() ? "" : "Bearer " + o.token), source_(source), tally_(t) {}

  /// Starts the next call; false once the window is over (this client is done).
  bool next() {
    if (tally_.measuring_over(steady::now())) return false;
    call_ = std::make_unique<grpc_call>();
    call_->context.set_deadline(std::chrono::system_clock::now() + call_timeout);
    if (!token_.empty()) call_->context.AddMetadata("authorization", token_);
    v1::CreateWithdrawalRequest request;
    request.set_user_id(source_.user());
    request.set_to_address(std::string(to_address));
    request.set_amount(std::string(amount));
    request.set_chain("eth");
    request.set_idempotency_key(source_.key());
    call_->started = steady::now();
    call_->reader = stub_.AsyncCreateWithdrawal(&call_->context, request, &queue_);
    call_->reader->Finish(&call_->response, &call_->status, this);
    return true;
  }

  void answered() {
    if (!call_->status.ok()) {
      tally_.fail(
          fmt::format("gRPC {}: {}", static_cast<int>(call_->status.error_code()), call_->status.error_message()));
      return;
    }
    const auto& initial = call_->context.GetServerInitialMetadata();
    if (initial.find("idempotent-replayed") != initial.end()) {
      tally_.fail("gRPC: a fresh idempotency key was answered as a replay");
      return;
    }
    tally_.ok(call_->started, steady::now());
  }

 private:
  v1::WalletService::Stub& stub_;
  grpc::CompletionQueue& queue_;
  std::string token_;
  call_source& source_;
  tally& tally_;
  std::unique_ptr<grpc_call> call_;
};

void run_grpc(const options& o, const std::vector<std::unique_ptr<v1::WalletService::Stub>>& stubs,
              std::size_t first_client, std::size_t clients, std::size_t thread, tally& t) {
  grpc::CompletionQueue queue;
  call_source source(o.users, thread);
  std::vector<std::unique_ptr<grpc_client>> all;
  for (std::size_t i = 0; i < clients; ++i) {
    all.push_back(std::make_unique<grpc_client>(*stubs[(first_client + i) % stubs.size()], queue, o, source, t));
  }
  std::size_t active = 0;
  for (auto& c : all) {
    if (c->next()) ++active;
  }
  void* tag = nullptr;
  bool ok = false;
  while (active > 0 && queue.Next(&tag, &ok)) {
    auto* client = static_cast<grpc_client*>(tag);
    client->answered();
    if (t.failed > 0 || !client->next()) --active;
  }
  queue.Shutdown();
  while (queue.Next(&tag, &ok)) {
  }
}

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "wallet_load: " << problem
            << "\nusage: wallet_load --api http|grpc --port P [--host 127.0.0.1] [--clients 8] [--seconds 10]\n"
               "                   [--warmup 2] [--users 10000] [--threads 1] [--connections 4] [--token T]\n"
               "                   [--latencies FILE]\n";
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  auto number = [&](int& i, long long min, long long max) {
    if (++i >= argc) usage(fmt::format("{} needs a value", argv[i - 1]));
    char* end = nullptr;
    const long long v = std::strtoll(argv[i], &end, 10);
    if (*end != '\0' || v < min || v > max)
      usage(fmt::format("{} must be {}..{}, got {}", argv[i - 1], min, max, argv[i]));
    return v;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--api" && i + 1 < argc) {
      o.api = argv[++i];
    } else if (arg == "--host" && i + 1 < argc) {
      o.host = argv[++i];
    } else if (arg == "--token" && i + 1 < argc) {
      o.token = argv[++i];
    } else if (arg == "--latencies" && i + 1 < argc) {
      o.latencies_file = argv[++i];
    } else if (arg == "--port") {
      o.port = static_cast<std::uint16_t>(number(i, 1, 65535));
    } else if (arg == "--clients") {
      o.clients = static_cast<std::size_t>(number(i, 1, 10000));
    } else if (arg == "--seconds") {
      o.seconds = std::chrono::seconds(number(i, 1, 86400));
    } else if (arg == "--warmup") {
      o.warmup = std::chrono::seconds(number(i, 0, 3600));
    } else if (arg == "--users") {
      o.users = number(i, 1, 1'000'000'000);
    } else if (arg == "--threads") {
      o.threads = static_cast<std::size_t>(number(i, 1, 64));
    } else if (arg == "--connections") {
      o.connections = static_cast<std::size_t>(number(i, 1, 1000));
    } else {
      usage("unknown argument " + arg);
    }
  }
  if (o.api != "http" && o.api != "grpc") usage("--api must be http or grpc");
  if (o.port == 0) usage("--port is required");
  o.threads = std::min(o.threads, o.clients);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  // As in wallet-service: Debian's Abseil checks lock order on every grpc mutex, a development aid
  // that costs the client CPU the server then lacks.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::unique_ptr<v1::WalletService::Stub>> stubs;
  if (o.api == "grpc") {
    for (std::size_t i = 0; i < std::min(o.clients, o.connections); ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own per channel
      // A load client must see every failure, so no transparent retries (the retry filter also
      // costs the client about a tenth of its CPU per call); no channelz counters, read by nothing.
      args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
      args.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
      args.SetInt("wallet_load.channel", static_cast<int>(i));
      auto channel =
          grpc::CreateCustomChannel(fmt::format("{}:{}", o.host, o.port), grpc::InsecureChannelCredentials(), args);
      if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
        std::cerr << "wallet_load: cannot connect to grpc://" << o.host << ":" << o.port << "\n";
        return 1;
      }
      stubs.push_back(v1::WalletService::NewStub(channel));
    }
  }

  const auto begin = steady::now() + o.warmup;
  const auto end = begin + o.seconds;
  std::vector<tally> tallies(o.threads, tally{begin, end, {}, 0, 0, {}});
  std::vector<std::thread> threads;
  std::size_t first = 0;
  for (std::size_t t = 0; t < o.threads; ++t) {
    const std::size_t clients = o.clients / o.threads + (t < o.clients % o.threads ? 1 : 0);
    threads.emplace_back([&, t, first, clients] {
      try {
        if (o.api == "http") {
          run_http(o, clients, t, tallies[t]);
        } else {
          run_grpc(o, stubs, first, clients, t, tallies[t]);
        }
      } catch (const std::exception& e) {
        tallies[t].fail(std::string("client thread: ") + e.what());
      }
    });
    first += clients;
  }
  for (auto& thread : threads) thread.join();

  std::vector<std::int64_t> latencies;
  std::int64_t failed = 0;
  std::int64_t answered = 0;
  for (auto& t : tallies) {
    latencies.insert(latencies.end(), t.latencies_us.begin(), t.latencies_us.end());
    failed += t.failed;
    answered += t.answered;
    for (const auto& f : t.failures) std::cerr << "wallet_load: failed: " << f << "\n";
  }
  if (!o.latencies_file.empty()) {
    std::ofstream file(o.latencies_file);
    for (const auto us : latencies) file << us << '\n';
    if (!file.flush()) {
      std::cerr << "wallet_load: cannot write " << o.latencies_file << "\n";
      return 1;
    }
  }
  const auto ok = static_cast<std::int64_t>(latencies.size());
  bench::result("ok_per_s", static_cast<double>(ok) / std::chrono::duration<double>(o.seconds).count());
  bench::result("ok", ok);
  bench::result("failed", failed);
  // For CPU per call: every OK answer of the run, and this client's own CPU time.
  bench::result("answered", answered);
  bench::result("client_cpu_ms_per_call",
                answered > 0 ? bench::proc_cpu_seconds(::getpid()) * 1000.0 / static_cast<double>(answered) : 0.0);
  bench::print_latencies("", fmt::format("{} {} clients", o.api, o.clients), std::move(latencies));
  return failed == 0 ? 0 : 1;
}
