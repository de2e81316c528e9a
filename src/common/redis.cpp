#include "common/redis.hpp"

#include <charconv>

#include <fmt/format.h>
#include <hiredis/hiredis.h>

namespace common::redis {

endpoint parse_url(const std::string& url) {
  constexpr std::string_view scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) throw std::invalid_argument(fmt::format("must start with redis://, got \"{}\"", url));
  std::string_view rest(url);
  rest.remove_prefix(scheme.size());
  endpoint out;
  std::string_view db;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    auto port = rest.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc{} || ptr != port.data() + port.size() || out.port <= 0 || out.port > 65535) {
      throw std::invalid_argument(fmt::format("bad port in \"{}\"", url));
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) throw std::invalid_argument(fmt::format("missing host in \"{}\"", url));
  out.host = std::string(rest);
  if (!db.empty()) {
    auto [ptr, ec] = std::from_chars(db.data(), db.data() + db.size(), out.database);
    if (ec != std::errc{} || ptr != db.data() + db.size())
      throw std::invalid_argument(fmt::format("bad database number in \"{}\"", url));
  }
  return out;
}

void connection::context_deleter::operator()(redisContext* context) const noexcept { redisFree(context); }

std::string parse_url_config(config_reader& reader, mq_type mq) {
  auto url = reader.get_string("redis.url", "redis://127.0.0.1:6379", {"REDIS_URL"});
  if (mq == mq_type::redis) {
    try {
      static_cast<void>(parse_url(url));
    } catch (const std::invalid_argument& e) {
      throw config_error("redis.url", fmt::format("redis.url: {}", e.what()));
    }
  }
  return url;
}

namespace {
timeval to_timeval(std::chrono::milliseconds timeout) {
  return timeval{static_cast<time_t>(timeout.count() / 1000),
                 static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
}

reply convert(const redisReply* raw) {
  reply out;
  switch (raw->type) {
    case REDIS_REPLY_INTEGER:
      out.type = reply::kind::integer;
      out.integer = raw->integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = raw->type == REDIS_REPLY_STRING   ? reply::kind::string
                 : raw->type == REDIS_REPLY_STATUS ? reply::kind::status
                                                   : reply::kind::error;
      out.text.assign(raw->str, raw->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = reply::kind::array;
      out.elements.reserve(raw->elements);
      for (size_t i = 0; i < raw->elements; ++i) out.elements.push_back(convert(raw->element[i]));
      break;
    default:
      out.type = reply::kind::nil;
  }
  return out;
}

struct reply_deleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
}  // namespace

connection::connection(const endpoint& where, std::chrono::milliseconds timeout) {
  const timeval tv = to_timeval(timeout);
  context_.reset(redisConnectWithTimeout(where.host.c_str(), where.port, tv));
  if (!context_) throw connection_error("redis: out of memory allocating a connection");
  if (context_->err != 0)
    throw connection_error(fmt::format("redis {}:{}: {}", where.host, where.port, context_->errstr));
  redisSetTimeout(context_.get(), tv);
  if (where.database != 0) {
    auto r = command({"SELECT", std::to_string(where.database)});
    if (r.is_error()) throw connection_error("redis: SELECT failed: " + r.text);
  }
}

connection::~connection() = default;
connection::connection(connection&&) noexcept = default;
connection& connection::operator=(connection&&) noexcept = default;

void connection::append(const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  args.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lengths.push_back(a.size());
  }
  if (redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), args.data(), lengths.data()) != REDIS_OK) {
    throw connection_error(fmt::format("redis: {}", context_->errstr));
  }
}

void connection::flush() {
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(context_.get(), &done) != REDIS_OK)
      throw connection_error(fmt::format("redis: {}", context_->errstr));
  }
}

reply connection::read_reply() {
  void* raw = nullptr;
  if (redisGetReply(context_.get(), &raw) != REDIS_OK || raw == nullptr) {
    throw connection_error(fmt::format("redis: {}", context_->err != 0 ? context_->errstr : "no reply"));
  }
  std::unique_ptr<redisReply, reply_deleter> owned(static_cast<redisReply*>(raw));
  return convert(owned.get());
}

reply connection::command(const std::vector<std::string>& argv) {
  append(argv);
  return read_reply();
}

}  // namespace common::redis
