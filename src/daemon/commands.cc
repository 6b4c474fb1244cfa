// The commands that only talk to Postgres (validate, sync, status, explain, uninstall).
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "pg_catalog.h"
#include "tally/compiler/plan.h"
#include "tally/daemon/daemon.h"
#include "tally/pg/connection.h"

namespace tally::daemon {

using pg::QuoteIdentifier;

namespace {

int Fail(const Status& s) {
  std::cerr << "tally: " << s.message() << "\n";
  return ExitCodeFor(s);
}

}  // namespace

int CommandValidate(const Config& config, std::ostream& out) {
  auto conn = pg::PgConn::Connect(config.source_dsn);
  if (!conn.ok()) return Fail(conn.status());
  PgCatalog catalog(conn->get());
  int rc = 0;
  for (const auto& v : config.views) {
    auto plan = compiler::CompileView(v.name, v.query, catalog);
    if (plan.ok()) {
      if (v.mode == ViewMode::kRefresh) {
        out << v.name
            << ": refresh (mode = \"refresh\" in the config; refresh mode is not "
               "implemented yet)\n";
        rc = std::max(rc, 2);
      } else {
        out << v.name << ": incremental (single table " << plan->source.QualifiedName() << ", "
            << plan->aggregates.size() << " aggregate(s))\n";
      }
      continue;
    }
    const Status& s = plan.status();
    std::string where = config.path + ":" + std::to_string(v.line);
    if (s.code() == StatusCode::kNotSupported) {
      out << v.name << ": refresh (" << s.message() << ")\n";
      std::cerr << "tally: view " << v.name << " (" << where << "): " << s.message()
                << (v.mode == ViewMode::kIncremental
                        ? " (mode = \"incremental\")"
                        : " (refresh mode is not implemented yet, so the view cannot be managed)")
                << "\n";
    } else {
      std::cerr << "tally: view " << v.name << " (" << where << "): " << s.message() << "\n";
    }
    rc = std::max(rc, ExitCodeFor(s));
  }
  return rc;
}

int CommandExplain(const Config& config, const CommandOptions& opts, std::ostream& out) {
  const ViewConfig* v = config.FindView(opts.view);
  if (v == nullptr) return Fail(Status::InvalidArgument("no view named '" + opts.view + "'"));
  auto conn = pg::PgConn::Connect(config.source_dsn);
  if (!conn.ok()) return Fail(conn.status());
  PgCatalog catalog(conn->get());
  auto plan = compiler::CompileView(v->name, v->query, catalog);
  if (!plan.ok()) return Fail(plan.status().WithContext("view " + v->name));
  out << compiler::ExplainPlan(*plan);
  return 0;
}

int CommandSync(const Config& config, const CommandOptions& opts, std::ostream&) {
  auto conn = pg::PgConn::Connect(config.source_dsn);
  if (!conn.ok()) return Fail(conn.status());
  // The barrier travels in the stream: once every view's applied position passes the
  // message's commit, every transaction committed before it is in the summaries.
  auto r = (*conn)->Exec("SELECT pg_logical_emit_message(true, 'tally.sync', '')");
  if (!r.ok()) return Fail(r.status());
  std::string barrier(r->get(0, 0));
  std::vector<std::string> names;
  for (const auto& v : config.views) names.push_back(v.name);
  auto sink = pg::PgConn::Connect(config.sink_dsn);
  if (!sink.ok()) return Fail(sink.status());
  auto deadline = std::chrono::steady_clock::now() + opts.timeout;
  // Without a consumer on the slot nothing will ever pass the barrier: say so instead of
  // waiting out the timeout (after a grace period for a daemon that is starting).
  auto consumer_seen = std::chrono::steady_clock::now();
  for (;;) {
    auto q = (*sink)->ExecParams(
        "SELECT count(*) FILTER (WHERE applied_lsn > $2::pg_lsn), count(*) FROM " +
            QuoteIdentifier(config.meta_schema) + ".views WHERE name = ANY($1::text[])",
        {pg::TextArrayLiteral(names), barrier});
    if (q.ok() && q->get(0, 0) == std::to_string(names.size())) return 0;
    if (!q.ok() && !q.status().retryable() && q.status().code() != StatusCode::kInvalidArgument) {
      return Fail(q.status());
    }
    auto active = (*conn)->ExecParams(
        "SELECT active FROM pg_replication_slots WHERE slot_name = $1", {config.slot});
    if (active.ok() && active->rows() == 1 && active->get(0, 0) == "t") {
      consumer_seen = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - consumer_seen > std::chrono::seconds(20)) {
      std::cerr << "tally: sync: no `tally run` is consuming slot " << config.slot
                << " (for 20 s); the views are at their last applied position\n";
      return 1;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "tally: sync timed out after " << opts.timeout.count()
                << " ms waiting for the views to pass " << barrier
                << " (is `tally run` running?)\n";
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int CommandStatus(const Config& config, const CommandOptions& opts, std::ostream& out) {
  auto conn = pg::PgConn::Connect(config.sink_dsn);
  if (!conn.ok()) return Fail(conn.status());
  const std::string m = QuoteIdentifier(config.meta_schema);
  // last_reconcile: the newest run in reconcile_log (or the views column, whichever is later).
  auto r = (*conn)->Exec(
      "SELECT v.name, v.mode, v.applied_lsn::text, f.lag_bytes, f.staleness_seconds, v.groups, "
      "greatest(v.last_reconcile, (SELECT max(run_at) FROM " +
      m +
      ".reconcile_log c WHERE c.view_name = v.name))::text, v.applied_at::text, "
      "(SELECT max(finished_at) FROM " +
      m + ".refresh_log l WHERE l.view_name = v.name)::text, f.tally_running FROM " + m +
      ".views v JOIN " + m + ".freshness f ON f.view_name = v.name ORDER BY v.name");
  if (!r.ok()) return Fail(r.status());
  auto text = [&](int i, int c) {
    return r->is_null(i, c) ? nlohmann::json() : nlohmann::json(r->get(i, c));
  };
  nlohmann::json views = nlohmann::json::array();
  for (int i = 0; i < r->rows(); ++i) {
    nlohmann::json v;
    v["name"] = r->get(i, 0);
    v["mode"] = r->get(i, 1);
    v["applied_lsn"] = text(i, 2);
    v["lag_bytes"] =
        r->is_null(i, 3) ? nlohmann::json() : nlohmann::json(std::stoll(std::string(r->get(i, 3))));
    v["staleness_seconds"] =
        r->is_null(i, 4) ? nlohmann::json() : nlohmann::json(std::stod(std::string(r->get(i, 4))));
    v["groups"] = std::stoll(std::string(r->get(i, 5)));
    v["last_reconcile"] = text(i, 6);
    v["applied_at"] = text(i, 7);
    v["last_refresh"] = text(i, 8);
    v["tally_running"] = r->get(i, 9) == "t";
    views.push_back(v);
  }
  if (opts.json) {
    out << nlohmann::json{{"views", views}}.dump(2) << "\n";
    return 0;
  }
  out << std::left << std::setw(28) << "view" << std::setw(13) << "mode" << std::setw(16)
      << "applied_lsn" << std::setw(12) << "lag_bytes" << std::setw(11) << "stale_s"
      << std::setw(10) << "groups"
      << "last_reconcile\n";
  for (const auto& v : views) {
    auto str = [](const nlohmann::json& j) {
      return j.is_null() ? std::string("-") : j.is_string() ? j.get<std::string>() : j.dump();
    };
    out << std::left << std::setw(28) << str(v["name"]) << std::setw(13) << str(v["mode"])
        << std::setw(16) << str(v["applied_lsn"]) << std::setw(12) << str(v["lag_bytes"])
        << std::setw(11) << str(v["staleness_seconds"]) << std::setw(10) << str(v["groups"])
        << str(v["last_reconcile"]) << "\n";
  }
  if (!views.empty() && !views[0]["tally_running"].get<bool>()) {
    out << "(no `tally run` is reporting: staleness is the time since each view's last batch)\n";
  }
  return 0;
}

int CommandUninstall(const Config& config, std::ostream& out) {
  auto source = pg::PgConn::Connect(config.source_dsn);
  if (!source.ok()) return Fail(source.status());
  auto sink = pg::PgConn::Connect(config.sink_dsn);
  if (!sink.ok()) return Fail(sink.status());
  auto& src = **source;
  auto& snk = **sink;
  const std::string m = QuoteIdentifier(config.meta_schema);
  // First what can refuse: a daemon still consuming the slot.
  auto slot = src.ExecParams(
      "SELECT active, active_pid FROM pg_replication_slots WHERE "
      "slot_name = $1",
      {config.slot});
  if (!slot.ok()) return Fail(slot.status());
  if (slot->rows() == 1 && slot->get(0, 0) == "t") {
    return Fail(Status::FailedPrecondition(
        "replication slot " + config.slot + " is in use (by process " +
        std::string(slot->get(0, 1)) + "): stop `tally run` first, then uninstall"));
  }
  auto views = snk.Exec("SELECT summary_schema, summary_table FROM " + m + ".views");
  if (views.ok()) {
    for (int i = 0; i < views->rows(); ++i) {
      auto s = snk.Exec("DROP TABLE IF EXISTS " + QuoteIdentifier(views->get(i, 0)) + "." +
                        QuoteIdentifier(views->get(i, 1)));
      if (!s.ok()) return Fail(s.status());
    }
  }
  if (slot->rows() == 1) {
    auto d = src.ExecParams("SELECT pg_drop_replication_slot($1)", {config.slot});
    if (!d.ok()) return Fail(d.status().WithContext("dropping slot " + config.slot));
  }
  std::vector<std::string> kept;
  // What sql/setup.sql made belongs to the DBA (sql/teardown.sql removes it): tally drops the
  // publication only if it owns it, and the meta schema only if it could create it again.
  auto pub = src.ExecParams(
      "SELECT pg_has_role(pubowner, 'USAGE'), pg_get_userbyid(pubowner) "
      "FROM pg_publication WHERE pubname = $1",
      {config.publication});
  if (!pub.ok()) return Fail(pub.status());
  if (pub->rows() == 1 && pub->get(0, 0) == "t") {
    auto d = src.Exec("DROP PUBLICATION " + QuoteIdentifier(config.publication));
    if (!d.ok()) return Fail(d.status());
  } else if (pub->rows() == 1) {
    kept.push_back("publication " + QuoteIdentifier(config.publication) + " (owned by " +
                   QuoteIdentifier(pub->get(0, 1)) + ")");
  }
  auto schema = snk.ExecParams(
      "SELECT n.oid, pg_has_role(n.nspowner, 'USAGE') AND "
      "has_database_privilege(current_database(), 'CREATE') FROM pg_namespace n "
      "WHERE n.nspname = $1",
      {config.meta_schema});
  if (!schema.ok()) return Fail(schema.status());
  if (schema->rows() == 1 && schema->get(0, 1) == "t") {
    auto d = snk.Exec("DROP SCHEMA " + m + " CASCADE");
    if (!d.ok()) return Fail(d.status());
  } else if (schema->rows() == 1) {
    // Empty it of what this role made, and leave the schema for the next init.
    auto rels = snk.ExecParams(
        "SELECT c.relname, c.relkind FROM pg_class c WHERE c.relnamespace = $1::oid AND "
        "c.relkind IN ('r', 'p', 'v', 'm') AND pg_has_role(c.relowner, 'USAGE')",
        {std::string(schema->get(0, 0))});
    if (!rels.ok()) return Fail(rels.status());
    for (int i = 0; i < rels->rows(); ++i) {
      const char kind = rels->get(i, 1)[0];
      const std::string what = kind == 'v' ? "VIEW" : kind == 'm' ? "MATERIALIZED VIEW" : "TABLE";
      auto d = snk.Exec("DROP " + what + " IF EXISTS " + m + "." +
                        QuoteIdentifier(rels->get(i, 0)) + " CASCADE");
      if (!d.ok()) return Fail(d.status());
    }
    kept.push_back("schema " + m + " (emptied)");
  }
  std::error_code ec;
  std::filesystem::remove_all(config.state_dir, ec);
  if (ec) return Fail(Status::IOError("removing " + config.state_dir + ": " + ec.message()));
  out << "uninstalled: summaries, slot " << config.slot << ", tally's tables in " << m
      << " and state " << config.state_dir << " removed";
  if (kept.empty()) {
    out << "; publication " << config.publication << " and schema " << m << " dropped\n";
  } else {
    out << "\nkept, as sql/setup.sql made them (sql/teardown.sql removes them):";
    for (const auto& k : kept) out << " " << k << ";";
    out << "\n";
  }
  return 0;
}

}  // namespace tally::daemon
