// What tally may and may not create. tally needs no superuser: sql/setup.sql, run once by a
// superuser (or the tables' owner), makes the role, the grants, the schemas and the
// publication. tally checks what it may not create and, when something is missing, says what
// to run instead of failing on a bare "permission denied".
#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon_impl.h"

namespace tally::daemon {

using pg::QuoteIdentifier;

namespace {

constexpr const char* kPublishOptions =
    "publish = 'insert, update, delete, truncate', publish_via_partition_root = true";

std::string Qualified(const compiler::TableInfo& t) {
  return QuoteIdentifier(t.schema) + "." + QuoteIdentifier(t.name);
}

std::string SetupHint() {
  return "run sql/setup.sql as a superuser or the tables' owner (see sql/README.md)";
}

}  // namespace

// Each base table: replica identity that lets UPDATE and DELETE through a publication, SELECT
// for the backfill, and row-level security that does not hide rows from the backfill (the
// stream sees every row, so the snapshot must too).
Status Daemon::CheckSourceTables() {
  auto& c = *source_;
  for (const auto& v : views_) {
    const auto& src = v->plan().source;
    if (src.primary_key.empty() && src.replica_identity != 'f') {
      return Status::InvalidArgument(
          "view " + v->config->name + ": table " + src.QualifiedName() +
          " has no primary key and REPLICA IDENTITY is not FULL, so tally cannot tell which row "
          "an UPDATE or DELETE changed; add a primary key, or run ALTER TABLE " +
          Qualified(src) + " REPLICA IDENTITY FULL");
    }
    if (src.replica_identity == 'n') {
      return Status::InvalidArgument("view " + v->config->name + ": table " + src.QualifiedName() +
                                     " has REPLICA IDENTITY NOTHING; adding it to a publication "
                                     "would make its UPDATE and DELETE fail. Run ALTER TABLE " +
                                     Qualified(src) +
                                     " REPLICA IDENTITY DEFAULT (with a primary key) or FULL");
    }
    TALLY_ASSIGN_OR_RETURN(
        auto t,
        c.ExecParams("SELECT has_table_privilege(c.oid, 'SELECT'), c.relrowsecurity AND NOT "
                     "r.rolsuper AND NOT r.rolbypassrls AND (c.relforcerowsecurity OR NOT "
                     "pg_has_role(c.relowner, 'USAGE')), current_user FROM pg_class c, pg_roles r "
                     "WHERE c.oid = $1::oid AND r.rolname = current_user",
                     {std::to_string(src.oid)}));
    if (t.rows() == 0) continue;  // dropped since it was compiled: the backfill will say so
    const std::string role = QuoteIdentifier(t.get(0, 2));
    if (t.get(0, 0) != "t") {
      return Status::FailedPrecondition("view " + v->config->name + ": role " + role +
                                        " may not read table " + src.QualifiedName() +
                                        ": GRANT SELECT ON " + Qualified(src) + " TO " + role +
                                        " (" + SetupHint() + ")");
    }
    if (t.get(0, 1) == "t") {
      return Status::FailedPrecondition(
          "view " + v->config->name + ": table " + src.QualifiedName() +
          " has row-level security and role " + role +
          " does not bypass it: a backfill would see only the rows the policies allow while the "
          "stream carries every row. As a superuser: ALTER ROLE " +
          role + " BYPASSRLS (sql/setup.sql does it; see sql/README.md)");
    }
  }
  return Status::Ok();
}

Status Daemon::EnsurePublication() {
  TALLY_RETURN_IF_ERROR(CheckSourceTables());
  auto& c = *source_;
  const std::string pub = QuoteIdentifier(config_.publication);
  std::vector<const compiler::TableInfo*> tables;
  for (const auto& v : views_) {
    const auto& src = v->plan().source;
    if (std::none_of(tables.begin(), tables.end(), [&](auto* t) { return t->oid == src.oid; })) {
      tables.push_back(&src);
    }
  }
  std::string list;
  for (const auto* t : tables) list += (list.empty() ? "" : ", ") + Qualified(*t);
  // Who may do what: CREATE PUBLICATION ... FOR TABLE needs CREATE on the database and
  // ownership of every table; ALTER PUBLICATION needs ownership of it (and of an added table).
  TALLY_ASSIGN_OR_RETURN(
      auto p, c.ExecParams("SELECT pg_has_role(p.pubowner, 'USAGE'), p.puballtables, "
                           "p.pubinsert AND p.pubupdate AND p.pubdelete AND p.pubtruncate AND "
                           "p.pubviaroot, pg_get_userbyid(p.pubowner), current_user, "
                           "has_database_privilege(current_database(), 'CREATE') "
                           "FROM pg_publication p WHERE p.pubname = $1",
                           {config_.publication}));
  auto owns = [&](const compiler::TableInfo& t) -> Result<bool> {
    TALLY_ASSIGN_OR_RETURN(auto r, c.ExecParams("SELECT pg_has_role(relowner, 'USAGE') FROM "
                                                "pg_class WHERE oid = $1::oid",
                                                {std::to_string(t.oid)}));
    return r.rows() == 1 && r.get(0, 0) == "t";
  };
  if (p.rows() == 0) {
    TALLY_ASSIGN_OR_RETURN(auto may, c.Exec("SELECT has_database_privilege(current_database(), "
                                            "'CREATE'), current_user"));
    bool allowed = may.get(0, 0) == "t";
    for (const auto* t : tables) {
      if (!allowed) break;
      TALLY_ASSIGN_OR_RETURN(allowed, owns(*t));
    }
    const std::string create =
        "CREATE PUBLICATION " + pub + " FOR TABLE " + list + " WITH (" + kPublishOptions + ")";
    if (!allowed) {
      return Status::FailedPrecondition(
          "publication " + pub + " does not exist and role " + QuoteIdentifier(may.get(0, 1)) +
          " may not create it (that takes the CREATE privilege on the database and ownership of "
          "every table it holds): " +
          SetupHint() + ", or as the tables' owner: " + create);
    }
    return c.Exec(create).status().WithContext("creating publication " + pub);
  }
  const bool pub_owner = p.get(0, 0) == "t";
  const std::string owner = QuoteIdentifier(p.get(0, 3));
  if (p.get(0, 1) == "t") {
    return Status::FailedPrecondition(
        "publication " + pub +
        " is FOR ALL TABLES: it would stream tally's own writes back to it. Use a publication "
        "of the views' tables: CREATE PUBLICATION <name> FOR TABLE " +
        list + " WITH (" + kPublishOptions + ") and name it in source.publication");
  }
  if (p.get(0, 2) != "t") {
    const std::string fix = "ALTER PUBLICATION " + pub + " SET (" + kPublishOptions + ")";
    if (!pub_owner) {
      return Status::FailedPrecondition(
          "publication " + pub +
          " does not publish every insert, update, delete and truncate "
          "through partition roots, so the summaries would miss changes; as its owner " +
          owner + " run: " + fix);
    }
    TALLY_RETURN_IF_ERROR(c.Exec(fix).status());
  }
  for (const auto* t : tables) {
    TALLY_ASSIGN_OR_RETURN(auto has, c.ExecParams("SELECT 1 FROM pg_publication_tables WHERE "
                                                  "pubname = $1 AND schemaname = $2 AND "
                                                  "tablename = $3",
                                                  {config_.publication, t->schema, t->name}));
    if (has.rows() > 0) continue;
    const std::string add = "ALTER PUBLICATION " + pub + " ADD TABLE " + Qualified(*t);
    TALLY_ASSIGN_OR_RETURN(bool table_owner, owns(*t));
    if (!pub_owner || !table_owner) {
      return Status::FailedPrecondition("publication " + pub + " (owner " + owner +
                                        ") does not hold table " + t->QualifiedName() +
                                        " and this role may not add it: " + SetupHint() +
                                        " with the table in -v tables=..., or run: " + add);
    }
    TALLY_RETURN_IF_ERROR(c.Exec(add).status());
  }
  return Status::Ok();
}

Status Daemon::EnsureSinkSchema() {
  auto& c = sink_->conn();
  const std::string schema = QuoteIdentifier(config_.sink_schema);
  // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists.
  TALLY_ASSIGN_OR_RETURN(
      auto r, c.ExecParams("SELECT n.oid IS NOT NULL, has_schema_privilege(n.oid, 'CREATE'), "
                           "has_database_privilege(current_database(), 'CREATE'), current_user "
                           "FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = $1",
                           {config_.sink_schema}));
  const std::string role = QuoteIdentifier(r.get(0, 3));
  if (r.get(0, 0) != "t") {
    if (r.get(0, 2) != "t") {
      return Status::FailedPrecondition("sink schema " + schema + " does not exist and role " +
                                        role + " may not create schemas: " + SetupHint() +
                                        " with -v sink_schema=" + config_.sink_schema +
                                        ", or CREATE SCHEMA " + schema + " AUTHORIZATION " + role);
    }
    return c.Exec("CREATE SCHEMA " + schema).status();
  }
  if (r.get(0, 1) != "t") {
    return Status::FailedPrecondition("role " + role +
                                      " may not create the summary tables in "
                                      "schema " +
                                      schema + ": GRANT USAGE, CREATE ON SCHEMA " + schema +
                                      " TO " + role + " (" + SetupHint() + ")");
  }
  return Status::Ok();
}

// grant_select: the readers get SELECT on the summary (again at every start: a table rebuilt
// or a role added to the list), and may read the monitoring tables. Grants and policies a user
// adds to a summary table are never touched: tally never drops a summary but in `drop`.
Status Daemon::GrantReaders(const ViewRuntime& v) {
  auto& c = sink_->conn();
  const std::string table =
      QuoteIdentifier(config_.sink_schema) + "." + QuoteIdentifier(v.config->name);
  TALLY_ASSIGN_OR_RETURN(auto own, c.ExecParams("SELECT pg_has_role(nspowner, 'USAGE') FROM "
                                                "pg_namespace WHERE nspname = $1",
                                                {config_.sink_schema}));
  const bool own_schema = own.rows() == 1 && own.get(0, 0) == "t";
  for (const auto& role : v.config->grant_select) {
    const std::string r = QuoteIdentifier(role);
    std::vector<std::string> grants = {"GRANT SELECT ON " + table + " TO " + r};
    // A schema tally created is tally's to open; one made by a DBA stays as the DBA set it.
    if (own_schema)
      grants.push_back("GRANT USAGE ON SCHEMA " + QuoteIdentifier(config_.sink_schema) + " TO " +
                       r);
    Status s = c.ExecAll(grants);
    if (s.ok()) s = sink_->GrantMonitoring(role);
    if (!s.ok()) return s.WithContext("view " + v.config->name + ": grant_select role " + r);
  }
  return Status::Ok();
}

}  // namespace tally::daemon
