#include "tally/sink/summary_writer.h"

#include <algorithm>

namespace tally::sink {

using pg::QuoteIdentifier;

std::vector<std::string> MetaSchemaDdl(const std::string& meta_schema) {
  const std::string m = QuoteIdentifier(meta_schema);
  const std::string dead = std::to_string(Monitor::kDeadAfterSeconds);
  // The daemon is taken as running while its row says so and is fresh (it writes at least
  // every Monitor::kHeartbeat); then staleness is the age of the oldest commit it received and
  // has not applied. With no daemon running nothing can say which of the commits since the
  // last batch touch the view's tables: staleness is then the time since that batch.
  const std::string running =
      "coalesce(d.running AND d.reported_at > now() - interval '" + dead + " seconds', false)";
  return {
      "CREATE TABLE IF NOT EXISTS " + m +
          ".views (name text PRIMARY KEY, mode text NOT NULL, definition text NOT NULL, "
          "applied_lsn pg_lsn, applied_at timestamptz, groups bigint NOT NULL DEFAULT 0, "
          "summary_schema text, summary_table text, last_reconcile timestamptz)",
      "CREATE TABLE IF NOT EXISTS " + m +
          ".refresh_log (view_name text NOT NULL, started_at timestamptz NOT NULL, "
          "finished_at timestamptz NOT NULL, mode text NOT NULL, rows_changed bigint NOT NULL, "
          "lsn pg_lsn)",
      // Stream batches fold into one row per view and minute (`minute`; NULL for backfills
      // and refreshes, which get a row each).
      "ALTER TABLE " + m + ".refresh_log ADD COLUMN IF NOT EXISTS minute timestamptz",
      "ALTER TABLE " + m +
          ".refresh_log ADD COLUMN IF NOT EXISTS batches bigint NOT NULL DEFAULT 1",
      "CREATE UNIQUE INDEX IF NOT EXISTS refresh_log_minute ON " + m +
          ".refresh_log (view_name, mode, minute)",
      "CREATE INDEX IF NOT EXISTS refresh_log_finished_at ON " + m + ".refresh_log (finished_at)",
      "CREATE TABLE IF NOT EXISTS " + m +
          ".reconcile_log (view_name text NOT NULL, run_at timestamptz NOT NULL, lsn pg_lsn, "
          "missing bigint NOT NULL, extra bigint NOT NULL, different bigint NOT NULL, "
          "repaired boolean NOT NULL)",
      "CREATE TABLE IF NOT EXISTS " + m +
          ".daemon (id boolean PRIMARY KEY DEFAULT true CHECK (id), running boolean NOT NULL, "
          "pid int, reported_at timestamptz NOT NULL, oldest_unapplied_commit_at timestamptz, "
          "source_wal_lsn pg_lsn, source_is_sink boolean NOT NULL DEFAULT true)",
      // Work handed to a running daemon (reconcile, refresh): the CLI inserts a row and
      // NOTIFYs "<meta_schema>.commands"; the daemon answers in `result` and NOTIFYs
      // "<meta_schema>.command_done" with the id.
      "CREATE TABLE IF NOT EXISTS " + m +
          ".commands (id bigserial PRIMARY KEY, command text NOT NULL, args jsonb NOT NULL "
          "DEFAULT '{}', requested_at timestamptz NOT NULL DEFAULT now(), started_at "
          "timestamptz, finished_at timestamptz, status text NOT NULL DEFAULT 'pending', "
          "result jsonb)",
      "CREATE OR REPLACE VIEW " + m +
          ".freshness AS SELECT v.name AS view_name, v.applied_at, "
          "CASE WHEN v.applied_lsn IS NULL THEN NULL "
          "WHEN NOT " +
          running +
          " THEN greatest(extract(epoch FROM now() - v.applied_at), 0)::float8 "
          "WHEN d.oldest_unapplied_commit_at IS NOT NULL THEN "
          "greatest(extract(epoch FROM now() - d.oldest_unapplied_commit_at), 0)::float8 "
          "ELSE 0::float8 END AS staleness_seconds, "
          "CASE WHEN v.applied_lsn IS NULL THEN NULL "
          "WHEN NOT " +
          running +
          " AND coalesce(d.source_is_sink, true) THEN "
          "greatest(pg_current_wal_lsn() - v.applied_lsn, 0)::bigint "
          // Until the daemon has learned the WAL end (just started, nothing received yet).
          "ELSE greatest(coalesce(d.source_wal_lsn, CASE WHEN coalesce(d.source_is_sink, true) "
          "THEN pg_current_wal_lsn() END, v.applied_lsn) - v.applied_lsn, 0)::bigint END "
          "AS lag_bytes, " +
          running +
          " AS tally_running "
          "FROM " +
          m + ".views v LEFT JOIN " + m + ".daemon d ON true",
  };
}

RowSource RowsOf(const std::vector<engine::SinkRow>* rows) {
  return [rows](const RowVisitor& visit) -> Status {
    for (const auto& r : *rows) TALLY_RETURN_IF_ERROR(visit(r));
    return Status::Ok();
  };
}

SummaryWriter::SummaryWriter(std::unique_ptr<pg::PgConn> conn, std::string meta_schema,
                             MonitorOptions monitor_options)
    : conn_(std::move(conn)),
      meta_schema_(std::move(meta_schema)),
      monitor_(meta_schema_, monitor_options) {}

Status SummaryWriter::EnsureMetaSchema() {
  // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists: a
  // role set up by sql/setup.sql has the schema and not that privilege.
  TALLY_ASSIGN_OR_RETURN(
      auto exists,
      conn_->ExecParams("SELECT 1 FROM pg_namespace WHERE nspname = $1", {meta_schema_}));
  if (exists.rows() == 0) {
    TALLY_ASSIGN_OR_RETURN(auto may,
                           conn_->Exec("SELECT has_database_privilege(current_database(), "
                                       "'CREATE'), current_user"));
    if (may.get(0, 0) != "t") {
      return Status::FailedPrecondition(
          "meta schema " + QuoteIdentifier(meta_schema_) + " does not exist and role " +
          std::string(may.get(0, 1)) +
          " may not create schemas in this database: run sql/setup.sql as a superuser (see "
          "sql/README.md), or CREATE SCHEMA " +
          QuoteIdentifier(meta_schema_) + " AUTHORIZATION " + QuoteIdentifier(may.get(0, 1)));
    }
    TALLY_RETURN_IF_ERROR(conn_->Exec("CREATE SCHEMA " + QuoteIdentifier(meta_schema_)).status());
  }
  Status s = conn_->ExecAll(MetaSchemaDdl(meta_schema_));
  if (!s.ok())
    return s.WithContext("creating tally's tables in schema " + QuoteIdentifier(meta_schema_));
  return Status::Ok();
}

Status SummaryWriter::GrantMonitoring(const std::string& role) {
  const std::string m = QuoteIdentifier(meta_schema_);
  const std::string r = QuoteIdentifier(role);
  return conn_->ExecAll({"GRANT USAGE ON SCHEMA " + m + " TO " + r,
                         "GRANT SELECT ON " + m + ".freshness, " + m + ".refresh_log TO " + r});
}

Status SummaryWriter::ApplyView(const ViewDelta& d, int64_t* written) {
  const SummaryTable& t = *d.table;
  const std::string target = QuoteIdentifier(t.schema) + "." + QuoteIdentifier(t.name);
  std::string cols;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (i) cols += ", ";
    cols += QuoteIdentifier(t.columns[i]);
  }
  if (d.rewrite_all || t.key_columns.empty()) {
    // No key (one-row view) or after TRUNCATE: the delta holds every row there is.
    TALLY_RETURN_IF_ERROR(conn_->Exec("DELETE FROM " + target).status());
  }
  const std::string temp = "tally_delta_" + t.name;
  const std::string qtemp = QuoteIdentifier(temp);
  if (std::find(temp_tables_.begin(), temp_tables_.end(), temp) == temp_tables_.end()) {
    TALLY_RETURN_IF_ERROR(conn_
                              ->Exec("CREATE TEMP TABLE IF NOT EXISTS " + qtemp + " (LIKE " +
                                     target + ", tally_op \"char\") ON COMMIT DELETE ROWS")
                              .status());
    temp_tables_.push_back(temp);
  }
  TALLY_RETURN_IF_ERROR(
      conn_->CopyInBegin("COPY " + qtemp + " (" + cols + ", tally_op) FROM STDIN"));
  std::string buf;
  buf.reserve(1 << 16);
  int64_t rows = 0;
  Status visited = d.rows([&](const engine::SinkRow& row) -> Status {
    ++rows;
    for (size_t i = 0; i < row.columns.size(); ++i) {
      if (row.columns[i]) {
        pg::AppendCopyEscaped(*row.columns[i], &buf);
      } else {
        buf += "\\N";
      }
      buf += '\t';
    }
    buf += row.is_delete ? "d\n" : "u\n";
    if (buf.size() > (1 << 16)) {
      TALLY_RETURN_IF_ERROR(conn_->CopyInPut(buf));
      buf.clear();
    }
    return Status::Ok();
  });
  if (!visited.ok()) {
    // End the COPY so the connection is usable for the ROLLBACK.
    PQputCopyEnd(conn_->raw(), "tally: reading summary rows failed");
    conn_->CopyInEnd().IgnoreError();
    return visited;
  }
  TALLY_RETURN_IF_ERROR(conn_->CopyInPut(buf));
  TALLY_RETURN_IF_ERROR(conn_->CopyInEnd());
  *written = rows;

  if (!t.key_columns.empty() && !d.rewrite_all) {
    std::string match;
    for (int k : t.key_columns) {
      const std::string c = QuoteIdentifier(t.columns[k]);
      match += " AND s." + c + " IS NOT DISTINCT FROM d." + c;
    }
    TALLY_RETURN_IF_ERROR(conn_
                              ->Exec("DELETE FROM " + target + " s USING " + qtemp +
                                     " d WHERE d.tally_op = 'd'" + match)
                              .status());
  }
  std::string insert = "INSERT INTO " + target + " (" + cols + ") SELECT " + cols + " FROM " +
                       qtemp + " WHERE tally_op = 'u'";
  if (!t.key_columns.empty() && !d.rewrite_all) {
    std::string keys, sets;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      const std::string c = QuoteIdentifier(t.columns[i]);
      if (std::find(t.key_columns.begin(), t.key_columns.end(), static_cast<int>(i)) !=
          t.key_columns.end()) {
        keys += keys.empty() ? c : ", " + c;
      } else {
        sets += (sets.empty() ? "" : ", ") + c + " = EXCLUDED." + c;
      }
    }
    insert += " ON CONFLICT (" + keys + ") DO " + (sets.empty() ? "NOTHING" : "UPDATE SET " + sets);
  }
  return conn_->Exec(insert).status();
}

Status SummaryWriter::ApplyBatch(const std::vector<ViewDelta>& deltas,
                                 const std::vector<std::string>& all_views, Lsn position,
                                 const std::vector<Statement>& extra) {
  TALLY_RETURN_IF_ERROR(conn_->Exec("BEGIN; SET LOCAL synchronous_commit = on").status());
  const bool stream_batch = !all_views.empty();
  auto fail = [&](Status s) {
    conn_->Exec("ROLLBACK").status().IgnoreError();
    if (stream_batch) monitor_.Failed();
    return s;
  };
  for (const auto& st : extra) {
    auto r = conn_->ExecParams(st.sql, st.params);
    if (!r.ok()) return fail(r.status());
  }
  std::vector<Monitor::Written> written;
  for (const auto& d : deltas) {
    int64_t rows = 0;
    Status s = ApplyView(d, &rows);
    if (!s.ok()) return fail(s.WithContext("writing summary of view " + d.view_name));
    auto r = conn_->ExecParams(
        "UPDATE " + QuoteIdentifier(meta_schema_) + ".views SET groups = $2 WHERE name = $1",
        {d.view_name, std::to_string(d.groups)});
    if (!r.ok()) return fail(r.status());
    if (std::find(all_views.begin(), all_views.end(), d.view_name) != all_views.end()) {
      written.push_back({d.view_name, rows});
    }
  }
  const std::string names = pg::TextArrayLiteral(all_views);
  auto r = conn_->ExecParams("UPDATE " + QuoteIdentifier(meta_schema_) +
                                 ".views SET applied_lsn = $2::pg_lsn, applied_at = now() "
                                 "WHERE name = ANY($1::text[]) AND (applied_lsn IS NULL OR "
                                 "applied_lsn < $2::pg_lsn)",
                             {names, position.ToString()});
  if (!r.ok()) return fail(r.status());
  if (stream_batch) {
    for (const auto& st : monitor_.BatchStatements(written, position)) {
      auto m = conn_->ExecParams(st.sql, st.params);
      if (!m.ok()) return fail(m.status().WithContext("writing tally's monitoring rows"));
    }
  }
  auto c = conn_->Exec("COMMIT");
  if (!c.ok()) {
    if (stream_batch) monitor_.Failed();
    return c.status();
  }
  if (stream_batch) monitor_.Committed();
  return Status::Ok();
}

Status SummaryWriter::AdvancePosition(const std::vector<std::string>& views, Lsn position) {
  return ApplyBatch({}, views, position);
}

Status SummaryWriter::RunInTransaction(const std::vector<Statement>& statements) {
  TALLY_RETURN_IF_ERROR(conn_->Exec("BEGIN").status());
  for (const auto& st : statements) {
    auto r = conn_->ExecParams(st.sql, st.params);
    if (!r.ok()) {
      conn_->Exec("ROLLBACK").status().IgnoreError();
      monitor_.Failed();
      return r.status().WithContext("writing tally's monitoring rows");
    }
  }
  auto c = conn_->Exec("COMMIT");
  if (!c.ok()) {
    monitor_.Failed();
    return c.status();
  }
  monitor_.Committed();
  return Status::Ok();
}

Status SummaryWriter::ReportIfDue() {
  if (!monitor_.ReportDue()) return Status::Ok();
  return Report(true);
}

Status SummaryWriter::Report(bool running) {
  return RunInTransaction(monitor_.ReportStatements(running));
}

}  // namespace tally::sink
