#include "pg_catalog.h"

namespace tally::daemon {

Result<compiler::TableInfo> PgCatalog::LookupTable(std::string_view schema,
                                                   std::string_view name) const {
  std::string qualified = schema.empty()
                              ? pg::QuoteIdentifier(name)
                              : pg::QuoteIdentifier(schema) + "." + pg::QuoteIdentifier(name);
  TALLY_ASSIGN_OR_RETURN(
      auto rel, conn_->ExecParams("SELECT c.oid, n.nspname, c.relname, c.relreplident, c.relkind "
                                  "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                  "WHERE c.oid = to_regclass($1)",
                                  {qualified}));
  if (rel.rows() == 0) {
    return Status::NotFound("relation \"" + std::string(schema.empty() ? "" : schema) +
                            (schema.empty() ? "" : ".") + std::string(name) + "\" does not exist");
  }
  compiler::TableInfo t;
  t.oid = static_cast<Oid>(std::stoul(std::string(rel.get(0, 0))));
  t.schema = std::string(rel.get(0, 1));
  t.name = std::string(rel.get(0, 2));
  t.replica_identity = rel.get(0, 3)[0];
  char kind = rel.get(0, 4)[0];
  if (kind != 'r' && kind != 'p') {
    return Status::NotSupported("relation " + t.QualifiedName() +
                                " is not a table (views on views are not maintained yet)");
  }
  TALLY_ASSIGN_OR_RETURN(
      auto cols,
      conn_->ExecParams("SELECT a.attname, "
                        "CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, "
                        "a.atttypmod, a.attnum, a.attnotnull FROM pg_attribute a "
                        "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1 "
                        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                        {std::to_string(t.oid)}));
  for (int i = 0; i < cols.rows(); ++i) {
    compiler::ColumnInfo c;
    c.name = std::string(cols.get(i, 0));
    c.type_oid = static_cast<Oid>(std::stoul(std::string(cols.get(i, 1))));
    c.typmod = std::stoi(std::string(cols.get(i, 2)));
    c.attnum = static_cast<int16_t>(std::stoi(std::string(cols.get(i, 3))));
    c.not_null = cols.get(i, 4) == "t";
    t.columns.push_back(std::move(c));
  }
  TALLY_ASSIGN_OR_RETURN(
      auto pk, conn_->ExecParams("SELECT a.attname FROM pg_index i, unnest(i.indkey) WITH "
                                 "ORDINALITY k(attnum, ord) JOIN pg_attribute a ON "
                                 "a.attrelid = $1 AND a.attnum = k.attnum "
                                 "WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
                                 {std::to_string(t.oid)}));
  for (int i = 0; i < pk.rows(); ++i) {
    int idx = t.FindColumn(pk.get(i, 0));
    if (idx >= 0) t.primary_key.push_back(idx);
  }
  return t;
}

Result<DatabaseSettings> ReadDatabaseSettings(const std::string& dsn) {
  TALLY_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(dsn, false, /*session_options=*/false));
  TALLY_ASSIGN_OR_RETURN(auto r,
                         conn->Exec("SELECT d.oid::text, current_setting('TimeZone'), d.datcollate "
                                    "FROM pg_database d WHERE d.datname = current_database()"));
  DatabaseSettings s;
  s.db_oid = std::string(r.get(0, 0));
  s.time_zone = std::string(r.get(0, 1));
  s.collation = std::string(r.get(0, 2));
  return s;
}

}  // namespace tally::daemon
