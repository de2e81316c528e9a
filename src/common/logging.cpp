#include "common/logging.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/config.hpp"

namespace common {
namespace {

// "<N>" prefix of sd-daemon(3): journald parses it into the PRIORITY field.
class journal_priority_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr const char* prefixes[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    const auto index = static_cast<std::size_t>(msg.level);
    const std::string_view prefix = prefixes[index < std::size(prefixes) ? index : 6];
    dest.append(prefix.data(), prefix.data() + prefix.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<journal_priority_flag>(); }
};

spdlog::level::level_enum parse_level(std::string_view level) {
  for (int i = spdlog::level::trace; i <= spdlog::level::off; ++i) {
    const auto candidate = static_cast<spdlog::level::level_enum>(i);
    const auto name = spdlog::level::to_string_view(candidate);
    if (std::string_view(name.data(), name.size()) == level) return candidate;
  }
  if (level == "warn") return spdlog::level::warn;
  throw config_error("log.level", "log.level must be one of trace, debug, info, warn, error, critical, off, got \"" +
                                      std::string(level) + "\"");
}

}  // namespace

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  struct stat st {};
  if (fstat(fileno(stderr), &st) != 0) return false;
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

void init_logging(std::string_view daemon, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt(std::string(daemon));
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (stderr_is_journal()) {
    formatter->add_flag<journal_priority_flag>('*').set_pattern("%*%v");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [%n] %v");
  }
  logger->set_formatter(std::move(formatter));
  logger->set_level(parse_level(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
}

void set_log_level(std::string_view level) { spdlog::set_level(parse_level(level)); }

bool repeated_warning::warn(const std::string& text) {
  const auto now = std::chrono::steady_clock::now();
  if (text == last_ && now - last_at_ < interval_) return false;
  spdlog::warn("{}", text);
  last_ = text;
  last_at_ = now;
  return true;
}

bool repeated_warning::clear() {
  if (last_.empty()) return false;
  last_.clear();
  return true;
}

}  // namespace common
