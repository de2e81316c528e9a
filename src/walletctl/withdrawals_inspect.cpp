// walletctl withdrawals list [--status S] [--older-than D] [--limit N] [--json]
// walletctl withdrawals show ID [--json]
//
// Read-only views for operators: which withdrawals sit in a status and for how long (the alerts
// WithdrawalsStuckSigned / WithdrawalsStuckBroadcast / WithdrawalPendingTooLong point here), and
// one withdrawal's whole story: the row, every status change (withdrawal_status_history, migration
// 000005), every signed transaction version (withdrawal_transactions) and the block each was mined
// in. Amounts and fees are printed exactly as PostgreSQL stores them (decimal strings, wei).

#include <array>
#include <chrono>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "common/config.hpp"
#include "walletctl/commands.hpp"

namespace walletctl {

namespace {

using json = nlohmann::json;

constexpr std::array<std::string_view, 5> statuses = {"pending", "signed", "broadcast", "confirmed", "failed"};

// ISO 8601 in UTC with milliseconds, as `dead-letters list` prints times.
std::string iso(std::string_view column) {
  return fmt::format("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", column);
}

// When the withdrawal entered its current status: the last recorded change, else its creation.
constexpr std::string_view status_since =
    "coalesce((SELECT max(h.changed_at) FROM withdrawal_status_history h WHERE h.withdrawal_id = w.id), w.created_at)";

std::optional<std::string> text_or_null(const pqxx::field& f) {
  return f.is_null() ? std::nullopt : std::optional(f.as<std::string>());
}

json nullable(const std::optional<std::string>& value) { return value ? json(*value) : json(nullptr); }

// "3d 4h", "2h 5m", "5m 3s", "42s": how long, for people.
std::string human_age(double seconds) {
  const auto s = static_cast<long long>(seconds);
  if (s >= 86400) return fmt::format("{}d {}h", s / 86400, s % 86400 / 3600);
  if (s >= 3600) return fmt::format("{}h {}m", s / 3600, s % 3600 / 60);
  if (s >= 60) return fmt::format("{}m {}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

struct listed_withdrawal {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string status;
  std::string status_since;
  double status_age_seconds = 0;
  std::string amount;
  std::string chain;
  std::string to_address;
  std::optional<std::string> tx_hash;
  std::string created_at;
  bool cancel_requested = false;
};

}  // namespace

int withdrawals_list(context& ctx, std::span<const std::string> arguments) {
  std::vector<std::string> args(arguments.begin(), arguments.end());
  const bool as_json = take_flag(args, "--json");
  std::optional<std::string> status;
  std::optional<std::chrono::milliseconds> older_than;
  std::size_t limit = 100;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--status" && has_value) {
      status = args[++i];
      if (std::find(statuses.begin(), statuses.end(), *status) == statuses.end()) {
        throw usage_error("--status must be pending, signed, broadcast, confirmed or failed, got \"" + *status + "\"");
      }
    } else if (args[i] == "--older-than" && has_value) {
      try {
        older_than = common::parse_duration(args[++i]);
      } catch (const std::exception&) {
        throw usage_error("--older-than must be a duration such as 90s, 5m, 2h, got \"" + args[i] + "\"");
      }
    } else if (args[i] == "--limit" && has_value) {
      limit = parse_count(args[++i], "--limit");
    } else {
      throw usage_error("unknown list argument \"" + args[i] + "\"");
    }
  }

  pqxx::connection connection(common::connection_string(ctx.database));
  pqxx::read_transaction tx(connection);
  const auto rows = tx.exec_params(
      fmt::format("SELECT w.id, w.user_id, w.status, {since_iso}, extract(epoch FROM now() - s.since)::float8, "
                  "       w.amount::text, w.chain, w.to_address, w.tx_hash, {created_iso}, "
                  "       w.cancel_requested_at IS NOT NULL "
                  "FROM withdrawals w CROSS JOIN LATERAL (SELECT {since} AS since) s "
                  "WHERE ($1::text IS NULL OR w.status = $1) "
                  "  AND ($2::bigint IS NULL OR s.since <= now() - $2::bigint * interval '1 millisecond') "
                  "ORDER BY s.since, w.id LIMIT $3",
                  fmt::arg("since_iso", iso("s.since")), fmt::arg("created_iso", iso("w.created_at")),
                  fmt::arg("since", status_since)),
      status, older_than ? std::optional(older_than->count()) : std::nullopt, static_cast<std::int64_t>(limit));
  std::vector<listed_withdrawal> list;
  for (const auto& r : rows) {
    list.push_back({r[0].as<std::int64_t>(), r[1].as<std::int64_t>(), r[2].as<std::string>(), r[3].as<std::string>(),
                    r[4].as<double>(), r[5].as<std::string>(), r[6].as<std::string>(), r[7].as<std::string>(),
                    text_or_null(r[8]), r[9].as<std::string>(), r[10].as<bool>()});
  }

  if (as_json) {
    json out = json::array();
    for (const auto& w : list) {
      out.push_back({{"id", w.id},
                     {"user_id", w.user_id},
                     {"status", w.status},
                     {"status_since", w.status_since},
                     {"status_age_seconds", w.status_age_seconds},
                     {"amount", w.amount},
                     {"chain", w.chain},
                     {"to_address", w.to_address},
                     {"tx_hash", nullable(w.tx_hash)},
                     {"created_at", w.created_at},
                     {"cancel_requested", w.cancel_requested}});
    }
    ctx.out << out.dump(2) << "\n";
    return 0;
  }
  if (list.empty()) {
    ctx.out << "no withdrawals match\n";
    return 0;
  }
  constexpr std::string_view row_format = "{:>10}  {:>8}  {:<10}  {:<24}  {:>8}  {:>24}  {:<5}  {:<42}  {}\n";
  ctx.out << fmt::format(row_format, "ID", "USER", "STATUS", "SINCE", "AGE", "AMOUNT", "CHAIN", "TO", "TX HASH");
  for (const auto& w : list) {
    ctx.out << fmt::format(row_format, w.id, w.user_id, w.status + (w.cancel_requested ? "*" : ""), w.status_since,
                           human_age(w.status_age_seconds), w.amount, w.chain, w.to_address, w.tx_hash.value_or("-"));
  }
  if (std::any_of(list.begin(), list.end(), [](const auto& w) { return w.cancel_requested; })) {
    ctx.out << "* cancel requested (walletctl withdrawals cancel)\n";
  }
  if (list.size() == limit) ctx.out << fmt::format("(first {}; --limit N shows more)\n", limit);
  return 0;
}

int withdrawals_show(context& ctx, std::span<const std::string> arguments) {
  std::vector<std::string> args(arguments.begin(), arguments.end());
  const bool as_json = take_flag(args, "--json");
  if (args.size() != 1) throw usage_error("show needs exactly one withdrawal ID");
  const std::int64_t id = parse_id(args[0], "a withdrawal id");

  pqxx::connection connection(common::connection_string(ctx.database));
  pqxx::read_transaction tx(connection);  // one snapshot: the row, its history and versions agree
  const auto found = tx.exec_params(
      fmt::format("SELECT w.status, {since_iso}, w.user_id, w.chain, w.to_address, w.amount::text, {created_iso}, "
                  "       w.created_by, w.from_address, w.nonce::text, w.tx_hash, w.failure_reason, "
                  "       {cancel_iso}, w.cancel_requested_by "
                  "FROM withdrawals w WHERE w.id = $1",
                  fmt::arg("since_iso", iso(status_since)), fmt::arg("created_iso", iso("w.created_at")),
                  fmt::arg("cancel_iso", iso("w.cancel_requested_at"))),
      id);
  if (found.empty()) {
    ctx.out << fmt::format("withdrawal {} does not exist\n", id);
    return 1;
  }
  const auto& w = found[0];
  json withdrawal{{"id", id},
                  {"status", w[0].as<std::string>()},
                  {"status_since", w[1].as<std::string>()},
                  {"user_id", w[2].as<std::int64_t>()},
                  {"chain", w[3].as<std::string>()},
                  {"to_address", w[4].as<std::string>()},
                  {"amount", w[5].as<std::string>()},
                  {"created_at", w[6].as<std::string>()},
                  {"created_by", nullable(text_or_null(w[7]))},
                  {"from_address", nullable(text_or_null(w[8]))},
                  {"nonce", nullable(text_or_null(w[9]))},
                  {"tx_hash", nullable(text_or_null(w[10]))},
                  {"failure_reason", nullable(text_or_null(w[11]))},
                  {"cancel_requested_at", nullable(text_or_null(w[12]))},
                  {"cancel_requested_by", nullable(text_or_null(w[13]))}};

  // The first status is `pending` at creation (the trigger records changes only).
  json history = json::array({{{"status", "pending"}, {"at", w[6].as<std::string>()}, {"reason", nullptr}}});
  for (const auto& h : tx.exec_params(fmt::format("SELECT to_status, {}, reason FROM withdrawal_status_history "
                                                  "WHERE withdrawal_id = $1 ORDER BY changed_at, id",
                                                  iso("changed_at")),
                                      id)) {
    history.push_back(
        {{"status", h[0].as<std::string>()}, {"at", h[1].as<std::string>()}, {"reason", nullable(text_or_null(h[2]))}});
  }

  json versions = json::array();
  for (const auto& v : tx.exec_params(
           fmt::format("SELECT id, kind, nonce::text, tx_hash, max_fee_per_gas::text, max_priority_fee_per_gas::text, "
                       "       {}, {}, {}, mined_block_number::text, mined_block_hash, mined_success, {} "
                       "FROM withdrawal_transactions WHERE withdrawal_id = $1 ORDER BY id",
                       iso("created_at"), iso("sent_at"), iso("last_sent_at"), iso("discarded_at")),
           id)) {
    versions.push_back({{"id", v[0].as<std::int64_t>()},
                        {"kind", v[1].as<std::string>()},
                        {"nonce", v[2].as<std::string>()},
                        {"tx_hash", v[3].as<std::string>()},
                        {"max_fee_per_gas", nullable(text_or_null(v[4]))},
                        {"max_priority_fee_per_gas", nullable(text_or_null(v[5]))},
                        {"created_at", v[6].as<std::string>()},
                        {"sent_at", nullable(text_or_null(v[7]))},
                        {"last_sent_at", nullable(text_or_null(v[8]))},
                        {"mined_block_number", nullable(text_or_null(v[9]))},
                        {"mined_block_hash", nullable(text_or_null(v[10]))},
                        {"mined_success", v[11].is_null() ? json(nullptr) : json(v[11].as<bool>())},
                        {"discarded_at", nullable(text_or_null(v[12]))}});
  }

  if (as_json) {
    ctx.out << json{{"withdrawal", withdrawal}, {"status_history", history}, {"transactions", versions}}.dump(2)
            << "\n";
    return 0;
  }
  auto str = [](const json& value) { return value.is_null() ? std::string("-") : value.get<std::string>(); };
  ctx.out << fmt::format("withdrawal {}\n", id);
  ctx.out << fmt::format("  status:       {} since {}\n", str(withdrawal["status"]), str(withdrawal["status_since"]));
  ctx.out << fmt::format(
      "  user:         {}{}\n", withdrawal["user_id"].get<std::int64_t>(),
      withdrawal["created_by"].is_null() ? "" : " (created by " + str(withdrawal["created_by"]) + ")");
  ctx.out << fmt::format("  amount:       {} on {} to {}\n", str(withdrawal["amount"]), str(withdrawal["chain"]),
                         str(withdrawal["to_address"]));
  ctx.out << fmt::format("  from:         {} nonce {}\n", str(withdrawal["from_address"]), str(withdrawal["nonce"]));
  ctx.out << fmt::format("  tx hash:      {}\n", str(withdrawal["tx_hash"]));
  if (!withdrawal["failure_reason"].is_null())
    ctx.out << "  failure:      " << str(withdrawal["failure_reason"]) << "\n";
  if (!withdrawal["cancel_requested_at"].is_null()) {
    ctx.out << fmt::format("  cancel:       requested {} by {}\n", str(withdrawal["cancel_requested_at"]),
                           str(withdrawal["cancel_requested_by"]));
  }
  ctx.out << "\nstatus history\n";
  for (const auto& h : history) {
    ctx.out << fmt::format("  {}  {}{}\n", str(h["at"]), str(h["status"]),
                           h["reason"].is_null() ? "" : "  (" + str(h["reason"]) + ")");
  }
  ctx.out << "\ntransactions\n";
  if (versions.empty()) ctx.out << "  none signed yet\n";
  for (const auto& v : versions) {
    const std::string mined =
        v["mined_block_number"].is_null()
            ? std::string("not mined")
            : fmt::format("mined in block {} ({}){}", str(v["mined_block_number"]), str(v["mined_block_hash"]),
                          v["mined_success"].get<bool>() ? "" : ", reverted");
    ctx.out << fmt::format("  #{} {:<7} nonce {} {}\n", v["id"].get<std::int64_t>(), str(v["kind"]), str(v["nonce"]),
                           str(v["tx_hash"]));
    ctx.out << fmt::format("      fees {} / {} wei; signed {}, sent {}, last sent {}; {}{}\n",
                           str(v["max_fee_per_gas"]), str(v["max_priority_fee_per_gas"]), str(v["created_at"]),
                           str(v["sent_at"]), str(v["last_sent_at"]), mined,
                           v["discarded_at"].is_null() ? "" : "; discarded " + str(v["discarded_at"]));
  }
  return 0;
}

}  // namespace walletctl
