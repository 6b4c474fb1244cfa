#include "tally/daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "daemon_impl.h"
#include "pg_catalog.h"
#include "tally/compiler/eval.h"
#include "tally/compiler/plan.h"
#include "tally/core/collation.h"
#include "tally/engine/view_maintainer.h"
#include "tally/pg/connection.h"
#include "tally/pg/replication.h"
#include "tally/pgoutput/decoder.h"
#include "tally/pgoutput/relation_cache.h"
#include "tally/pgoutput/replication_protocol.h"
#include "tally/sink/summary_writer.h"
#include "tally/store/kv.h"
#include "view_runtime.h"

namespace tally::daemon {

std::atomic<bool> g_stop_requested{false};

using pg::QuoteIdentifier;

namespace {

// Meta keys in the state (store/kv.h: "M" name).
const std::string kMetaFormat = "Mformat";
const std::string kMetaSystemId = "Msystem_id";
const std::string kMetaDbOid = "Mdb_oid";
const std::string kMetaSlot = "Mslot";
const std::string kMetaCheckpoint = "Mcheckpoint";
const std::string kMetaNextViewId = "Mnext_view_id";
const std::string kRewritePrefix = "Mrewrite";   // + view id: summary must be rewritten whole
const std::string kMetaReplay = "Mreplay";       // a streamed transaction being applied
const std::string kMetaRelationPrefix = "Mrel";  // + relation oid: its last Relation message
const std::string kMetaGroupPrefix = "Mgroup";   // + group id: its stored columns

// Named kill points for crash tests: TALLY_KILL_POINT=name[:n] SIGKILLs the process the n-th
// time (default 1st) it passes `name`.
void KillPoint(const char* name) {
  static const char* spec = std::getenv("TALLY_KILL_POINT");
  if (spec == nullptr) return;
  static int remaining = [] {
    const char* colon = std::strchr(spec, ':');
    return colon ? std::atoi(colon + 1) : 1;
  }();
  std::string_view want(spec);
  want = want.substr(0, want.find(':'));
  if (want != name || --remaining > 0) return;
  std::fprintf(stderr, "tally: kill point %s reached\n", name);
  std::raise(SIGKILL);
}

std::string ViewMetaKey(uint32_t id) {
  std::string k = "V";
  store::AppendU32(id, &k);
  return k;
}

std::string RewriteKey(uint32_t id) {
  std::string k = kRewritePrefix;
  store::AppendU32(id, &k);
  return k;
}

std::string StagePrefix(uint32_t xid) {
  std::string k = "s";
  store::AppendU32(xid, &k);
  return k;
}

}  // namespace

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotSupported:
      return 2;
    default:
      return 1;
  }
}

// ---------------------------------------------------------------------------------------
// Preparation: compile, open state, check identity, create what is missing, backfill.

Status Daemon::CompileViews(PgCatalog& catalog) {
  for (const auto& vc : config_.views) {
    auto plan = compiler::CompileView(vc.name, vc.query, catalog);
    if (!plan.ok()) {
      Status s = plan.status();
      std::string prefix =
          "view " + vc.name + " (" + config_.path + ":" + std::to_string(vc.line) + ")";
      if (s.code() == StatusCode::kNotSupported) {
        return Status::NotSupported(prefix + ": " + s.message() +
                                    " (refresh mode is not implemented yet, so this view cannot "
                                    "be managed whatever its mode)");
      }
      return s.WithContext(prefix);
    }
    auto rt = std::make_unique<ViewRuntime>();
    rt->config = &vc;
    engine::EvalSettings settings{zone_, collation_.get()};
    rt->maintainer = std::make_unique<engine::ViewMaintainer>(0, std::move(plan).value(), settings);
    views_.push_back(std::move(rt));
    view_names_.push_back(vc.name);
  }
  return Status::Ok();
}

Status Daemon::OpenState() {
  TALLY_ASSIGN_OR_RETURN(auto rocks, store::OpenRocksDb(config_.state_dir));
  auto pipe = std::make_unique<store::PipelinedStore>(std::move(rocks));
  pipe_ = pipe.get();
  state_ = std::move(pipe);
  TALLY_ASSIGN_OR_RETURN(auto format, state_->Get(kMetaFormat));
  if (format && *format != std::to_string(store::kStateFormatVersion)) {
    return Status::FailedPrecondition("state directory " + config_.state_dir + " has format " +
                                      *format + ", this tally reads format " +
                                      std::to_string(store::kStateFormatVersion));
  }
  TALLY_ASSIGN_OR_RETURN(auto cp, state_->Get(kMetaCheckpoint));
  if (cp) {
    TALLY_ASSIGN_OR_RETURN(checkpoint_, Lsn::Parse(*cp));
  }
  TALLY_ASSIGN_OR_RETURN(auto next, state_->Get(kMetaNextViewId));
  if (next) next_view_id_ = static_cast<uint32_t>(std::stoul(*next));
  return DropStaged();
}

// Staged streamed transactions never survive a restart or reconnect: the server re-sends them
// whole. Only one whose Stream Commit arrived and whose replay was interrupted is kept.
Status Daemon::DropStaged() {
  TALLY_ASSIGN_OR_RETURN(auto replay, state_->Get(kMetaReplay));
  std::string keep;
  if (replay) keep = StagePrefix(static_cast<uint32_t>(std::stoul(*replay)));
  stage_seq_.clear();
  return store::DeletePrefixInChunks(*state_, "s", [&](std::string_view key, std::string_view) {
    return keep.empty() || key.substr(0, keep.size()) != keep;
  });
}

// What an interrupted run left: a streamed transaction half applied (finished first, from its
// staged changes), then summary rows written to the state but not to the sink.
Status Daemon::FinishInterruptedWork() {
  apply_->Drain().IgnoreError();  // what it applied is discarded below
  // A batch in flight either reached the state or did not: the state says which.
  pipe_->Wait().IgnoreError();
  inflight_ = false;
  rows_held_ = false;  // the row stores are reset below
  TALLY_ASSIGN_OR_RETURN(auto cp, state_->Get(kMetaCheckpoint));
  if (cp) {
    TALLY_ASSIGN_OR_RETURN(checkpoint_, Lsn::Parse(*cp));
  }
  for (auto& v : views_) v->maintainer->Reset();
  for (auto& g : groups_) {
    if (g->rows) g->rows->Reset();
  }
  TALLY_ASSIGN_OR_RETURN(auto replay, state_->Get(kMetaReplay));
  if (replay) {
    spdlog::info("finishing a streamed transaction interrupted while being applied ({})", *replay);
    TALLY_RETURN_IF_ERROR(LoadRelations());
    TALLY_RETURN_IF_ERROR(ReplayStaged(*replay));
  }
  return RecoverPending(checkpoint_);
}

Status Daemon::CheckStateIdentity(const std::string& system_id) {
  TALLY_ASSIGN_OR_RETURN(auto sys, state_->Get(kMetaSystemId));
  TALLY_ASSIGN_OR_RETURN(auto dboid, state_->Get(kMetaDbOid));
  TALLY_ASSIGN_OR_RETURN(auto slot, state_->Get(kMetaSlot));
  if (sys && (*sys != system_id || !dboid || *dboid != db_.db_oid)) {
    return Status::FailedPrecondition(
        "state directory " + config_.state_dir + " belongs to another database (system " + *sys +
        ", database oid " + dboid.value_or("?") + "; this is system " + system_id +
        ", database oid " + db_.db_oid + "); point state.dir elsewhere or remove it");
  }
  if (slot && *slot != config_.slot) {
    return Status::FailedPrecondition("state directory " + config_.state_dir + " follows slot '" +
                                      *slot + "', the config names slot '" + config_.slot + "'");
  }
  return Status::Ok();
}

Status Daemon::EnsureSummaryTable(ViewRuntime& v) {
  auto& c = sink_->conn();
  const std::string& schema = config_.sink_schema;
  const std::string qualified = QuoteIdentifier(schema) + "." + QuoteIdentifier(v.config->name);
  TALLY_ASSIGN_OR_RETURN(auto exists,
                         c.ExecParams("SELECT to_regclass($1) IS NOT NULL", {qualified}));
  TALLY_ASSIGN_OR_RETURN(auto ours,
                         c.ExecParams("SELECT 1 FROM " + QuoteIdentifier(config_.meta_schema) +
                                          ".views WHERE name = $1",
                                      {v.config->name}));
  if (exists.get(0, 0) == "t" && ours.rows() == 0) {
    return Status::InvalidArgument("view " + v.config->name + ": relation " + qualified +
                                   " already exists and was not created by tally; rename the "
                                   "view or drop that relation");
  }
  if (exists.get(0, 0) != "t") {
    TALLY_RETURN_IF_ERROR(EnsureSinkSchema());
    TALLY_RETURN_IF_ERROR(
        c.Exec("CREATE TABLE " + qualified + " AS " + v.plan().query_sql + " WITH NO DATA")
            .status()
            .WithContext("view " + v.config->name + ": creating the summary table"));
  }
  // Names and types come from Postgres; check they are what the plan computes.
  TALLY_ASSIGN_OR_RETURN(auto cols,
                         c.ExecParams("SELECT a.attname, a.atttypid FROM pg_attribute a WHERE "
                                      "a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT "
                                      "a.attisdropped ORDER BY a.attnum",
                                      {qualified}));
  const auto& outputs = v.plan().outputs;
  if (cols.rows() != static_cast<int>(outputs.size())) {
    return Status::FailedPrecondition("view " + v.config->name + ": summary table " + qualified +
                                      " has " + std::to_string(cols.rows()) +
                                      " columns, the view has " + std::to_string(outputs.size()));
  }
  v.table = sink::SummaryTable{};
  v.table.schema = schema;
  v.table.name = v.config->name;
  for (int i = 0; i < cols.rows(); ++i) {
    v.table.columns.emplace_back(cols.get(i, 0));
    Oid pg_type = static_cast<Oid>(std::stoul(std::string(cols.get(i, 1))));
    if (pg_type != outputs[i].type) {
      return Status::NotSupported(
          "view " + v.config->name + ": column " + std::string(cols.get(i, 0)) + " is " +
          std::string(TypeName(pg_type)) + " in Postgres but tally computes " +
          std::string(TypeName(outputs[i].type)) + "; this view cannot be maintained exactly");
    }
  }
  v.table.key_columns = v.maintainer->key_outputs();
  std::string index_cols;
  for (int k : v.table.key_columns) {
    index_cols += (index_cols.empty() ? "" : ", ") + QuoteIdentifier(v.table.columns[k]);
  }
  const std::string index_name = QuoteIdentifier(v.config->name + "_tally_key");
  std::string ddl = "CREATE UNIQUE INDEX IF NOT EXISTS " + index_name + " ON " + qualified;
  ddl += v.table.key_columns.empty() ? " ((true))" : " (" + index_cols + ") NULLS NOT DISTINCT";
  TALLY_RETURN_IF_ERROR(c.Exec(ddl).status());
  return GrantReaders(v);
}

void Daemon::SaveViewMeta(const ViewRuntime& v, bool ready, store::KvBatch* batch) {
  std::string meta = (ready ? "ready\n" : "backfill\n") + v.config->name + "\n" +
                     v.start_lsn.ToString() + "\n" + std::to_string(v.groups) + "\n" +
                     std::to_string(v.group_id) + "\n" + v.plan().query_sql;
  batch->Put(ViewMetaKey(v.id), meta);
}

Status Daemon::LoadViewMetas() {
  auto it = state_->NewIterator();
  std::map<std::string, std::pair<uint32_t, std::string>> stored;  // name -> id, meta
  for (it->Seek("V"); it->Valid() && it->key()[0] == 'V'; it->Next()) {
    uint32_t id = store::ReadU32(it->key().substr(1));
    std::string meta(it->value());
    size_t a = meta.find('\n'), b = meta.find('\n', a + 1);
    stored[meta.substr(a + 1, b - a - 1)] = {id, meta};
  }
  TALLY_RETURN_IF_ERROR(it->status());
  for (auto& v : views_) {
    auto f = stored.find(v->config->name);
    if (f == stored.end()) continue;
    const std::string& meta = f->second.second;
    std::vector<std::string> parts;
    size_t pos = 0;
    for (int i = 0; i < 5; ++i) {
      size_t nl = meta.find('\n', pos);
      parts.push_back(meta.substr(pos, nl - pos));
      pos = nl + 1;
    }
    std::string definition = meta.substr(pos);
    v->id = f->second.first;
    v->ready = parts[0] == "ready";
    TALLY_ASSIGN_OR_RETURN(v->start_lsn, Lsn::Parse(parts[2]));
    v->groups = std::stoll(parts[3]);
    v->group_id = static_cast<uint32_t>(std::stoul(parts[4]));
    if (v->ready && definition != v->plan().query_sql) {
      // Never silently rebuilt: the old summary may be what dashboards read right now.
      return Status::FailedPrecondition(
          "view " + v->config->name +
          ": its query changed since it was built; run `tally drop --view " + v->config->name +
          "` and then `tally init` to build it with the new query, or give the changed view a "
          "new name");
    }
  }
  for (auto& v : views_) {
    if (v->id == 0) v->id = next_view_id_++;
    v->maintainer = std::make_unique<engine::ViewMaintainer>(
        v->id, v->maintainer->plan(), engine::EvalSettings{zone_, collation_.get()});
    v->maintainer->set_cache_budget(cache_budget_);
  }
  // The table groups of views that are ready; the others get theirs at backfill.
  for (auto& v : views_) {
    if (!v->ready) continue;
    TableGroup* g = FindGroup(v->group_id);
    if (g == nullptr) {
      std::string key = kMetaGroupPrefix;
      store::AppendU32(v->group_id, &key);
      TALLY_ASSIGN_OR_RETURN(auto stored, state_->Get(key));
      if (!stored) {
        return Status::Corruption("view " + v->config->name + ": its row store " +
                                  std::to_string(v->group_id) + " is not described in the state");
      }
      std::vector<std::string> columns;
      size_t pos = 0;
      while (pos < stored->size()) {
        size_t nl = stored->find('\n', pos);
        columns.push_back(stored->substr(pos, nl - pos));
        pos = nl + 1;
      }
      g = NewGroup(v->group_id, v->plan().source, std::move(columns), v->start_lsn);
    }
    TALLY_RETURN_IF_ERROR(JoinGroup(*v, *g));
  }
  return Status::Ok();
}

TableGroup* Daemon::FindGroup(uint32_t id) {
  for (auto& g : groups_) {
    if (g->id == id) return g.get();
  }
  return nullptr;
}

TableGroup* Daemon::NewGroup(uint32_t id, const compiler::TableInfo& table,
                             std::vector<std::string> columns, Lsn start_lsn) {
  auto g = std::make_unique<TableGroup>();
  g->id = id;
  g->table = table;
  g->columns = std::move(columns);
  g->start_lsn = start_lsn;
  for (const std::string& name : g->columns) {
    const int at = table.FindColumn(name);
    g->column_types.push_back(at < 0 ? pgtype::kText : table.columns[at].type_oid);
  }
  if (!table.primary_key.empty()) {
    g->rows = std::make_unique<engine::RowStore>(id, g->columns);
    g->rows->set_cache_budget(cache_budget_);
  }
  groups_.push_back(std::move(g));
  return groups_.back().get();
}

Status Daemon::JoinGroup(ViewRuntime& v, TableGroup& g) {
  const auto& plan = v.plan();
  v.positions.clear();
  for (int c : plan.input_columns) {
    const std::string& name = plan.source.columns[c].name;
    auto at = std::find(g.columns.begin(), g.columns.end(), name);
    if (at == g.columns.end()) {
      return Status::Corruption("view " + v.config->name + ": column " + name +
                                " is not in its row store");
    }
    v.positions.push_back(static_cast<int>(at - g.columns.begin()));
  }
  v.group = &g;
  v.group_id = g.id;
  g.members.push_back(&v);
  return Status::Ok();
}

Status Daemon::Prepare(bool create_missing) {
  TALLY_ASSIGN_OR_RETURN(db_, ReadDatabaseSettings(config_.source_dsn));
  auto zone = compiler::FindTimeZone(db_.time_zone);
  if (!zone.ok()) return zone.status().WithContext("the database's TimeZone");
  zone_ = *zone;
  TALLY_ASSIGN_OR_RETURN(auto coll, Collation::Open(db_.collation));
  collation_ = std::make_unique<Collation>(std::move(coll));
  TALLY_ASSIGN_OR_RETURN(source_, pg::PgConn::Connect(config_.source_dsn));
  PgCatalog catalog(source_.get());
  TALLY_RETURN_IF_ERROR(CompileViews(catalog));
  TALLY_ASSIGN_OR_RETURN(sink_, OpenSink());

  TALLY_RETURN_IF_ERROR(OpenState());
  TALLY_ASSIGN_OR_RETURN(auto repl, pg::ReplicationConnection::Connect(config_.source_dsn));
  TALLY_ASSIGN_OR_RETURN(auto ident, repl->IdentifySystem());
  system_id_ = ident.system_id;
  TALLY_RETURN_IF_ERROR(CheckStateIdentity(system_id_));
  TALLY_ASSIGN_OR_RETURN(auto wal, source_->Exec("SHOW wal_level"));
  if (wal.get(0, 0) != "logical") {
    return Status::FailedPrecondition("the source has wal_level = " + std::string(wal.get(0, 0)) +
                                      "; tally needs wal_level = logical (set it in "
                                      "postgresql.conf and restart the server)");
  }
  TALLY_RETURN_IF_ERROR(LoadViewMetas());

  TALLY_ASSIGN_OR_RETURN(
      auto slot,
      source_->ExecParams("SELECT confirmed_flush_lsn, database = current_database(), plugin FROM "
                          "pg_replication_slots WHERE slot_name = $1",
                          {config_.slot}));
  const bool state_empty = checkpoint_.IsZero();
  if (!state_empty && slot.rows() == 0) {
    if (!allow_lost_slot_) {
      return Status::FailedPrecondition(
          "replication slot '" + config_.slot + "' is missing: the changes since " +
          checkpoint_.ToString() + " are lost to tally. Run `tally reconcile --config " +
          config_.path +
          "` to see the drift and `tally reconcile --repair` to recreate the slot and rebuild "
          "every view from its snapshot (readers keep the old rows until then)");
    }
    slot_lost_ = true;
  }
  if (!state_empty && slot.rows() > 0 && !slot.is_null(0, 0)) {
    TALLY_ASSIGN_OR_RETURN(Lsn confirmed, Lsn::Parse(slot.get(0, 0)));
    if (confirmed > checkpoint_) {
      if (!allow_lost_slot_) {
        return Status::FailedPrecondition(
            "replication slot '" + config_.slot + "' has confirmed " + confirmed.ToString() +
            " but tally's state only reached " + checkpoint_.ToString() +
            ": changes in between are lost to tally (was the state restored from a backup, or "
            "the slot advanced by hand?). Run `tally reconcile --repair` to recreate the slot "
            "and rebuild every view from its snapshot");
      }
      slot_lost_ = true;
    }
  }
  if (state_empty && slot.rows() > 0) {
    return Status::FailedPrecondition(
        "replication slot '" + config_.slot + "' exists but tally's state directory " +
        config_.state_dir + " is empty: drop the slot (SELECT pg_drop_replication_slot('" +
        config_.slot + "')) or point state.dir at the state that belongs to it");
  }
  if (!create_missing && state_empty) {
    return Status::FailedPrecondition("tally is not initialized; run `tally init` first");
  }
  TALLY_RETURN_IF_ERROR(sink_->EnsureMetaSchema());
  TALLY_RETURN_IF_ERROR(EnsurePublication());
  for (auto& v : views_) TALLY_RETURN_IF_ERROR(EnsureSummaryTable(*v));

  std::vector<ViewRuntime*> to_backfill;
  for (auto& v : views_) {
    if (!v->ready) to_backfill.push_back(v.get());
  }
  if (state_empty) {
    TALLY_ASSIGN_OR_RETURN(auto created, repl->CreateLogicalSlot(config_.slot, false, true));
    spdlog::info("created replication slot {} at {}", config_.slot,
                 created.consistent_point.ToString());
    store::KvBatch b;
    b.Put(kMetaFormat, std::to_string(store::kStateFormatVersion));
    b.Put(kMetaSystemId, system_id_);
    b.Put(kMetaDbOid, db_.db_oid);
    b.Put(kMetaSlot, config_.slot);
    TALLY_RETURN_IF_ERROR(state_->Write(b, true));
    TALLY_RETURN_IF_ERROR(Backfill(to_backfill, created.snapshot_name, created.consistent_point));
    store::KvBatch cp;
    cp.Put(kMetaCheckpoint, created.consistent_point.ToString());
    TALLY_RETURN_IF_ERROR(state_->Write(cp, true));
    checkpoint_ = created.consistent_point;
  } else if (!to_backfill.empty()) {
    // A view added later: its own snapshot, from a temporary slot, at its own position.
    TALLY_ASSIGN_OR_RETURN(
        auto created, repl->CreateLogicalSlot(
                          config_.slot + "_backfill_" + std::to_string(::getpid()), true, true));
    TALLY_RETURN_IF_ERROR(Backfill(to_backfill, created.snapshot_name, created.consistent_point));
  }
  TALLY_RETURN_IF_ERROR(FinishInterruptedWork());
  return TestCorruptState();
}

Status Daemon::Backfill(std::vector<ViewRuntime*> views, const std::string& snapshot,
                        Lsn position) {
  if (views.empty()) return Status::Ok();
  TALLY_RETURN_IF_ERROR(SettleWrites());  // the sink is this thread's again
  TALLY_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(config_.source_dsn));
  TALLY_RETURN_IF_ERROR(conn->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ").status());
  TALLY_RETURN_IF_ERROR(
      conn->Exec("SET TRANSACTION SNAPSHOT " + conn->QuoteLiteral(snapshot)).status());
  // Views over one table share one scan and one row store.
  std::map<Oid, std::vector<ViewRuntime*>> by_table;
  for (ViewRuntime* v : views) by_table[v->plan().source.oid].push_back(v);
  for (auto& [oid, members] : by_table) {
    const auto& src = members.front()->plan().source;
    std::vector<bool> read(src.columns.size(), false);
    for (ViewRuntime* v : members) {
      for (int c : v->plan().input_columns) read[c] = true;
    }
    std::vector<std::string> columns;
    for (size_t c = 0; c < read.size(); ++c) {
      if (read[c]) columns.push_back(src.columns[c].name);
    }
    const auto started = std::chrono::system_clock::now();
    TableGroup* g = NewGroup(next_view_id_++, src, columns, position);
    // Start over: whatever an interrupted backfill left is dropped.
    store::KvBatch clear;
    for (ViewRuntime* v : members) {
      TALLY_RETURN_IF_ERROR(JoinGroup(*v, *g));
      for (char tag : {'g', 'x', 'p'}) {
        std::string p(1, tag);
        store::AppendU32(v->id, &p);
        TALLY_RETURN_IF_ERROR(store::DeletePrefix(*state_, p, &clear));
      }
      v->start_lsn = position;
      v->groups = 0;
      // The backfill writes the whole summary at its end; no pending rows on the way.
      v->maintainer->set_record_pending(false);
      SaveViewMeta(*v, false, &clear);
    }
    std::string group_key = kMetaGroupPrefix;
    store::AppendU32(g->id, &group_key);
    std::string group_columns;
    for (const auto& c : columns) group_columns += c + "\n";
    clear.Put(group_key, group_columns);
    clear.Put(kMetaNextViewId, std::to_string(next_view_id_));
    TALLY_RETURN_IF_ERROR(state_->Write(clear, true));

    // The stored columns, then the primary key. With no column to read (count(*) only) one
    // placeholder field, never read, keeps the key at a known position.
    std::string select;
    for (const auto& c : columns) select += (select.empty() ? "" : ", ") + QuoteIdentifier(c);
    if (select.empty()) select = "1";
    for (int c : src.primary_key) select += ", " + QuoteIdentifier(src.columns[c].name);
    const size_t nstored = columns.size();
    const size_t pk_at = std::max<size_t>(nstored, 1);
    std::vector<std::optional<std::string>> fields;
    std::vector<std::optional<std::string_view>> stored, projected;
    std::string pk, encoded;
    int64_t rows = 0;
    std::vector<engine::SinkRow> discard;
    auto flush = [&](bool sync) -> Status {
      store::KvBatch b;
      for (ViewRuntime* v : members) {
        bool rewrite = false;
        discard.clear();
        TALLY_RETURN_IF_ERROR(v->maintainer->Flush(*state_, b, &discard, &rewrite));
        v->groups += v->maintainer->group_count_delta();
      }
      if (g->rows) TALLY_RETURN_IF_ERROR(g->rows->Flush(*state_, b));
      Heartbeat();  // a running daemon's stream waits for a backfill (handoff.cc)
      TALLY_RETURN_IF_ERROR(state_->Write(b, sync));
      if (g->rows) g->rows->Release();
      return Status::Ok();
    };
    Status st =
        conn->CopyOut("COPY (SELECT " + select + " FROM " + QuoteIdentifier(src.schema) + "." +
                          QuoteIdentifier(src.name) + ") TO STDOUT",
                      [&](std::string_view line) -> Status {
                        pg::SplitCopyLine(line, &fields);
                        stored.assign(fields.begin(), fields.begin() + static_cast<long>(nstored));
                        for (ViewRuntime* v : members) {
                          projected.clear();
                          for (int p : v->positions) projected.push_back(stored[p]);
                          TALLY_RETURN_IF_ERROR(v->maintainer->ApplyRow(projected, 1, *state_));
                        }
                        if (g->rows) {
                          pk.clear();
                          std::vector<std::optional<std::string_view>> pk_fields(
                              fields.begin() + static_cast<long>(pk_at), fields.end());
                          engine::EncodeRow(pk_fields, &pk);
                          encoded.clear();
                          engine::EncodeRow(stored, &encoded);
                          g->rows->Put(pk, encoded);
                        }
                        if (++rows % 50000 == 0) return flush(false);
                        return Status::Ok();
                      });
    if (!st.ok()) return st.WithContext("backfill of " + src.QualifiedName());
    TALLY_RETURN_IF_ERROR(flush(true));
    for (ViewRuntime* v : members) {
      TALLY_RETURN_IF_ERROR(rebuilding_ ? FinishRebuild(v, position, rows, started)
                                        : FinishBackfill(v, position, rows, started));
    }
  }
  return conn->Exec("COMMIT").status();
}

// Writes a backfilled view's whole summary and its meta row, then marks it ready.
Status Daemon::FinishBackfill(ViewRuntime* v, Lsn position, int64_t rows,
                              std::chrono::system_clock::time_point started) {
  const auto& plan = v->plan();
  v->maintainer->set_record_pending(true);
  const double started_epoch = std::chrono::duration<double>(started.time_since_epoch()).count();
  const std::string meta = QuoteIdentifier(config_.meta_schema);
  std::vector<sink::Statement> extra = {
      {"INSERT INTO " + meta +
           ".views (name, mode, definition, applied_lsn, applied_at, groups, summary_schema, "
           "summary_table) VALUES ($1, 'incremental', $2, $3, now(), $4, $5, $1) "
           "ON CONFLICT (name) DO UPDATE SET mode = EXCLUDED.mode, definition = "
           "EXCLUDED.definition, applied_lsn = EXCLUDED.applied_lsn, applied_at = now(), "
           "groups = EXCLUDED.groups",
       {v->config->name, plan.query_sql, position.ToString(), std::to_string(v->groups),
        config_.sink_schema}},
      {"INSERT INTO " + meta +
           ".refresh_log VALUES ($1, to_timestamp($2), now(), 'backfill', $3, $4)",
       {v->config->name, std::to_string(started_epoch), std::to_string(v->groups),
        position.ToString()}}};
  // The whole summary, streamed from the state into the sink's COPY.
  sink::RowSource all = [this, v](const sink::RowVisitor& visit) {
    return v->maintainer->ScanAll(*state_, visit);
  };
  sink::ViewDelta d{&v->table, v->config->name, true, std::move(all), v->groups};
  Status applied = sink_->ApplyBatch({d}, {}, position, extra);
  if (!applied.ok()) return applied.WithContext("view " + v->config->name + ": backfill");
  v->ready = true;
  store::KvBatch done;
  SaveViewMeta(*v, true, &done);
  TALLY_RETURN_IF_ERROR(state_->Write(done, true));
  spdlog::info("view {}: backfilled {} rows into {} groups at {}", v->config->name, rows, v->groups,
               position.ToString());
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Pending rows: written by a batch's RocksDB write, cleared after its sink transaction. After
// a crash they are written again (absolute values, so writing twice is harmless).

Status Daemon::RecoverPending(Lsn position) {
  std::vector<sink::ViewDelta> deltas;
  std::vector<ViewRuntime*> rewritten;
  for (auto& vp : views_) {
    ViewRuntime& v = *vp;
    const std::string prefix = v.maintainer->PendingPrefix();
    bool any = false;
    {
      auto it = state_->NewIterator();
      it->Seek(prefix);
      any = it->Valid() && it->key().substr(0, prefix.size()) == prefix;
      TALLY_RETURN_IF_ERROR(it->status());
    }
    TALLY_ASSIGN_OR_RETURN(auto rewrite, state_->Get(RewriteKey(v.id)));
    if (!any && !rewrite) continue;
    // Streamed from the state into the sink's COPY: bounded memory however many rows.
    sink::RowSource rows = [this, prefix](const sink::RowVisitor& visit) -> Status {
      auto it = state_->NewIterator();
      uint64_t n = 0;
      for (it->Seek(prefix); it->Valid() && it->key().substr(0, prefix.size()) == prefix;
           it->Next()) {
        TALLY_RETURN_IF_ERROR(
            engine::ForEachPendingRow(it->value(), [&](const engine::SinkRow& row) -> Status {
              TALLY_RETURN_IF_ERROR(visit(row));
              if (++n % 10000 == 0) Heartbeat();
              return Status::Ok();
            }));
      }
      return it->status();
    };
    deltas.push_back({&v.table, v.config->name, rewrite.has_value(), std::move(rows), v.groups});
    rewritten.push_back(&v);
  }
  if (deltas.empty()) return Status::Ok();
  spdlog::info("re-writing the summary rows of an interrupted batch ({} views)", deltas.size());
  TALLY_RETURN_IF_ERROR(sink_->ApplyBatch(deltas, view_names_, position));
  // The summaries hold these rows now. Cleared in chunks: a crash half-way only means some
  // rows are written again, with the same values.
  for (ViewRuntime* v : rewritten) {
    const std::string prefix = v->maintainer->PendingPrefix();
    store::KvBatch clear;
    auto it = state_->NewIterator();
    for (it->Seek(prefix); it->Valid() && it->key().substr(0, prefix.size()) == prefix;
         it->Next()) {
      clear.Delete(it->key());
      if (clear.size() >= 10000) {
        TALLY_RETURN_IF_ERROR(state_->Write(clear, false));
        clear.Clear();
      }
    }
    TALLY_RETURN_IF_ERROR(it->status());
    clear.Delete(RewriteKey(v->id));
    TALLY_RETURN_IF_ERROR(state_->Write(clear, true));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// The stream.

Status Daemon::SendFeedback(Lsn position, bool reply_requested) {
  pgoutput::StandbyStatusUpdate u;
  u.written = position;
  u.flushed = position;
  u.applied = position;
  u.client_time =
      pgoutput::PgTimestampFromUnixMicros(std::chrono::duration_cast<std::chrono::microseconds>(
                                              std::chrono::system_clock::now().time_since_epoch())
                                              .count());
  u.reply_requested = reply_requested;
  std::array<char, pgoutput::kStandbyStatusUpdateSize> buf;
  pgoutput::EncodeStandbyStatusUpdate(u, buf);
  return repl_->Send(std::string_view(buf.data(), buf.size()));
}

void Daemon::Heartbeat() {
  if (!repl_ || Clock::now() - last_heartbeat_ < std::chrono::seconds(10)) return;
  last_heartbeat_ = Clock::now();
  SendFeedback(checkpoint_).IgnoreError();  // a lost connection shows at the next receive
}

Status Daemon::Flush() {
  if (!batch_dirty_) return apply_->Drain();
  // The row stores hold what the last flush wrote until the worker has handed that batch to
  // the pipe; only then may they forget deleted rows and evict.
  TALLY_RETURN_IF_ERROR(ReleaseRows(/*wait=*/true));
  auto flush = std::make_shared<PendingFlush>();
  const size_t ops = last_batch_ops_.load(std::memory_order_relaxed);
  const size_t bytes = last_batch_bytes_.load(std::memory_order_relaxed);
  flush->batch.Reserve(ops + ops / 8, bytes + bytes / 8);
  // The row stores are this thread's alone: written first, while the apply worker finishes
  // the blocks it still has and settles the views' value counts.
  for (auto& v : views_) {
    if (!v->maintainer->keeps_value_counts() || !v->stopped.empty()) continue;
    // During a catch-up the stream's thread and the walsender keep both cores busy; the batch
    // that ends one is large, and its settle stands between the stream running dry and the
    // batch's write: a second thread is worth it there.
    v->maintainer->set_parallel_settle(!CatchingUp());
    apply_->AddOp({v->maintainer.get(), nullptr, &v->config->name, state_.get(), Lsn(), -1, -1});
  }
  apply_->HandOverNow();
  for (auto& g : groups_) {
    if (g->rows) TALLY_RETURN_IF_ERROR(g->rows->Flush(*state_, flush->batch));
  }
  rows_held_ = true;
  flush->position = batch_position_;
  flush->stages = std::move(committed_stages_);
  committed_stages_.clear();
  // The batch that ends a catch-up is large and nothing follows it soon: into a fresh
  // memtable, written about 40% faster (bench harness, writer thread), while the full one
  // goes to disk on another core.
  flush->fresh_memtable = !CatchingUp();
  // The worker writes the views and submits the batch, in order with the changes: this
  // thread goes on with the next batch's changes meanwhile.
  flush_task_ = apply_->AddTask([this, flush] { return FlushViews(*flush); });
  apply_->HandOverNow();
  sink_->monitor().CutBatch();  // commits received from here on are the next batch's
  batch_dirty_ = false;
  batch_changes_ = 0;
  inflight_ = true;
  inflight_position_ = flush->position;
  return Status::Ok();
}

Status Daemon::FlushViews(PendingFlush& flush) {
  store::KvBatch& batch = flush.batch;
  // Owned by the job: the sink writes them on the state's thread.
  auto rows = std::make_shared<std::vector<std::vector<engine::SinkRow>>>(views_.size());
  std::vector<sink::ViewDelta> deltas;
  std::vector<std::string> done_keys;  // cleared once the summaries hold the batch
  for (size_t i = 0; i < views_.size(); ++i) {
    auto& v = *views_[i];
    bool rewrite = false;
    Status s = v.maintainer->Flush(*state_, batch, &(*rows)[i], &rewrite);
    if (!s.ok()) return s.WithContext("at " + flush.position.ToString());
    if (rewrite) {
      v.groups = 0;
      batch.Put(RewriteKey(v.id), "1");
      done_keys.push_back(RewriteKey(v.id));
    }
    v.groups += v.maintainer->group_count_delta();
    if (!(*rows)[i].empty() || rewrite) {
      deltas.push_back({&v.table, v.config->name, rewrite, sink::RowsOf(&(*rows)[i]), v.groups});
      SaveViewMeta(v, true, &batch);
    }
  }
  for (size_t i = 0; i < batch.op_count(); ++i) {
    const store::KvBatch::Op op = batch.op(i);
    if (!op.is_delete && op.key[0] == 'p') done_keys.emplace_back(op.key);
  }
  batch.Put(kMetaCheckpoint, flush.position.ToString());
  // A stream quiet for a while (the batch that ends a catch-up was cut by its size, just
  // before the backlog ran out): nothing follows this batch soon either.
  const int64_t quiet_since = stream_quiet_since_ns_.load(std::memory_order_relaxed);
  const bool quiet = quiet_since != 0 && NowNs() - quiet_since > kQuietNs;
  if ((flush.fresh_memtable || quiet) && batch.op_count() >= kFreshMemtableOps) {
    batch.PreferFreshMemtable();
  }
  last_batch_ops_.store(batch.op_count(), std::memory_order_relaxed);
  last_batch_bytes_.store(batch.data_bytes(), std::memory_order_relaxed);
  const Lsn position = flush.position;
  auto after_state_write = [this, rows, deltas = std::move(deltas),
                            stages = std::move(flush.stages), done_keys = std::move(done_keys),
                            position]() -> Status {
    KillPoint("after_state_write");
    store::KvStore& state = pipe_->base();
    // Streamed transactions already applied before (re-sent after a restart) are dropped.
    for (uint32_t xid : stages) {
      TALLY_RETURN_IF_ERROR(store::DeletePrefixInChunks(state, StagePrefix(xid)));
    }
    TALLY_RETURN_IF_ERROR(sink_->ApplyBatch(deltas, view_names_, position));
    KillPoint("after_sink_commit");
    store::KvBatch clear;
    for (const std::string& key : done_keys) clear.Delete(key);
    if (!clear.empty()) TALLY_RETURN_IF_ERROR(state.Write(clear, false));
    durable_position_.store(position.value, std::memory_order_release);
    return Status::Ok();
  };
  return pipe_->Submit(std::move(batch), /*sync=*/true, std::move(after_state_write));
}

Status Daemon::ReleaseRows(bool wait) {
  if (!rows_held_) return Status::Ok();
  if (wait) {
    TALLY_RETURN_IF_ERROR(apply_->WaitForTask(flush_task_));
  } else if (!apply_->TaskDone(flush_task_)) {
    return Status::Ok();
  }
  for (auto& g : groups_) {
    if (g->rows) g->rows->Release();
  }
  rows_held_ = false;
  return Status::Ok();
}

Status Daemon::NoteDurableWrites() {
  if (!inflight_) return Status::Ok();
  TALLY_RETURN_IF_ERROR(ReleaseRows(/*wait=*/false));
  // A batch the pipe finished: its position may be acknowledged now, whatever follows it.
  const Lsn durable(durable_position_.load(std::memory_order_acquire));
  if (durable > checkpoint_) {
    checkpoint_ = durable;
    TALLY_RETURN_IF_ERROR(SendFeedback(checkpoint_));
  }
  // With the last flush's task done, the worker submits nothing until the next flush: the
  // pipe is this thread's to wait on, without draining the worker (which is busy with the
  // next batch's changes).
  if (apply_->TaskDone(flush_task_) && !pipe_->busy()) return FinishWrites();
  return Status::Ok();
}

Status Daemon::SettleWrites() {
  if (!inflight_) return Status::Ok();
  // The worker submits the batch.
  TALLY_RETURN_IF_ERROR(apply_->Drain());
  TALLY_RETURN_IF_ERROR(ReleaseRows(/*wait=*/false));
  return FinishWrites();
}

Status Daemon::FinishWrites() {
  // A long sink transaction must not make the walsender give up on us.
  while (!pipe_->WaitFor(std::chrono::seconds(1))) Heartbeat();
  Status s = pipe_->Wait();
  inflight_ = false;
  TALLY_RETURN_IF_ERROR(s);
  if (inflight_position_ > checkpoint_) checkpoint_ = inflight_position_;
  // Only now, with the summaries committed, may the slot forget these transactions.
  return repl_ ? SendFeedback(checkpoint_) : Status::Ok();
}

Status Daemon::ApplyGroupChange(TableGroup& g, const pgoutput::RowChange& c, bool is_insert,
                                Lsn commit_lsn) {
  using pgoutput::OldTupleKind;
  using pgoutput::TupleFieldKind;
  const bool has_pk = g.rows != nullptr && !g.pk_fields.empty();
  const size_t width = g.columns.size();
  auto pk_of = [&](const pgoutput::TupleData& t, std::string* out) -> Status {
    out->clear();
    auto& f = pk_scratch_;
    f.clear();
    for (int idx : g.pk_fields) {
      const auto& field = t.fields[idx];
      if (field.kind != TupleFieldKind::kText) {
        return Status::Corruption("primary key column missing in a change of " +
                                  g.table.QualifiedName());
      }
      f.emplace_back(field.data);
    }
    engine::EncodeRow(f, out);
    return Status::Ok();
  };

  // The old row: from the stream (REPLICA IDENTITY FULL) or from the row store.
  bool have_old = false;
  fields_old_.assign(width, std::nullopt);
  if (c.old_kind == OldTupleKind::kFull) {
    for (size_t i = 0; i < width; ++i) {
      const auto& f = c.old_tuple.fields[g.relation_fields[i]];
      if (f.kind == TupleFieldKind::kText) fields_old_[i] = f.data;
    }
    have_old = true;
  }
  if (has_pk) {
    pk_old_.clear();
    if (c.old_kind != OldTupleKind::kNone) {
      TALLY_RETURN_IF_ERROR(pk_of(c.old_tuple, &pk_old_));
    } else if (c.has_new_tuple) {
      TALLY_RETURN_IF_ERROR(pk_of(c.new_tuple, &pk_old_));
    }
    if (!have_old && !is_insert) {
      TALLY_ASSIGN_OR_RETURN(auto stored, g.rows->Lookup(pk_old_, *state_));
      if (!stored) {
        std::vector<std::optional<std::string>> key;
        engine::DecodeRow(pk_old_, &key).IgnoreError();
        std::string shown;
        for (const auto& k : key) shown += (shown.empty() ? "" : ", ") + k.value_or("NULL");
        return Status::Corruption("no stored row for key (" + shown + ") of " +
                                  g.table.QualifiedName() +
                                  " that an UPDATE or DELETE changed (the state missed a row)");
      }
      // Views into the row store's copy: valid until the row store changes (at the end).
      TALLY_RETURN_IF_ERROR(engine::DecodeRowViews(*stored, &stored_row_));
      for (size_t i = 0; i < stored_row_.size() && i < width; ++i) fields_old_[i] = stored_row_[i];
      have_old = true;
    }
  }
  if (c.has_new_tuple) {
    fields_new_.assign(width, std::nullopt);
    for (size_t i = 0; i < width; ++i) {
      const auto& f = c.new_tuple.fields[g.relation_fields[i]];
      if (f.kind == TupleFieldKind::kText) {
        fields_new_[i] = f.data;
      } else if (f.kind == TupleFieldKind::kUnchangedToast) {
        if (!have_old) {
          return Status::Corruption("unchanged TOAST value of " + g.table.QualifiedName() +
                                    " without a known old row");
        }
        fields_new_[i] = fields_old_[i];
      } else if (f.kind == TupleFieldKind::kBinary) {
        return Status::NotSupported("binary tuple data");
      }
    }
    if (has_pk) TALLY_RETURN_IF_ERROR(pk_of(c.new_tuple, &pk_new_));
  }
  const bool same_key = !has_pk || !c.has_new_tuple || pk_new_ == pk_old_;
  // The group's columns go once, for all its views, when one of them needs them, into the apply
  // worker's block as text; the worker parses them (off this thread, which bounds the
  // stream's pace) and folds them into the views.
  int32_t old_row = -1, new_row = -1;
  bool handed = false;
  if (g.text_layout.types == nullptr) {
    g.text_layout = {g.table.QualifiedName(), &g.columns, &g.column_types};
  }
  for (ViewRuntime* v : g.members) {
    if (!v->stopped.empty()) continue;
    if (have_old && c.has_new_tuple && same_key) {
      // An update that changes nothing this view reads changes nothing here.
      bool changed = false;
      for (int p : v->positions) changed = changed || fields_old_[p] != fields_new_[p];
      if (!changed) continue;
    }
    if (!handed) {
      if (have_old) old_row = apply_->AddTextRow(g.text_layout, fields_old_);
      if (c.has_new_tuple) new_row = apply_->AddTextRow(g.text_layout, fields_new_);
      handed = true;
    }
    apply_->AddOp({v->maintainer.get(), &v->positions, &v->config->name, state_.get(), commit_lsn,
                   old_row, new_row});
  }
  if (has_pk) {
    if (!c.has_new_tuple) {
      g.rows->Erase(pk_old_);
    } else {
      // Encoded first: unchanged TOASTed fields still point into the stored old row.
      encoded_row_.clear();
      engine::EncodeRow(fields_new_, &encoded_row_);
      if (have_old && pk_new_ != pk_old_) g.rows->Erase(pk_old_);
      g.rows->Put(pk_new_, encoded_row_);
    }
  }
  return Status::Ok();
}

Status Daemon::HandleChange(const pgoutput::Message& m, Lsn commit_lsn) {
  using pgoutput::MessageType;
  if (m.type == MessageType::kRelation) {
    const bool changed = relations_.Apply(m.relation) != pgoutput::RelationChange::kUnchanged;
    const auto* rel = relations_.Find(m.relation.relation_id);
    bool persisted = false;
    for (auto& g : groups_) {
      if (rel->name != g->table.name || rel->namespace_name != g->table.schema) continue;
      if (changed && state_ && !persisted) {
        TALLY_RETURN_IF_ERROR(PersistRelation(m.relation));
        persisted = true;
      }
      g->relation_id = rel->relation_id;
      g->relation_fields.clear();
      g->pk_fields.clear();
      for (const auto& name : g->columns) {
        const int c = g->table.FindColumn(name);
        auto idx = rel->FindColumn(name);
        if (!idx || rel->columns[*idx].type_oid != g->table.columns[c].type_oid) {
          // The views that read this column cannot follow; the others can.
          std::string why = "relation " + rel->QualifiedName() + " changed at " +
                            commit_lsn.ToString() + ": column " + name +
                            (idx ? " changed type" : " is gone");
          for (ViewRuntime* v : g->members) {
            for (int p : v->positions) {
              if (g->columns[p] == name && v->stopped.empty()) {
                v->stopped = why;
                spdlog::error("view {} stopped: {}", v->config->name, why);
              }
            }
          }
          g->relation_fields.push_back(-1);
          continue;
        }
        g->relation_fields.push_back(static_cast<int>(*idx));
      }
      for (int c : g->table.primary_key) {
        auto idx = rel->FindColumn(g->table.columns[c].name);
        if (idx) g->pk_fields.push_back(static_cast<int>(*idx));
      }
      if (g->pk_fields.size() != g->table.primary_key.size()) g->pk_fields.clear();
    }
    return Status::Ok();
  }
  if (m.type == MessageType::kTruncate) {
    TALLY_RETURN_IF_ERROR(apply_->Drain());
    for (auto rid : m.truncate.relation_ids) {
      for (auto& g : groups_) {
        if (g->relation_id != rid || commit_lsn < g->start_lsn) continue;
        if (g->rows) g->rows->Truncate();
        for (ViewRuntime* v : g->members) {
          if (v->stopped.empty()) v->maintainer->Truncate();
        }
      }
    }
    return Status::Ok();
  }
  if (m.type == MessageType::kInsert || m.type == MessageType::kUpdate ||
      m.type == MessageType::kDelete) {
    ++batch_changes_;
    for (auto& g : groups_) {
      if (g->relation_id != m.change.relation_id) continue;
      if (commit_lsn < g->start_lsn) continue;  // already in the group's backfill snapshot
      if (std::find(g->relation_fields.begin(), g->relation_fields.end(), -1) !=
          g->relation_fields.end()) {
        // A column is gone: the views that read it stopped; the others need the row store
        // no longer complete, so they stop too rather than go on with guesses.
        for (ViewRuntime* v : g->members) {
          if (v->stopped.empty()) v->stopped = "its table lost a column other views read";
        }
        continue;
      }
      Status s = ApplyGroupChange(*g, m.change, m.type == MessageType::kInsert, commit_lsn);
      if (!s.ok()) return s.WithContext("in transaction committing at " + commit_lsn.ToString());
    }
    // The worker's errors carry their own context.
    TALLY_RETURN_IF_ERROR(apply_->EndChange());
  }
  return Status::Ok();
}

Status Daemon::ReplayStaged(const std::string& marker) {
  TALLY_RETURN_IF_ERROR(apply_->Drain());
  // Marker: "xid commit_lsn end_lsn next_seq".
  unsigned long xid = 0;
  unsigned long long next_seq = 0;
  char commit_text[32], end_text[32];
  if (std::sscanf(marker.c_str(), "%lu %31s %31s %llu", &xid, commit_text, end_text, &next_seq) !=
      4) {
    return Status::Corruption("bad streamed-transaction replay marker '" + marker + "'");
  }
  TALLY_ASSIGN_OR_RETURN(Lsn commit_lsn, Lsn::Parse(commit_text));
  TALLY_ASSIGN_OR_RETURN(Lsn end_lsn, Lsn::Parse(end_text));
  const std::string prefix = StagePrefix(static_cast<uint32_t>(xid));
  std::string start = prefix;
  store::AppendU64(next_seq, &start);
  // The chunks' pending rows accumulate per group until the end writes them all.
  for (auto& v : views_) v->maintainer->set_pending_per_group(true);
  struct PendingPerBatch {
    std::vector<std::unique_ptr<ViewRuntime>>& views;
    ~PendingPerBatch() {
      for (auto& v : views) v->maintainer->set_pending_per_group(false);
    }
  } restore{views_};
  auto it = state_->NewIterator();
  pgoutput::Message m;
  int64_t in_chunk = 0;
  auto flush_chunk = [&](uint64_t next) -> Status {
    TALLY_RETURN_IF_ERROR(apply_->Drain());
    store::KvBatch batch;
    for (auto& v : views_) {
      std::vector<engine::SinkRow> discard;  // written to the sink from the pending keys
      bool rewrite = false;
      TALLY_RETURN_IF_ERROR(v->maintainer->Flush(*state_, batch, &discard, &rewrite));
      if (rewrite) {
        v->groups = 0;
        batch.Put(RewriteKey(v->id), "1");
      }
      v->groups += v->maintainer->group_count_delta();
      SaveViewMeta(*v, true, &batch);
    }
    for (auto& g : groups_) {
      if (g->rows) TALLY_RETURN_IF_ERROR(g->rows->Flush(*state_, batch));
    }
    batch.Put(kMetaReplay, std::to_string(xid) + " " + commit_lsn.ToString() + " " +
                               end_lsn.ToString() + " " + std::to_string(next));
    TALLY_RETURN_IF_ERROR(state_->Write(batch, /*sync=*/false));
    for (auto& g : groups_) {
      if (g->rows) g->rows->Release();
    }
    KillPoint("replay_chunk");
    Heartbeat();
    return Status::Ok();
  };
  uint64_t seq = next_seq;
  for (it->Seek(start); it->Valid() && it->key().substr(0, prefix.size()) == prefix;) {
    seq = store::ReadU64(it->key().substr(prefix.size())) + 1;
    TALLY_RETURN_IF_ERROR(pgoutput::DecodeMessage(it->value(), /*in_stream=*/true, m));
    TALLY_RETURN_IF_ERROR(HandleChange(m, commit_lsn));
    if (++in_chunk >= config_.max_batch_changes) {
      TALLY_RETURN_IF_ERROR(flush_chunk(seq));
      in_chunk = 0;
      // A live iterator pins every memtable written since it was made: a new one per chunk
      // keeps memory bounded however long the transaction.
      TALLY_RETURN_IF_ERROR(it->status());
      it = state_->NewIterator();
      start = prefix;
      store::AppendU64(seq, &start);
      it->Seek(start);
      continue;
    }
    it->Next();
  }
  TALLY_RETURN_IF_ERROR(it->status());
  TALLY_RETURN_IF_ERROR(flush_chunk(seq));
  // The whole transaction is in the state: write every summary row it changed, then make
  // its end the checkpoint and drop the staged changes.
  TALLY_RETURN_IF_ERROR(RecoverPending(end_lsn));
  store::KvBatch done;
  done.Delete(kMetaReplay);
  done.Put(kMetaCheckpoint, end_lsn.ToString());
  TALLY_RETURN_IF_ERROR(state_->Write(done, /*sync=*/true));
  checkpoint_ = end_lsn;
  batch_position_ = end_lsn;
  stage_seq_.erase(static_cast<uint32_t>(xid));
  // Without the marker nothing reads them again; what a crash leaves here, DropStaged takes.
  return store::DeletePrefixInChunks(*state_, prefix);
}

Status Daemon::PersistRelation(const pgoutput::RelationMessage& r) {
  std::string v = std::string(r.namespace_name) + "\n" + std::string(r.name) + "\n" +
                  static_cast<char>(r.replica_identity) + "\n";
  for (const auto& c : r.columns) {
    v += std::to_string(c.flags) + " " + std::to_string(c.type_oid) + " " +
         std::to_string(c.type_modifier) + " " + std::string(c.name) + "\n";
  }
  std::string key = kMetaRelationPrefix;
  store::AppendU32(r.relation_id, &key);
  store::KvBatch b;
  b.Put(key, v);
  return state_->Write(b, false);
}

// The relations the views read, as the stream last described them: a replay resumed after a
// restart may hold changes of relations described before the transaction began.
Status Daemon::LoadRelations() {
  auto it = state_->NewIterator();
  for (it->Seek(kMetaRelationPrefix);
       it->Valid() && it->key().substr(0, kMetaRelationPrefix.size()) == kMetaRelationPrefix;
       it->Next()) {
    std::string text(it->value());
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      lines.push_back(text.substr(pos, nl - pos));
      pos = nl + 1;
    }
    if (lines.size() < 3) return Status::Corruption("bad stored relation");
    pgoutput::Message m;
    m.type = pgoutput::MessageType::kRelation;
    m.relation.relation_id = store::ReadU32(it->key().substr(kMetaRelationPrefix.size()));
    m.relation.namespace_name = lines[0];
    m.relation.name = lines[1];
    m.relation.replica_identity = static_cast<pgoutput::ReplicaIdentity>(lines[2][0]);
    for (size_t i = 3; i < lines.size(); ++i) {
      pgoutput::RelationColumn c;
      unsigned flags = 0;
      int name_at = 0;
      if (std::sscanf(lines[i].c_str(), "%u %u %d %n", &flags, &c.type_oid, &c.type_modifier,
                      &name_at) < 3) {
        return Status::Corruption("bad stored relation column");
      }
      c.flags = static_cast<uint8_t>(flags);
      c.name = std::string_view(lines[i]).substr(static_cast<size_t>(name_at));
      m.relation.columns.push_back(c);
    }
    TALLY_RETURN_IF_ERROR(HandleChange(m, checkpoint_));
  }
  return it->status();
}

Status Daemon::OnCommit(Lsn end_lsn) {
  if (end_lsn > batch_position_) batch_position_ = end_lsn;
  if (!batch_dirty_) {
    batch_dirty_ = true;
    batch_started_ = Clock::now();
  }
  const int64_t limit =
      config_.max_batch_changes * (CatchingUp() ? kCatchUpChangesFactor : int64_t{1});
  if (batch_changes_ >= limit) return Flush();
  return Status::Ok();
}

Status Daemon::HandleMessage(std::string_view payload) {
  using pgoutput::MessageType;
  TALLY_RETURN_IF_ERROR(decoder_.Decode(payload, msg_));
  const auto& m = msg_;
  switch (m.type) {
    case MessageType::kBegin:
      TALLY_RETURN_IF_ERROR(BeforePosition(m.begin.final_lsn));
      in_transaction_ = true;
      current_final_lsn_ = m.begin.final_lsn;
      return Status::Ok();
    case MessageType::kCommit:
      in_transaction_ = false;
      if (m.commit.end_lsn <= checkpoint_) return Status::Ok();
      sink_->monitor().NoteCommit(m.commit.commit_time);
      return OnCommit(m.commit.end_lsn);
    case MessageType::kStreamStart:
      stream_top_xid_ = m.stream_start.xid;
      return Status::Ok();
    case MessageType::kStreamStop:
    case MessageType::kOrigin:
    case MessageType::kType:
      return Status::Ok();
    case MessageType::kStreamCommit: {
      TALLY_RETURN_IF_ERROR(BeforePosition(m.stream_commit.commit_lsn));
      if (m.stream_commit.end_lsn <= checkpoint_) {
        committed_stages_.push_back(m.stream_commit.xid);
        return Status::Ok();
      }
      // Everything received before this transaction goes first, in its own batch.
      if (batch_dirty_) TALLY_RETURN_IF_ERROR(Flush());
      TALLY_RETURN_IF_ERROR(SettleWrites());
      sink_->monitor().NoteCommit(m.stream_commit.commit_time);
      sink_->monitor().CutBatch();  // applied now, on its own
      const std::string marker = std::to_string(m.stream_commit.xid) + " " +
                                 m.stream_commit.commit_lsn.ToString() + " " +
                                 m.stream_commit.end_lsn.ToString() + " 0";
      store::KvBatch b;
      b.Put(kMetaReplay, marker);
      // Synced: the staged changes written before it are durable too.
      TALLY_RETURN_IF_ERROR(state_->Write(b, /*sync=*/true));
      TALLY_RETURN_IF_ERROR(ReplayStaged(marker));
      return SendFeedback(checkpoint_);
    }
    case MessageType::kStreamAbort: {
      const std::string prefix = StagePrefix(m.stream_abort.xid);
      if (m.stream_abort.subxid == m.stream_abort.xid) {
        stage_seq_.erase(m.stream_abort.xid);
        return store::DeletePrefixInChunks(*state_, prefix);
      }
      // Only the aborted subtransaction's changes go (they carry its xid). A staged change
      // that does not decode is kept, and fails loudly at replay.
      const pgoutput::Xid subxid = m.stream_abort.subxid;
      pgoutput::Message sub;
      return store::DeletePrefixInChunks(
          *state_, prefix, [&](std::string_view, std::string_view value) {
            return pgoutput::DecodeMessage(value, true, sub).ok() && sub.stream_xid == subxid;
          });
    }
    default:
      break;
  }
  // Logical messages (the sync barrier among them) change no view; the barrier works through
  // the commit position of its transaction.
  if (m.type == MessageType::kMessage) return Status::Ok();
  if (decoder_.in_stream()) {
    // Inside a streamed transaction: stage it until its Stream Commit. Relations are needed
    // now too, to know the layout of later messages.
    if (m.type == MessageType::kRelation) TALLY_RETURN_IF_ERROR(HandleChange(m, Lsn()));
    std::string key = StagePrefix(stream_top_xid_);
    store::AppendU64(stage_seq_[stream_top_xid_]++, &key);
    store::KvBatch b;
    b.Put(key, payload);
    return state_->Write(b, false);
  }
  if (current_final_lsn_ < checkpoint_) return Status::Ok();  // already applied
  return HandleChange(m, current_final_lsn_);
}

Status Daemon::StreamOnce() {
  apply_->Drain().IgnoreError();  // a batch interrupted before is discarded below
  relations_.Clear();
  decoder_.Reset();
  TALLY_RETURN_IF_ERROR(DropStaged());
  for (auto& v : views_) v->maintainer->Reset();
  for (auto& g : groups_) {
    if (g->rows) g->rows->Reset();
  }
  rows_held_ = false;
  apply_->set_wait_hook([this] { Heartbeat(); });
  batch_dirty_ = false;
  batch_changes_ = 0;
  batch_position_ = checkpoint_;
  sent_up_to_ = checkpoint_;
  in_transaction_ = false;
  TALLY_ASSIGN_OR_RETURN(repl_, pg::ReplicationConnection::Connect(config_.source_dsn));
  TALLY_RETURN_IF_ERROR(repl_->StartReplication(config_.slot, checkpoint_, config_.publication));
  spdlog::info("streaming from slot {} at {}", config_.slot, checkpoint_.ToString());
  LearnWalEnd();  // lag_bytes is right from the first batch
  auto last_feedback = Clock::now();
  pgoutput::CopyMessage frame;
  // While messages keep coming, the checks below (each reads the clock) run once every
  // kChecksEvery messages rather than before every message.
  constexpr int kChecksEvery = 64;
  int burst = 0;  // XLogData messages handled since the checks last ran
  while (!g_stop_requested.load()) {
    std::chrono::milliseconds wait(0);
    const bool check = burst == 0 || burst >= kChecksEvery;
    if (check) {
      burst = 0;
      TALLY_RETURN_IF_ERROR(NoteDurableWrites());
      // The daemon row <meta>.freshness reads; while a batch is in flight the sink is its
      // thread's, and the batch writes the row itself.
      if (!inflight_) TALLY_RETURN_IF_ERROR(sink_->ReportIfDue());
      TALLY_RETURN_IF_ERROR(ServiceJobs());
      if (stop_when_idle_ && !job_ && pending_jobs_.empty() && !in_transaction_) break;
      auto now = Clock::now();
      wait = std::chrono::milliseconds(100);
      if (batch_dirty_) {
        auto due = batch_started_ + config_.max_batch_ms;
        if (now >= due &&
            now - lag_checked_at_ > std::chrono::milliseconds(recheck_lag_ ? 20 : 500)) {
          recheck_lag_ = false;
          // pgoutput's XLogData does not carry the server's WAL end: ask.
          lag_checked_at_ = now;
          auto r = source_->Exec("SELECT pg_current_wal_lsn()");
          if (r.ok()) {
            auto end = Lsn::Parse(r->get(0, 0));
            if (end.ok()) sink_->monitor().NoteWalEnd(*end);
            behind_bytes_ = end.ok() && *end > sent_up_to_ ? end->value - sent_up_to_.value : 0;
          }
        }
        // Far behind the server (a backlog after downtime), staleness is already high and
        // bigger batches catch up faster: a group touched many times is written once.
        const bool catching_up =
            CatchingUp() && now < batch_started_ + config_.max_batch_ms * kCatchUpTimeFactor;
        if (now >= due && !in_transaction_ && !catching_up) {
          TALLY_RETURN_IF_ERROR(Flush());
          last_feedback = Clock::now();
          continue;
        }
        wait = std::chrono::duration_cast<std::chrono::milliseconds>(due - now);
        if (wait.count() < 1) wait = std::chrono::milliseconds(1);
      }
      wait = std::min(wait, sink_->monitor().UntilReportDue());
    }
    TALLY_ASSIGN_OR_RETURN(std::string_view data, repl_->Receive(wait));
    if (data.empty() != stream_quiet_) {
      stream_quiet_ = data.empty();
      stream_quiet_since_ns_.store(stream_quiet_ ? NowNs() : 0, std::memory_order_relaxed);
    }
    if (data.empty()) {
      if (!check) {
        burst = 0;  // the burst is over: the checks run now
        continue;
      }
      // Nothing came: perhaps caught up. The next look at the server's WAL end tells.
      if (CatchingUp()) recheck_lag_ = true;
      // Idle: say we are alive, and let an idle slot move on (the keepalive position was
      // saved before it is acknowledged).
      if (Clock::now() - last_feedback > std::chrono::seconds(5)) {
        TALLY_RETURN_IF_ERROR(SendFeedback(checkpoint_));
        last_feedback = Clock::now();
      }
      continue;
    }
    TALLY_RETURN_IF_ERROR(pgoutput::ParseCopyMessage(data, frame));
    if (frame.type == pgoutput::CopyMessageType::kXLogData) {
      const auto& x = frame.xlog_data;
      // A transaction's changes can start before a keepalive's position (decoded at commit).
      if (x.wal_start > sent_up_to_) sent_up_to_ = x.wal_start;
      TALLY_RETURN_IF_ERROR(HandleMessage(x.payload));
      ++burst;
      continue;
    }
    burst = 0;
    const auto& k = frame.keepalive;
    sink_->monitor().NoteWalEnd(k.wal_end);
    if (k.wal_end > sent_up_to_) sent_up_to_ = k.wal_end;
    // The walsender pings when it has run out of WAL to send: perhaps caught up.
    if (CatchingUp()) recheck_lag_ = true;
    if (!in_transaction_) TALLY_RETURN_IF_ERROR(BeforePosition(k.wal_end));
    if (!in_transaction_ && !batch_dirty_ && !inflight_ && stage_seq_.empty() &&
        k.wal_end > checkpoint_ && Clock::now() - last_idle_advance_ > std::chrono::seconds(1)) {
      store::KvBatch b;
      b.Put(kMetaCheckpoint, k.wal_end.ToString());
      TALLY_RETURN_IF_ERROR(state_->Write(b, true));
      checkpoint_ = k.wal_end;
      batch_position_ = checkpoint_;
      TALLY_RETURN_IF_ERROR(sink_->AdvancePosition(view_names_, checkpoint_));
      last_idle_advance_ = Clock::now();
    }
    if (k.reply_requested || Clock::now() - last_feedback > std::chrono::seconds(5)) {
      TALLY_RETURN_IF_ERROR(SendFeedback(checkpoint_));
      last_feedback = Clock::now();
    }
  }
  // Asked to stop: finish the batch at a commit boundary.
  if (!in_transaction_) TALLY_RETURN_IF_ERROR(Flush());
  return SettleWrites();
}

Status Daemon::RunLoop() {
  auto backoff = std::chrono::milliseconds(200);
  while (!g_stop_requested.load()) {
    Status s = StreamOnce();
    if (s.ok()) return s;
    if (!s.retryable()) return s;
    spdlog::warn("{}; reconnecting in {} ms", s.message(), backoff.count());
    repl_.reset();
    for (int waited = 0; waited < backoff.count() && !g_stop_requested.load(); waited += 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
    apply_->Drain().IgnoreError();
    pipe_->Wait().IgnoreError();  // the job in flight may be using the sink; its outcome is
    inflight_ = false;            // in the state (FinishInterruptedWork reads it)
    // Reconnect the sink too, and write what an interrupted batch left pending.
    auto sink = OpenSink();
    if (!sink.ok()) continue;
    sink_ = std::move(sink).value();
    auto source_conn = pg::PgConn::Connect(config_.source_dsn);
    if (source_conn.ok()) source_ = std::move(source_conn).value();
    Status r = FinishInterruptedWork();
    if (!r.ok() && !r.retryable()) return r;
    if (r.ok()) backoff = std::chrono::milliseconds(200);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// Commands.

namespace {

void PrintError(const Status& s) { std::cerr << "tally: " << s.message() << "\n"; }

}  // namespace

int CommandInit(const Config& config, std::ostream& out) {
  if (auto handed = InitViaDaemon(config, out)) return *handed;  // handoff.cc
  Daemon d(config);
  Status s = d.Prepare(/*create_missing=*/true);
  if (!s.ok()) {
    PrintError(s);
    return ExitCodeFor(s);
  }
  out << "initialized " << config.views.size() << " view(s)\n";
  return 0;
}

int CommandRun(const Config& config, std::ostream&) {
  auto d = std::make_unique<Daemon>(config);
  d->set_serve_commands(true);
  Status s = d->Prepare(/*create_missing=*/true);
  // The first connection may fail while the server starts; retry like the loop does.
  for (int attempt = 0; !s.ok() && s.retryable() && attempt < 30 && !g_stop_requested; ++attempt) {
    spdlog::warn("{}; retrying", s.message());
    std::this_thread::sleep_for(std::chrono::seconds(1));
    d = std::make_unique<Daemon>(config);
    d->set_serve_commands(true);
    s = d->Prepare(true);
  }
  if (s.ok()) s = d->RunLoop();
  d->ReportStopped();
  if (!s.ok()) {
    PrintError(s);
    return ExitCodeFor(s);
  }
  return 0;
}

}  // namespace tally::daemon
