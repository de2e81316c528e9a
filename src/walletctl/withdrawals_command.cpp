// walletctl withdrawals cancel ID [--by NAME]
//
// Records an operator's cancel request in the database and nothing else: walletctl never holds
// the hot wallet's key and never talks to a daemon. The broadcaster-worker of the withdrawal's
// chain acts on it: a pending withdrawal (nothing signed yet) is failed and refunded at once; a
// signed one has its nonce replaced by a 0-value self-transfer at bumped fees,
// and is refunded only once that cancel is chain.confirmations deep and no payment version was
// mined. If the payment wins the race, the withdrawal is confirmed and the cancel is moot.

#include <unistd.h>

#include <array>
#include <cstdlib>

#include <fmt/format.h>
#include <pqxx/pqxx>

#include "walletctl/commands.hpp"

namespace walletctl {

namespace {

// Who asked: --by, else the login name.
std::string requester(std::span<const std::string> args, std::size_t& used) {
  if (args.size() >= 2 && args[0] == "--by") {
    used = 2;
    if (args[1].empty()) throw usage_error("--by needs a name");
    return args[1];
  }
  used = 0;
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') return user;
  std::array<char, 256> name{};
  if (getlogin_r(name.data(), name.size()) == 0) return name.data();
  return fmt::format("uid {}", getuid());
}

int cancel(context& ctx, std::span<const std::string> args) {
  if (args.empty()) throw usage_error("cancel needs a withdrawal ID");
  const std::int64_t id = parse_id(args[0], "a withdrawal id");
  std::size_t used = 0;
  const std::string by = requester(args.subspan(1), used);
  if (args.size() != 1 + used) throw usage_error("unexpected argument \"" + args[1 + used] + "\"");

  pqxx::connection connection(common::connection_string(ctx.database));
  pqxx::work tx(connection);
  const auto row = tx.exec_params(
      "SELECT status, chain, cancel_requested_at IS NOT NULL, cancel_requested_by FROM withdrawals WHERE id = $1 "
      "FOR UPDATE",
      id);
  if (row.empty()) {
    ctx.out << fmt::format("withdrawal {} does not exist\n", id);
    return 1;
  }
  const auto status = row[0][0].as<std::string>();
  if (status == "confirmed" || status == "failed") {
    ctx.out << fmt::format("withdrawal {} is already {}: nothing to cancel\n", id, status);
    return 1;
  }
  if (row[0][2].as<bool>()) {
    ctx.out << fmt::format("withdrawal {} ({}): a cancel was already requested by {}\n", id, status,
                           row[0][3].as<std::string>());
    return 0;
  }
  tx.exec_params(
      "UPDATE withdrawals SET cancel_requested_at = now(), cancel_requested_by = $2, updated_at = now() "
      "WHERE id = $1",
      id, by);
  tx.commit();
  ctx.out << fmt::format(
      "withdrawal {} ({}, chain {}): cancel requested by {}.\n"
      "The broadcaster-worker of chain {} refunds it once nothing can be paid any more: at once if it is still "
      "pending, otherwise when its 0-value cancel is final on chain. If the payment is mined first it is confirmed "
      "instead.\n",
      id, status, row[0][1].as<std::string>(), by, row[0][1].as<std::string>());
  return 0;
}

}  // namespace

command withdrawals_command() {
  return {"withdrawals",
          "withdrawals list [--status S] [--older-than D] [--limit N] [--json] | show ID [--json]   (status, time in "
          "it, history, transaction versions and blocks) | cancel ID [--by NAME]   (ask the broadcaster to cancel; "
          "refunded when final)",
          [](context& ctx, std::span<const std::string> args) {
            if (args.empty()) throw usage_error("withdrawals needs list, show or cancel");
            if (args[0] == "list") return withdrawals_list(ctx, args.subspan(1));
            if (args[0] == "show") return withdrawals_show(ctx, args.subspan(1));
            if (args[0] == "cancel") return cancel(ctx, args.subspan(1));
            throw usage_error("unknown withdrawals subcommand \"" + args[0] + "\"");
          }};
}

}  // namespace walletctl
