// Per-test schemas and the database backends a process holds (test_support.hpp).
#include "test_support.hpp"

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "common/migrate.hpp"

namespace test_support {

test_schema::test_schema(migrations m) : test_schema(require_env("DATABASE_URL"), m) {}

test_schema::test_schema(std::string base_url, migrations m) : base_url_(std::move(base_url)), name_(unique_name("t")) {
  url_ = base_url_ + (base_url_.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name_;
  {
    pqxx::connection admin(base_url_);
    pqxx::nontransaction tx(admin);
    tx.exec0("CREATE SCHEMA " + tx.quote_name(name_));
  }
  if (m == migrations::none) return;
  auto connection = connect();
  common::migrator(connection, common::default_migrations_dir()).up();
}

test_schema::~test_schema() {
  try {
    pqxx::connection admin(base_url_);
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP SCHEMA IF EXISTS " + tx.quote_name(name_) + " CASCADE");
  } catch (const std::exception&) {
    // A test that failed may leave its schema behind; scripts/services down removes the data dir anyway.
  }
}

pqxx::connection test_schema::connect() const { return pqxx::connection(url_); }

common::database_config test_schema::database_config(std::string application_name) const {
  common::database_config config;
  config.url = url_;
  config.application_name = std::move(application_name);
  return config;
}

namespace {

int database_port() {
  static const std::regex port(R"(://[^/?]*:(\d+)(?:[/?]|$))");
  const auto url = test_support::require_env("DATABASE_URL");
  std::smatch match;
  return std::regex_search(url, match, port) ? std::stoi(match[1].str()) : 5432;
}

// Local ports of `os_pid`'s TCP sockets connected to `remote_port`, from /proc/<pid>/net/tcp{,6}
// matched against the socket inodes of /proc/<pid>/fd.
std::vector<int> local_ports_to(int os_pid, int remote_port) {
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", os_pid), ec)) {
    std::error_code link_ec;
    const auto target = std::filesystem::read_symlink(entry.path(), link_ec).string();
    if (!link_ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::vector<int> ports;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in(fmt::format("/proc/{}/net/{}", os_pid, table));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
      if (!inodes.contains(inode)) continue;
      const int rport = std::stoi(remote.substr(remote.rfind(':') + 1), nullptr, 16);
      if (rport == remote_port) ports.push_back(std::stoi(local.substr(local.rfind(':') + 1), nullptr, 16));
    }
  }
  return ports;
}

}  // namespace

std::vector<int> database_backends(int os_pid, pqxx::connection& db) {
  const auto ports = local_ports_to(os_pid, database_port());
  if (ports.empty()) return {};
  std::string array = "{";
  for (std::size_t i = 0; i < ports.size(); ++i) array += (i > 0 ? "," : "") + std::to_string(ports[i]);
  array += "}";
  pqxx::nontransaction tx(db);
  std::vector<int> pids;
  for (const auto& r :
       tx.exec_params("SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND client_addr IS NOT NULL "
                      "AND host(client_addr) IN ('127.0.0.1', '::1')",
                      array)) {
    pids.push_back(r[0].as<int>());
  }
  return pids;
}

}  // namespace test_support
