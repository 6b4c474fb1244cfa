#include "tally/sink/summary_writer.h"

#include <algorithm>

namespace tally::sink {

using pg::QuoteIdentifier;

std::vector<std::string> MetaSchemaDdl(const std::string& meta_schema) {
  const std::string m = QuoteIdentifier(meta_schema);
  return {
      "CREATE SCHEMA IF NOT EXISTS " + m,
      "CREATE TABLE IF NOT EXISTS " + m +
          ".views (name text PRIMARY KEY, mode text NOT NULL, definition text NOT NULL, "
          "applied_lsn pg_lsn, applied_at timestamptz, groups bigint NOT NULL DEFAULT 0, "
          "summary_schema text, summary_table text, last_reconcile timestamptz)",
      "CREATE TABLE IF NOT EXISTS " + m +
          ".refresh_log (view_name text NOT NULL, started_at timestamptz NOT NULL, "
          "finished_at timestamptz NOT NULL, mode text NOT NULL, rows_changed bigint NOT NULL, "
          "lsn pg_lsn)",
      "CREATE TABLE IF NOT EXISTS " + m +
          ".reconcile_log (view_name text NOT NULL, run_at timestamptz NOT NULL, lsn pg_lsn, "
          "missing bigint NOT NULL, extra bigint NOT NULL, different bigint NOT NULL, "
          "repaired boolean NOT NULL)",
      // Work handed to a running daemon (reconcile, refresh): the CLI inserts a row and
      // NOTIFYs "<meta_schema>.commands"; the daemon answers in `result` and NOTIFYs
      // "<meta_schema>.command_done" with the id.
      "CREATE TABLE IF NOT EXISTS " + m +
          ".commands (id bigserial PRIMARY KEY, command text NOT NULL, args jsonb NOT NULL "
          "DEFAULT '{}', requested_at timestamptz NOT NULL DEFAULT now(), started_at "
          "timestamptz, finished_at timestamptz, status text NOT NULL DEFAULT 'pending', "
          "result jsonb)",
      "CREATE OR REPLACE VIEW " + m +
          ".freshness AS SELECT name AS view_name, applied_at, "
          "CASE WHEN applied_lsn IS NULL THEN NULL "
          "WHEN pg_current_wal_lsn() <= applied_lsn THEN 0::float8 "
          "ELSE extract(epoch FROM now() - applied_at)::float8 END AS staleness_seconds, "
          "CASE WHEN applied_lsn IS NULL THEN NULL "
          "ELSE greatest(pg_current_wal_lsn() - applied_lsn, 0)::bigint END AS lag_bytes "
          "FROM " + m + ".views",
  };
}

RowSource RowsOf(const std::vector<engine::SinkRow>* rows) {
  return [rows](const RowVisitor& visit) -> Status {
    for (const auto& r : *rows) TALLY_RETURN_IF_ERROR(visit(r));
    return Status::Ok();
  };
}

SummaryWriter::SummaryWriter(std::unique_ptr<pg::PgConn> conn, std::string meta_schema)
    : conn_(std::move(conn)), meta_schema_(std::move(meta_schema)) {}

Status SummaryWriter::EnsureMetaSchema() { return conn_->ExecAll(MetaSchemaDdl(meta_schema_)); }

Status SummaryWriter::ApplyView(const ViewDelta& d) {
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
    TALLY_RETURN_IF_ERROR(conn_->Exec("CREATE TEMP TABLE IF NOT EXISTS " + qtemp + " (LIKE " +
                                      target + ", tally_op \"char\") ON COMMIT DELETE ROWS")
                              .status());
    temp_tables_.push_back(temp);
  }
  TALLY_RETURN_IF_ERROR(conn_->CopyInBegin("COPY " + qtemp + " (" + cols + ", tally_op) FROM STDIN"));
  std::string buf;
  buf.reserve(1 << 16);
  Status visited = d.rows([&](const engine::SinkRow& row) -> Status {
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

  if (!t.key_columns.empty() && !d.rewrite_all) {
    std::string match;
    for (int k : t.key_columns) {
      const std::string c = QuoteIdentifier(t.columns[k]);
      match += " AND s." + c + " IS NOT DISTINCT FROM d." + c;
    }
    TALLY_RETURN_IF_ERROR(conn_->Exec("DELETE FROM " + target + " s USING " + qtemp +
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
  auto fail = [&](Status s) {
    conn_->Exec("ROLLBACK").status().IgnoreError();
    return s;
  };
  for (const auto& st : extra) {
    auto r = conn_->ExecParams(st.sql, st.params);
    if (!r.ok()) return fail(r.status());
  }
  for (const auto& d : deltas) {
    Status s = ApplyView(d);
    if (!s.ok()) return fail(s.WithContext("writing summary of view " + d.view_name));
    auto r = conn_->ExecParams("UPDATE " + QuoteIdentifier(meta_schema_) +
                                   ".views SET groups = $2 WHERE name = $1",
                               {d.view_name, std::to_string(d.groups)});
    if (!r.ok()) return fail(r.status());
  }
  const std::string names = pg::TextArrayLiteral(all_views);
  auto r = conn_->ExecParams("UPDATE " + QuoteIdentifier(meta_schema_) +
                                 ".views SET applied_lsn = $2::pg_lsn, applied_at = now() "
                                 "WHERE name = ANY($1::text[]) AND (applied_lsn IS NULL OR "
                                 "applied_lsn < $2::pg_lsn)",
                             {names, position.ToString()});
  if (!r.ok()) return fail(r.status());
  auto c = conn_->Exec("COMMIT");
  if (!c.ok()) return c.status();
  return Status::Ok();
}

Status SummaryWriter::AdvancePosition(const std::vector<std::string>& views, Lsn position) {
  return ApplyBatch({}, views, position);
}

}  // namespace tally::sink
