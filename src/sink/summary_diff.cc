#include "tally/sink/summary_diff.h"

#include <algorithm>

namespace tally::sink {

using pg::QuoteIdentifier;

namespace {

bool IsKey(const SummaryTable& t, size_t i) {
  return std::find(t.key_columns.begin(), t.key_columns.end(), static_cast<int>(i)) !=
         t.key_columns.end();
}

std::string Col(const std::string& alias, const std::string& column) {
  return alias + "." + QuoteIdentifier(column);
}

// Every key column of `alias` is non-NULL ("true" for a view without keys).
std::string NotNullKeys(const SummaryTable& t, const std::string& alias) {
  std::string s;
  for (int k : t.key_columns) {
    s += (s.empty() ? "" : " AND ") + Col(alias, t.columns[k]) + " IS NOT NULL";
  }
  return s.empty() ? "true" : "(" + s + ")";
}

// Keys equal: `=` (hashable) or null-safe.
std::string KeysMatch(const SummaryTable& t, const std::string& a, const std::string& b,
                      bool null_safe) {
  std::string s;
  for (int k : t.key_columns) {
    s += (s.empty() ? "" : " AND ") + Col(a, t.columns[k]) +
         (null_safe ? " IS NOT DISTINCT FROM " : " = ") + Col(b, t.columns[k]);
  }
  return s.empty() ? "true" : s;
}

std::string Differs(const DiffShape& shape, const std::string& a, const std::string& b) {
  const SummaryTable& t = *shape.table;
  std::string s;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (IsKey(t, i)) continue;
    const std::string x = Col(a, t.columns[i]), y = Col(b, t.columns[i]);
    const Oid type = i < shape.types.size() ? shape.types[i] : 0;
    std::string d;
    if (type == pgtype::kFloat4 || type == pgtype::kFloat8) {
      d = "(" + x + " IS DISTINCT FROM " + y + " AND NOT coalesce(abs(" + x + " - " + y +
          ") <= 1e-9 * greatest(1, abs(" + x + "), abs(" + y + ")), false))";
    } else if (type == pgtype::kNumeric || type == 114 /* json: no equality */) {
      d = x + "::text IS DISTINCT FROM " + y + "::text";
    } else {
      d = x + " IS DISTINCT FROM " + y;
    }
    s += (s.empty() ? "" : " OR ") + d;
  }
  return s.empty() ? "false" : "(" + s + ")";
}

std::string Columns(const SummaryTable& t, const std::string& alias) {
  std::string s;
  for (const auto& c : t.columns) s += (s.empty() ? "" : ", ") + Col(alias, c);
  return s;
}

}  // namespace

std::string QualifiedName(const SummaryTable& table) {
  return QuoteIdentifier(table.schema) + "." + QuoteIdentifier(table.name);
}

std::string DiffSql(const DiffShape& shape, const std::string& truth, const std::string& compared) {
  const SummaryTable& t = *shape.table;
  std::string chosen;
  for (const auto& c : t.columns) {
    chosen += ", CASE WHEN l.tally_present IS NULL THEN " + Col("r", c) + " ELSE " + Col("l", c) +
              " END AS " + QuoteIdentifier(c);
  }
  // Keys without NULLs: one hash (or merge) full join.
  std::string sql =
      "SELECT (CASE WHEN r.tally_present IS NULL THEN 'm' WHEN l.tally_present IS NULL THEN 'e' "
      "ELSE 'd' END)::\"char\" AS tally_kind" +
      chosen + " FROM (SELECT true AS tally_present, * FROM " + truth + " t WHERE " +
      NotNullKeys(t, "t") + ") l FULL JOIN (SELECT true AS tally_present, * FROM " + compared +
      " c WHERE " + NotNullKeys(t, "c") + ") r ON " + KeysMatch(t, "l", "r", false) +
      " WHERE l.tally_present IS NULL OR r.tally_present IS NULL OR " + Differs(shape, "l", "r");
  if (t.key_columns.empty()) return sql;
  // Keys with a NULL component: null-safe matching (not hashable, so done on those rows only).
  sql += " UNION ALL SELECT (CASE WHEN r.tally_present IS NULL THEN 'm' ELSE 'd' END)::\"char\", " +
         Columns(t, "l") + " FROM (SELECT * FROM " + truth + " t WHERE NOT " + NotNullKeys(t, "t") +
         ") l LEFT JOIN (SELECT true AS tally_present, * FROM " + compared + " c WHERE NOT " +
         NotNullKeys(t, "c") + ") r ON " + KeysMatch(t, "l", "r", true) +
         " WHERE r.tally_present IS NULL OR " + Differs(shape, "l", "r");
  sql += " UNION ALL SELECT 'e'::\"char\", " + Columns(t, "r") + " FROM " + compared +
         " r WHERE NOT " + NotNullKeys(t, "r") + " AND NOT EXISTS (SELECT 1 FROM " + truth +
         " l WHERE NOT " + NotNullKeys(t, "l") + " AND " + KeysMatch(t, "l", "r", true) + ")";
  return sql;
}

Result<DiffCounts> CompareInto(pg::PgConn& conn, const DiffShape& shape, const std::string& truth,
                               const std::string& compared, const std::string& diff_table,
                               int samples_per_kind) {
  const SummaryTable& t = *shape.table;
  const std::string d = QuoteIdentifier(diff_table);
  TALLY_RETURN_IF_ERROR(conn.Exec("DROP TABLE IF EXISTS pg_temp." + d).status());
  TALLY_RETURN_IF_ERROR(
      conn.Exec("CREATE TEMP TABLE " + d + " AS " + DiffSql(shape, truth, compared)).status());
  DiffCounts out;
  TALLY_ASSIGN_OR_RETURN(auto counts,
                         conn.Exec("SELECT tally_kind, count(*) FROM " + d + " GROUP BY 1"));
  for (int i = 0; i < counts.rows(); ++i) {
    const int64_t n = std::stoll(std::string(counts.get(i, 1)));
    switch (counts.get(i, 0)[0]) {
      case 'm':
        out.missing = n;
        break;
      case 'e':
        out.extra = n;
        break;
      default:
        out.different = n;
        break;
    }
  }
  if (out.total() == 0 || samples_per_kind <= 0) return out;
  std::string keys;
  for (int k : t.key_columns) keys += ", " + QuoteIdentifier(t.columns[k]) + "::text";
  TALLY_ASSIGN_OR_RETURN(
      auto samples,
      conn.Exec("SELECT tally_kind" + keys +
                " FROM (SELECT *, row_number() OVER (PARTITION BY tally_kind) AS tally_n FROM " +
                d + ") s WHERE tally_n <= " + std::to_string(samples_per_kind) +
                " ORDER BY tally_kind DESC"));
  for (int i = 0; i < samples.rows(); ++i) {
    DiffSample s;
    s.kind = samples.get(i, 0)[0];
    for (int c = 1; c < samples.cols(); ++c) s.keys.push_back(samples.get_opt(i, c));
    out.samples.push_back(std::move(s));
  }
  return out;
}

Result<int64_t> ApplyDiff(pg::PgConn& conn, const DiffShape& shape, const std::string& diff_table) {
  const SummaryTable& t = *shape.table;
  const std::string target = QualifiedName(t);
  const std::string d = QuoteIdentifier(diff_table);
  int64_t changed = 0;
  auto run = [&](const std::string& sql) -> Status {
    TALLY_ASSIGN_OR_RETURN(auto r, conn.Exec(sql));
    std::string n(r.command_tuples());
    if (!n.empty()) changed += std::stoll(n);
    return Status::Ok();
  };
  if (t.key_columns.empty()) {
    // One row, no key: replace it if anything differs.
    TALLY_RETURN_IF_ERROR(run("DELETE FROM " + target + " WHERE EXISTS (SELECT 1 FROM " + d + ")"));
  } else {
    TALLY_RETURN_IF_ERROR(run("DELETE FROM " + target + " s USING " + d +
                              " d WHERE d.tally_kind = 'e' AND " + NotNullKeys(t, "d") + " AND " +
                              KeysMatch(t, "s", "d", false)));
    TALLY_RETURN_IF_ERROR(run("DELETE FROM " + target + " s USING " + d +
                              " d WHERE d.tally_kind = 'e' AND NOT " + NotNullKeys(t, "d") +
                              " AND " + KeysMatch(t, "s", "d", true)));
  }
  std::string cols, keys, sets;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const std::string c = QuoteIdentifier(t.columns[i]);
    cols += (cols.empty() ? "" : ", ") + c;
    if (IsKey(t, i)) {
      keys += (keys.empty() ? "" : ", ") + c;
    } else {
      sets += (sets.empty() ? "" : ", ") + c + " = EXCLUDED." + c;
    }
  }
  std::string insert = "INSERT INTO " + target + " (" + cols + ") SELECT " + cols + " FROM " + d +
                       " WHERE tally_kind <> 'e'";
  if (!t.key_columns.empty()) {
    insert += " ON CONFLICT (" + keys + ") DO " + (sets.empty() ? "NOTHING" : "UPDATE SET " + sets);
  }
  TALLY_RETURN_IF_ERROR(run(insert));
  return changed;
}

Status CreateTempLike(pg::PgConn& conn, const SummaryTable& table, const std::string& temp) {
  const std::string q = QuoteIdentifier(temp);
  return conn.ExecAll({"DROP TABLE IF EXISTS pg_temp." + q,
                       "CREATE TEMP TABLE " + q + " (LIKE " + QualifiedName(table) + ")"});
}

Status CopyRowsInto(pg::PgConn& conn, const SummaryTable& table, const std::string& temp,
                    const RowSource& rows) {
  std::string cols;
  for (const auto& c : table.columns) cols += (cols.empty() ? "" : ", ") + QuoteIdentifier(c);
  TALLY_RETURN_IF_ERROR(
      conn.CopyInBegin("COPY " + QuoteIdentifier(temp) + " (" + cols + ") FROM STDIN"));
  std::string buf;
  buf.reserve(1 << 16);
  Status visited = rows([&](const engine::SinkRow& row) -> Status {
    if (row.is_delete) return Status::Ok();
    for (size_t i = 0; i < row.columns.size(); ++i) {
      if (i) buf += '\t';
      if (row.columns[i]) {
        pg::AppendCopyEscaped(*row.columns[i], &buf);
      } else {
        buf += "\\N";
      }
    }
    buf += '\n';
    if (buf.size() > (1 << 16)) {
      TALLY_RETURN_IF_ERROR(conn.CopyInPut(buf));
      buf.clear();
    }
    return Status::Ok();
  });
  if (!visited.ok()) {
    PQputCopyEnd(conn.raw(), "tally: reading rows failed");
    conn.CopyInEnd().IgnoreError();
    return visited;
  }
  TALLY_RETURN_IF_ERROR(conn.CopyInPut(buf));
  return conn.CopyInEnd();
}

}  // namespace tally::sink
