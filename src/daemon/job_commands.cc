// `tally reconcile` and `tally refresh` (and the client side of the command table, which
// `drop` and `init` use too: handoff.cc): with `tally run` consuming the slot, the work goes to
// that daemon through <meta_schema>.commands (a row, NOTIFY, and a wait for its answer); with
// no daemon, this process runs the daemon until the work is done.
#include <poll.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <iomanip>
#include <iostream>
#include <sstream>

#include "daemon_impl.h"
#include "tally/daemon/daemon.h"

namespace tally::daemon {

using nlohmann::json;
using pg::QuoteIdentifier;

namespace {

int Fail(const Status& s) {
  std::cerr << "tally: " << s.message() << "\n";
  return ExitCodeFor(s);
}

// How long a command may wait for a running daemon to pick it up.
constexpr auto kPickupTimeout = std::chrono::seconds(60);
// How long the slot may have no consumer before a running command is given up.
constexpr auto kConsumerGone = std::chrono::seconds(15);

}  // namespace

Result<bool> DaemonRunning(pg::PgConn& source, const Config& config) {
  TALLY_ASSIGN_OR_RETURN(
      auto r, source.ExecParams("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
                                {config.slot}));
  return r.rows() == 1 && !r.is_null(0, 0);
}

Result<JobResult> ViaDaemon(const Config& config, const JobRequest& request, pg::PgConn& source) {
  TALLY_ASSIGN_OR_RETURN(auto sink, pg::PgConn::Connect(config.sink_dsn));
  const std::string m = QuoteIdentifier(config.meta_schema);
  TALLY_RETURN_IF_ERROR(
      sink->Exec("LISTEN " + QuoteIdentifier(config.meta_schema + ".command_done")).status());
  json args = {{"views", request.views}, {"repair", request.repair}};
  if (!request.config_path.empty()) args["config"] = request.config_path;
  TALLY_ASSIGN_OR_RETURN(auto inserted,
                         sink->ExecParams("INSERT INTO " + m +
                                              ".commands (command, args) VALUES ($1, $2::jsonb) "
                                              "RETURNING id",
                                          {request.kind, args.dump()}));
  const std::string id(inserted.get(0, 0));
  TALLY_RETURN_IF_ERROR(
      sink->ExecParams("SELECT pg_notify($1, $2)", {config.meta_schema + ".commands", id})
          .status());
  spdlog::info("handed {} to the running daemon (command {})", request.kind, id);
  const auto submitted = std::chrono::steady_clock::now();
  auto consumer_seen = submitted;
  auto slot_checked = submitted;
  auto cancel = [&](const std::string& why) -> Status {
    auto r = sink->ExecParams("UPDATE " + m +
                                  ".commands SET status = 'cancelled', finished_at = now() WHERE "
                                  "id = $1 AND status = 'pending'",
                              {id});
    return Status::Unavailable("command " + id + ": " + why);
  };
  for (;;) {
    pollfd pfd{sink->socket(), POLLIN, 0};
    poll(&pfd, 1, 500);
    PQconsumeInput(sink->raw());
    while (PGnotify* n = PQnotifies(sink->raw())) PQfreemem(n);
    TALLY_ASSIGN_OR_RETURN(
        auto row, sink->ExecParams(
                      "SELECT status, result::text FROM " + m + ".commands WHERE id = $1", {id}));
    if (row.rows() == 0) return Status::FailedPrecondition("command " + id + " disappeared");
    const std::string status(row.get(0, 0));
    if (status == "done" || status == "failed") {
      json result = json::parse(row.get_opt(0, 1).value_or("{}"), nullptr, false);
      if (result.is_discarded()) return Status::Internal("command " + id + ": unreadable result");
      const int exit_code = result.value("exit_code", 1);
      if (status == "failed") {
        const std::string error = result.value("error", std::string("failed"));
        return exit_code == 2 ? Status::InvalidArgument(error) : Status::FailedPrecondition(error);
      }
      JobResult out;
      out.exit_code = exit_code;
      result.erase("exit_code");
      out.report = std::move(result);
      return out;
    }
    if (status == "cancelled") return Status::FailedPrecondition("command " + id + " cancelled");
    const auto now = std::chrono::steady_clock::now();
    if (g_stop_requested.load()) return cancel("interrupted");
    if (status == "pending" && now - submitted > kPickupTimeout) {
      return cancel("no running daemon picked it up in " + std::to_string(kPickupTimeout.count()) +
                    " s");
    }
    if (now - slot_checked > std::chrono::seconds(2)) {
      slot_checked = now;
      auto running = DaemonRunning(source, config);
      if (running.ok() && *running) consumer_seen = now;
      if (now - consumer_seen > kConsumerGone) {
        return cancel("the daemon stopped (slot " + config.slot + " has no consumer)");
      }
    }
  }
}

void LogToStderr(const std::string& name) {
  auto logger = spdlog::stderr_color_mt(name);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
}

namespace {

Result<JobResult> Dispatch(const Config& config, const JobRequest& request) {
  // The report goes to stdout (--json is parsed by scripts); progress to stderr.
  LogToStderr("tally-" + request.kind);
  TALLY_ASSIGN_OR_RETURN(auto source, pg::PgConn::Connect(config.source_dsn));
  TALLY_ASSIGN_OR_RETURN(bool running, DaemonRunning(*source, config));
  if (running) return ViaDaemon(config, request, *source);
  Daemon d(config);
  d.set_allow_lost_slot(request.kind == "reconcile");
  TALLY_RETURN_IF_ERROR(d.Prepare(/*create_missing=*/false));
  if (d.slot_lost()) return d.RunJobWithoutStream(request);
  return d.RunJobInProcess(request);
}

std::string KeyText(const json& key) {
  std::string s;
  for (const auto& [col, v] : key.items()) {
    s += (s.empty() ? "" : ", ") + col + "=" + (v.is_null() ? "NULL" : v.get<std::string>());
  }
  return "(" + s + ")";
}

void PrintReport(const json& report, std::ostream& out) {
  out << "reconciled at " << report.value("lsn", std::string("?")) << "\n";
  out << std::left << std::setw(28) << "view" << std::right << std::setw(9) << "missing"
      << std::setw(9) << "extra" << std::setw(11) << "different"
      << "  " << std::left << std::setw(10) << "repaired"
      << "state (missing/extra/different)\n";
  for (const auto& v : report["views"]) {
    const auto& st = v["state"];
    out << std::left << std::setw(28) << v["name"].get<std::string>() << std::right << std::setw(9)
        << v["missing"].get<int64_t>() << std::setw(9) << v["extra"].get<int64_t>() << std::setw(11)
        << v["different"].get<int64_t>() << "  " << std::left << std::setw(10)
        << (v["repaired"].get<bool>() ? "yes" : "no") << st["missing"].get<int64_t>() << "/"
        << st["extra"].get<int64_t>() << "/" << st["different"].get<int64_t>() << "\n";
    for (const auto& s : v["samples"]) {
      out << "    summary " << s["kind"].get<std::string>() << " " << KeyText(s["key"]) << "\n";
    }
    for (const auto& s : st["samples"]) {
      out << "    state " << s["kind"].get<std::string>() << " " << KeyText(s["key"]) << "\n";
    }
  }
}

}  // namespace

int CommandReconcile(const Config& config, const CommandOptions& opts, std::ostream& out) {
  JobRequest request;
  request.kind = "reconcile";
  request.repair = opts.repair;
  if (!opts.view.empty()) {
    if (config.FindView(opts.view) == nullptr) {
      return Fail(Status::InvalidArgument("no view named '" + opts.view + "' in " + config.path));
    }
    request.views.push_back(opts.view);
  }
  auto result = Dispatch(config, request);
  if (!result.ok()) return Fail(result.status());
  if (opts.json) {
    out << result->report.dump(2) << "\n";
  } else {
    PrintReport(result->report, out);
  }
  return result->exit_code;
}

int CommandRefresh(const Config& config, const CommandOptions& opts, std::ostream& out) {
  const ViewConfig* v = config.FindView(opts.view);
  if (v == nullptr) {
    return Fail(Status::InvalidArgument("no view named '" + opts.view + "' in " + config.path));
  }
  if (!opts.full) {
    // Every view tally manages today is incremental: it is current without a refresh.
    return Fail(Status::InvalidArgument(
        "view " + opts.view +
        " is maintained incrementally and is always current; `tally refresh --full` rebuilds "
        "it from a fresh snapshot"));
  }
  JobRequest request;
  request.kind = "refresh";
  request.views.push_back(opts.view);
  auto result = Dispatch(config, request);
  if (!result.ok()) return Fail(result.status());
  for (const auto& r : result->report["views"]) {
    out << "rebuilt " << r["name"].get<std::string>() << " at "
        << result->report.value("lsn", std::string("?")) << ": " << r["rows_changed"].get<int64_t>()
        << " summary row(s) changed\n";
  }
  return result->exit_code;
}

}  // namespace tally::daemon
