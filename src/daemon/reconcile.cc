// Jobs the daemon runs at one source position: reconciliation (`tally reconcile`, the
// [reconcile] schedule) and rebuilds from a snapshot (`refresh --full`, `reconcile --repair`);
// the command table through which the CLI hands them to a running daemon.
//
// A job is exact at one position Q. The stream waits while a temporary logical slot is
// created (its consistent point Q and exported snapshot S); every commit the daemon applied
// before is at or below Q. The daemon then applies transactions until the next one commits at
// or after Q (or a keepalive says none is left below it), flushes, and at that point:
// - reconcile: copies each summary into a temporary table (one REPEATABLE READ transaction)
//   and takes a RocksDB iterator (the state at Q), then resumes the stream. A worker thread
//   streams the state's rows into another temporary table, runs each view's query in S, and
//   compares; the stream waits only for the summary copy. A repair first runs as such a
//   report; only when it finds drift does a second pass, at a new position, hold the stream
//   through the comparison and the rebuild of the views that differ (so the repair is exact
//   at that position).
// - rebuild: each view's state is built anew from S (as a backfill, under a new row store)
//   and its summary is brought to it by a key-wise difference in one sink transaction
//   (DELETE/INSERT ... ON CONFLICT of the rows that differ): no table rewrite, readers keep
//   reading, grants and row-level security stay.
// Transactions after Q then go to the new state as to any view (its start position is Q).
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <set>

#include "daemon_impl.h"
#include "tally/daemon/daemon.h"

namespace tally::daemon {

using nlohmann::json;
using pg::QuoteIdentifier;

namespace {

constexpr int kSamplesPerKind = 5;
// daemon.cc's meta key for the checkpoint (store/kv.h "M" keys).
const std::string kCheckpointKey = "Mcheckpoint";

std::string CommandsChannel(const Config& c) { return c.meta_schema + ".commands"; }
std::string DoneChannel(const Config& c) { return c.meta_schema + ".command_done"; }

// A KvStore over one iterator made at the job's position: the worker reads the state as it
// was there while the stream goes on writing.
class IteratorProxy : public store::KvIterator {
 public:
  explicit IteratorProxy(store::KvIterator* it) : it_(it) {}
  void Seek(std::string_view key) override { it_->Seek(key); }
  void SeekForPrev(std::string_view key) override { it_->SeekForPrev(key); }
  bool Valid() const override { return it_->Valid(); }
  void Next() override { it_->Next(); }
  void Prev() override { it_->Prev(); }
  std::string_view key() const override { return it_->key(); }
  std::string_view value() const override { return it_->value(); }
  Status status() const override { return it_->status(); }

 private:
  store::KvIterator* it_;
};

class SnapshotStore : public store::KvStore {
 public:
  explicit SnapshotStore(store::KvIterator* it) : it_(it) {}
  Result<std::optional<std::string>> Get(std::string_view) override {
    return Status::Internal("point reads from a state snapshot are not supported");
  }
  std::unique_ptr<store::KvIterator> NewIterator() override {
    return std::make_unique<IteratorProxy>(it_);
  }
  Status Write(const store::KvBatch&, bool) override {
    return Status::Internal("a state snapshot is read-only");
  }

 private:
  store::KvIterator* it_;
};

std::string Temp(const std::string& prefix, size_t i) { return prefix + std::to_string(i); }
std::string PgTemp(const std::string& name) { return "pg_temp." + QuoteIdentifier(name); }

json SamplesJson(const sink::DiffCounts& c, const sink::SummaryTable& t) {
  json out = json::array();
  for (const auto& s : c.samples) {
    json key = json::object();
    for (size_t k = 0; k < t.key_columns.size() && k < s.keys.size(); ++k) {
      key[t.columns[t.key_columns[k]]] = s.keys[k] ? json(*s.keys[k]) : json();
    }
    out.push_back({{"kind", s.kind == 'm'   ? "missing"
                            : s.kind == 'e' ? "extra"
                                            : "different"},
                   {"key", key}});
  }
  return out;
}

Status ErrorOr(const Status& first, const Status& second) { return first.ok() ? second : first; }

}  // namespace

struct Job {
  struct Item {
    ViewRuntime* view = nullptr;  // main thread only
    std::string name;
    sink::SummaryTable table;
    std::vector<Oid> types;
    std::string query;
    std::unique_ptr<engine::ViewMaintainer> scanner;  // the worker's own, over the snapshot
    sink::DiffCounts summary, state;
    bool repaired = false;
    int64_t changed = 0;
  };
  enum class Phase { kToPosition, kCompare, kDone };

  JobRequest request;
  Phase phase = Phase::kToPosition;
  std::vector<Item> items;
  std::unique_ptr<pg::ReplicationConnection> snapshot_conn;  // keeps S (and the temporary slot)
  Lsn position;
  std::string snapshot;
  std::string time_zone;                          // the database's, for the queries
  std::unique_ptr<pg::PgConn> compare_conn;       // to the sink
  std::unique_ptr<store::KvIterator> state_view;  // the state at the position
  bool rebuild_all = false;                       // repair after a lost stream
  std::thread worker;
  std::atomic<bool> worker_done{false};
  Status worker_status;

  ~Job() {
    if (worker.joinable()) worker.join();
  }
};

namespace {

// The worker: state rows and query results into temporary tables, then the comparisons.
// Touches only the job and the configuration.
Status CompareAtPosition(Job& job, const Config& config) {
  pg::PgConn& c = *job.compare_conn;
  SnapshotStore at_position(job.state_view.get());
  for (size_t i = 0; i < job.items.size(); ++i) {
    auto& item = job.items[i];
    const std::string t = Temp("tally_rc_t_", i);
    TALLY_RETURN_IF_ERROR(sink::CreateTempLike(c, item.table, t));
    sink::RowSource rows = [&](const sink::RowVisitor& visit) {
      return item.scanner->ScanAll(at_position, visit);
    };
    TALLY_RETURN_IF_ERROR(
        sink::CopyRowsInto(c, item.table, t, rows).WithContext("view " + item.name + ": state"));
  }
  job.state_view.reset();  // an open iterator pins the memtables written since

  // The queries, in the snapshot at the position, evaluated in the database's time zone.
  const bool same_database = config.sink_dsn == config.source_dsn;
  std::unique_ptr<pg::PgConn> source;
  pg::PgConn* q = &c;
  if (!same_database) {
    TALLY_ASSIGN_OR_RETURN(source, pg::PgConn::Connect(config.source_dsn));
    q = source.get();
  }
  TALLY_RETURN_IF_ERROR(q->ExecAll({"BEGIN ISOLATION LEVEL REPEATABLE READ",
                                    "SET TRANSACTION SNAPSHOT " + q->QuoteLiteral(job.snapshot),
                                    "SET LOCAL TimeZone = " + q->QuoteLiteral(job.time_zone)}));
  for (size_t i = 0; i < job.items.size(); ++i) {
    auto& item = job.items[i];
    const std::string name = Temp("tally_rc_q_", i);
    Status s;
    if (same_database) {
      s = c.ExecAll({"DROP TABLE IF EXISTS " + PgTemp(name),
                     "CREATE TEMP TABLE " + QuoteIdentifier(name) + " AS " + item.query});
    } else {
      s = sink::CreateTempLike(c, item.table, name);
      if (s.ok()) s = c.CopyInBegin("COPY " + QuoteIdentifier(name) + " FROM STDIN");
      if (s.ok()) {
        s = q->CopyOut("COPY (" + item.query + ") TO STDOUT",
                       [&](std::string_view line) { return c.CopyInPut(line); });
        s = ErrorOr(s, c.CopyInEnd());
      }
    }
    if (!s.ok()) {
      q->Exec("ROLLBACK").status().IgnoreError();
      return s.WithContext("view " + item.name + ": running its query");
    }
  }
  TALLY_RETURN_IF_ERROR(q->Exec("COMMIT").status());

  for (size_t i = 0; i < job.items.size(); ++i) {
    auto& item = job.items[i];
    sink::DiffShape shape{&item.table, item.types};
    const std::string truth = PgTemp(Temp("tally_rc_q_", i));
    TALLY_ASSIGN_OR_RETURN(item.summary,
                           sink::CompareInto(c, shape, truth, PgTemp(Temp("tally_rc_s_", i)),
                                             Temp("tally_rc_ds_", i), kSamplesPerKind));
    TALLY_ASSIGN_OR_RETURN(item.state,
                           sink::CompareInto(c, shape, truth, PgTemp(Temp("tally_rc_t_", i)),
                                             Temp("tally_rc_dt_", i), kSamplesPerKind));
  }
  return c.Exec("DISCARD TEMP").status();
}

}  // namespace

Daemon::Daemon(const Config& config) : config_(config) {}
Daemon::~Daemon() = default;

// ---------------------------------------------------------------------------------------
// Between messages.

Status Daemon::ServiceJobs() {
  const auto now = Clock::now();
  PollCommands();
  if (serve_commands_ && config_.reconcile_every.count() > 0) {
    if (next_scheduled_ == Clock::time_point()) {
      next_scheduled_ = now + config_.reconcile_every;
    } else if (now >= next_scheduled_ && !job_ && pending_jobs_.empty()) {
      JobRequest r;
      r.kind = "reconcile";
      r.repair = config_.reconcile_action == "repair";
      r.scheduled = true;
      pending_jobs_.push_back(r);
      next_scheduled_ = now + config_.reconcile_every;
    }
  }
  if (job_) {
    if (job_->phase == Job::Phase::kToPosition && repl_ &&
        now - reply_requested_at_ > std::chrono::milliseconds(200)) {
      // Ask the server where the stream stands: its keepalive tells when nothing below the
      // position is left to receive, however idle the source.
      reply_requested_at_ = now;
      TALLY_RETURN_IF_ERROR(SendFeedback(checkpoint_, /*reply_requested=*/true));
    }
    if (job_->phase == Job::Phase::kCompare && job_->worker_done.load()) {
      job_->worker.join();
      TALLY_RETURN_IF_ERROR(apply_->Drain());
      return FinishCompare();
    }
    return Status::Ok();
  }
  if (!pending_jobs_.empty()) {
    const std::string& kind = pending_jobs_.front().kind;
    const bool now_kind = kind == "drop" || kind == "init";
    if (now_kind && in_transaction_) return Status::Ok();  // at the next commit boundary
    TALLY_RETURN_IF_ERROR(apply_->Drain());                // jobs change views and read their state
    JobRequest r = std::move(pending_jobs_.front());
    pending_jobs_.pop_front();
    return now_kind ? RunNow(std::move(r)) : StartJob(std::move(r));
  }
  return Status::Ok();
}

Status Daemon::BeforePosition(Lsn commit_lsn) {
  if (!job_ || job_->phase != Job::Phase::kToPosition || commit_lsn < job_->position) {
    return Status::Ok();
  }
  TALLY_RETURN_IF_ERROR(apply_->Drain());
  return ReachedPosition();
}

Status Daemon::StartJob(JobRequest request) {
  auto job = std::make_unique<Job>();
  job->request = request;
  job->time_zone = db_.time_zone;
  auto fail = [&](Status s) {
    CompleteJob(request, s);
    return Status::Ok();
  };
  std::vector<ViewRuntime*> chosen;
  if (request.views.empty()) {
    for (auto& v : views_) chosen.push_back(v.get());
  } else {
    for (const auto& name : request.views) {
      ViewRuntime* found = nullptr;
      for (auto& v : views_) {
        if (v->config->name == name) found = v.get();
      }
      if (found == nullptr) {
        return fail(Status::InvalidArgument("no view named '" + name + "' in " + config_.path));
      }
      chosen.push_back(found);
    }
  }
  for (ViewRuntime* v : chosen) {
    if (!v->ready) {
      return fail(Status::FailedPrecondition("view " + v->config->name + " is not backfilled"));
    }
    Job::Item item;
    item.view = v;
    item.name = v->config->name;
    item.table = v->table;
    for (const auto& o : v->plan().outputs) item.types.push_back(o.type);
    item.query = v->plan().query_sql;
    job->items.push_back(std::move(item));
  }
  auto repl = pg::ReplicationConnection::Connect(config_.source_dsn);
  if (!repl.ok()) return fail(repl.status());
  static int serial = 0;
  const std::string slot =
      "tally_job_" + std::to_string(::getpid()) + "_" + std::to_string(++serial);
  // The stream waits while the slot is created: every commit applied so far is then below
  // its consistent point.
  auto created = (*repl)->CreateLogicalSlot(slot, /*temporary=*/true, /*export_snapshot=*/true);
  if (!created.ok()) return fail(created.status());
  if (created->consistent_point < batch_position_) {
    return fail(Status::Internal("the snapshot's position " + created->consistent_point.ToString() +
                                 " is behind what tally applied (" + batch_position_.ToString() +
                                 ")"));
  }
  auto compare = pg::PgConn::Connect(config_.sink_dsn);
  if (!compare.ok()) return fail(compare.status());
  job->snapshot_conn = std::move(repl).value();
  job->position = created->consistent_point;
  job->snapshot = created->snapshot_name;
  job->compare_conn = std::move(compare).value();
  spdlog::info("{} of {} view(s){}: snapshot at {}", request.kind, job->items.size(),
               request.repair ? " (repair)" : "", job->position.ToString());
  job_ = std::move(job);
  reply_requested_at_ = Clock::time_point();
  return Status::Ok();
}

Status Daemon::ReachedPosition() {
  TALLY_RETURN_IF_ERROR(Flush());
  TALLY_RETURN_IF_ERROR(SettleWrites());  // the summaries hold everything up to the position
  job_->phase = Job::Phase::kCompare;
  if (job_->request.kind == "reconcile") return SnapshotForCompare();
  std::vector<ViewRuntime*> views;
  for (auto& item : job_->items) views.push_back(item.view);
  Status s = RebuildViews(views, job_->snapshot, job_->position);
  if (!s.ok()) {
    CompleteJob(job_->request, s);
    return s;
  }
  JobResult result;
  result.report = {{"lsn", job_->position.ToString()}, {"views", json::array()}};
  for (auto& item : job_->items) {
    result.report["views"].push_back(
        {{"name", item.name}, {"rows_changed", rebuild_changed_[item.view]}});
  }
  CompleteJob(job_->request, std::move(result));
  return Status::Ok();
}

Status Daemon::SnapshotForCompare() {
  auto& c = *job_->compare_conn;
  std::vector<std::string> copy = {"BEGIN ISOLATION LEVEL REPEATABLE READ"};
  for (size_t i = 0; i < job_->items.size(); ++i) {
    const std::string name = Temp("tally_rc_s_", i);
    copy.push_back("DROP TABLE IF EXISTS " + PgTemp(name));
    copy.push_back("CREATE TEMP TABLE " + QuoteIdentifier(name) + " AS TABLE " +
                   sink::QualifiedName(job_->items[i].table));
  }
  copy.push_back("COMMIT");
  Status s = c.ExecAll(copy);
  if (!s.ok()) {
    c.Exec("ROLLBACK").status().IgnoreError();
    CompleteJob(job_->request, s.WithContext("copying the summaries"));
    return Status::Ok();
  }
  job_->state_view = state_->NewIterator();
  for (auto& item : job_->items) {
    item.scanner = std::make_unique<engine::ViewMaintainer>(
        item.view->id, item.view->plan(), engine::EvalSettings{zone_, collation_.get()});
  }
  if (job_->request.hold_stream || !repl_) {
    // A repair happens at this position, so the stream waits for the comparison.
    job_->worker_status = CompareAtPosition(*job_, config_);
    job_->worker_done = true;
    return FinishCompare();
  }
  Job* job = job_.get();
  const Config* config = &config_;
  job_->worker = std::thread([job, config] {
    job->worker_status = CompareAtPosition(*job, *config);
    job->worker_done = true;
  });
  return Status::Ok();
}

Status Daemon::FinishCompare() {
  TALLY_RETURN_IF_ERROR(SettleWrites());  // the sink connection is this thread's again
  Job& job = *job_;
  if (!job.worker_status.ok()) {
    CompleteJob(job.request,
                job.worker_status.WithContext("reconcile at " + job.position.ToString()));
    return Status::Ok();
  }
  auto report_of = [](const Job::Item& item) -> json {
    const auto& s = item.summary;
    const auto& st = item.state;
    return {{"name", item.name},
            {"missing", s.missing},
            {"extra", s.extra},
            {"different", s.different},
            {"repaired", item.repaired},
            {"samples", SamplesJson(s, item.table)},
            {"state",
             {{"missing", st.missing},
              {"extra", st.extra},
              {"different", st.different},
              {"samples", SamplesJson(st, item.table)}}}};
  };
  if (job.request.repair && !job.request.hold_stream && !job.rebuild_all) {
    // Drift found while the stream went on: repair it in a second pass that holds the stream
    // at its own position (the drift is measured again there).
    JobRequest again = job.request;
    again.hold_stream = true;
    again.views.clear();
    again.carried = json::array();
    for (auto& item : job.items) {
      if (item.summary.total() + item.state.total() > 0) {
        again.views.push_back(item.name);
      } else {
        again.carried.push_back(report_of(item));
      }
    }
    if (!again.views.empty()) {
      spdlog::info("{}: drift in {} view(s) at {}; repairing at a new position", job.request.kind,
                   again.views.size(), job.position.ToString());
      pending_jobs_.push_front(std::move(again));
      job_.reset();
      return Status::Ok();
    }
  }
  std::vector<ViewRuntime*> rebuild;
  if (job.rebuild_all) {
    for (auto& v : views_) {
      if (v->ready) rebuild.push_back(v.get());
    }
  } else if (job.request.repair) {
    for (auto& item : job.items) {
      if (item.summary.total() + item.state.total() > 0) rebuild.push_back(item.view);
    }
  }
  if (!rebuild.empty()) {
    Status s = RebuildViews(rebuild, job.snapshot, job.position);
    if (!s.ok()) {
      CompleteJob(job.request, s);
      return s;
    }
    for (auto& item : job.items) {
      item.repaired = std::find(rebuild.begin(), rebuild.end(), item.view) != rebuild.end() &&
                      item.summary.total() + item.state.total() > 0;
    }
  }
  JobResult result;
  result.report = {{"lsn", job.position.ToString()}, {"views", json::array()}};
  const std::string meta = QuoteIdentifier(config_.meta_schema);
  std::vector<std::string> names;
  bool drift_left = false;
  if (job.request.carried.is_array()) {
    // The first pass's views without drift; their reconcile_log rows are written here.
    for (const auto& r : job.request.carried) {
      result.report["views"].push_back(r);
      names.push_back(r["name"].get<std::string>());
      auto logged = sink_->conn().ExecParams(
          "INSERT INTO " + meta +
              ".reconcile_log (view_name, run_at, lsn, missing, extra, different, repaired) "
              "VALUES ($1, now(), $2::pg_lsn, 0, 0, 0, false)",
          {r["name"].get<std::string>(), job.position.ToString()});
      if (!logged.ok()) spdlog::warn("writing reconcile_log: {}", logged.status().message());
    }
  }
  for (auto& item : job.items) {
    const auto& s = item.summary;
    const auto& st = item.state;
    result.report["views"].push_back(report_of(item));
    if (s.total() + st.total() > 0 && !item.repaired) drift_left = true;
    names.push_back(item.name);
    auto logged = sink_->conn().ExecParams(
        "INSERT INTO " + meta +
            ".reconcile_log (view_name, run_at, lsn, missing, extra, different, repaired) "
            "VALUES ($1, now(), $2::pg_lsn, $3, $4, $5, $6)",
        {item.name, job.position.ToString(), std::to_string(s.missing), std::to_string(s.extra),
         std::to_string(s.different), item.repaired ? "true" : "false"});
    if (!logged.ok()) spdlog::warn("writing reconcile_log: {}", logged.status().message());
  }
  auto stamped = sink_->conn().ExecParams(
      "UPDATE " + meta + ".views SET last_reconcile = now() WHERE name = ANY($1::text[])",
      {pg::TextArrayLiteral(names)});
  if (!stamped.ok()) spdlog::warn("writing last_reconcile: {}", stamped.status().message());
  result.exit_code = drift_left ? 3 : 0;
  CompleteJob(job.request, std::move(result));
  return Status::Ok();
}

void Daemon::CompleteJob(const JobRequest& request, Result<JobResult> result) {
  if (job_ && job_->worker.joinable()) job_->worker.join();
  if (request.command_id != 0) FinishCommand(request.command_id, result);
  if (!result.ok()) {
    spdlog::error("{} failed: {}", request.kind, result.status().message());
  } else if (request.kind == "reconcile") {
    for (const auto& v : result->report["views"]) {
      const int64_t drift =
          v["missing"].get<int64_t>() + v["extra"].get<int64_t>() + v["different"].get<int64_t>();
      const auto& st = v["state"];
      const int64_t state_drift = st["missing"].get<int64_t>() + st["extra"].get<int64_t>() +
                                  st["different"].get<int64_t>();
      auto level = drift + state_drift > 0 && !v["repaired"].get<bool>() ? spdlog::level::warn
                                                                         : spdlog::level::info;
      spdlog::log(level,
                  "reconcile{} of {} at {}: {} missing, {} extra, {} different; state: {} "
                  "missing, {} extra, {} different{}",
                  request.scheduled ? " (scheduled)" : "", v["name"].get<std::string>(),
                  result->report["lsn"].get<std::string>(), v["missing"].get<int64_t>(),
                  v["extra"].get<int64_t>(), v["different"].get<int64_t>(),
                  st["missing"].get<int64_t>(), st["extra"].get<int64_t>(),
                  st["different"].get<int64_t>(), v["repaired"].get<bool>() ? "; repaired" : "");
    }
  }
  if (stop_when_idle_) in_process_result_ = std::move(result);
  job_.reset();
}

// ---------------------------------------------------------------------------------------
// Rebuilds.

Status Daemon::RebuildViews(const std::vector<ViewRuntime*>& views, const std::string& snapshot,
                            Lsn position) {
  std::set<TableGroup*> old_groups;
  std::map<Oid, uint32_t> relation_of;  // table -> relation id the stream announced
  for (ViewRuntime* v : views) {
    TableGroup* g = v->group;
    if (g != nullptr) {
      g->members.erase(std::remove(g->members.begin(), g->members.end(), v), g->members.end());
      old_groups.insert(g);
      if (g->relation_id != 0) relation_of[g->table.oid] = g->relation_id;
    }
    v->group = nullptr;
    v->stopped.clear();
  }
  for (ViewRuntime* v : views) v->maintainer->Reset();  // its cached groups are the old state's
  rebuild_changed_.clear();
  rebuilding_ = true;
  Status s = Backfill(views, snapshot, position);
  rebuilding_ = false;
  if (!s.ok()) {
    // The views' metas say "backfill": the next start rebuilds them from a fresh snapshot.
    return Status::FailedPrecondition(s.message() +
                                      " (the view is rebuilt from a fresh snapshot when tally "
                                      "starts again)");
  }
  // Row stores no view reads any more.
  for (TableGroup* g : old_groups) {
    if (!g->members.empty()) continue;
    std::string rows = "r";
    store::AppendU32(g->id, &rows);
    TALLY_RETURN_IF_ERROR(store::DeletePrefixInChunks(*state_, rows));
    std::string meta = "Mgroup";
    store::AppendU32(g->id, &meta);
    store::KvBatch b;
    b.Delete(meta);
    TALLY_RETURN_IF_ERROR(state_->Write(b, false));
    groups_.erase(
        std::remove_if(groups_.begin(), groups_.end(),
                       [g](const std::unique_ptr<TableGroup>& p) { return p.get() == g; }),
        groups_.end());
  }
  // The stream described these tables already in this session: give the new row stores the
  // layout (pgoutput does not send a Relation message again).
  for (const auto& [oid, rid] : relation_of) TALLY_RETURN_IF_ERROR(DescribeKnownRelation(rid));
  return Status::Ok();
}

Status Daemon::FinishRebuild(ViewRuntime* v, Lsn position, int64_t rows,
                             std::chrono::system_clock::time_point started) {
  auto& c = sink_->conn();
  const std::string meta = QuoteIdentifier(config_.meta_schema);
  const std::string temp = "tally_rb_" + std::to_string(v->id);
  std::vector<Oid> types;
  for (const auto& o : v->plan().outputs) types.push_back(o.type);
  sink::DiffShape shape{&v->table, types};
  const double started_epoch = std::chrono::duration<double>(started.time_since_epoch()).count();
  int64_t changed = 0;
  auto in_transaction = [&]() -> Status {
    TALLY_RETURN_IF_ERROR(sink::CreateTempLike(c, v->table, temp));
    sink::RowSource all = [this, v](const sink::RowVisitor& visit) {
      return v->maintainer->ScanAll(*state_, visit);
    };
    TALLY_RETURN_IF_ERROR(sink::CopyRowsInto(c, v->table, temp, all));
    Heartbeat();
    TALLY_RETURN_IF_ERROR(
        sink::CompareInto(c, shape, PgTemp(temp), sink::QualifiedName(v->table), temp + "_diff", 0)
            .status());
    TALLY_ASSIGN_OR_RETURN(changed, sink::ApplyDiff(c, shape, temp + "_diff"));
    TALLY_RETURN_IF_ERROR(
        c.ExecParams("UPDATE " + meta +
                         ".views SET groups = $2, applied_lsn = CASE WHEN applied_lsn IS NULL OR "
                         "applied_lsn < $3::pg_lsn THEN $3::pg_lsn ELSE applied_lsn END, "
                         "applied_at = now() WHERE name = $1",
                     {v->config->name, std::to_string(v->groups), position.ToString()})
            .status());
    TALLY_RETURN_IF_ERROR(
        c.ExecParams("INSERT INTO " + meta +
                         ".refresh_log VALUES ($1, to_timestamp($2), now(), 'full', $3, $4)",
                     {v->config->name, std::to_string(started_epoch), std::to_string(changed),
                      position.ToString()})
            .status());
    return c.ExecAll({"DROP TABLE " + PgTemp(temp), "DROP TABLE " + PgTemp(temp + "_diff")});
  };
  TALLY_RETURN_IF_ERROR(c.Exec("BEGIN; SET LOCAL synchronous_commit = on").status());
  Status s = in_transaction();
  if (!s.ok()) {
    c.Exec("ROLLBACK").status().IgnoreError();
    return s.WithContext("view " + v->config->name + ": writing the rebuilt summary");
  }
  TALLY_RETURN_IF_ERROR(c.Exec("COMMIT").status());
  v->maintainer->set_record_pending(true);
  v->ready = true;
  store::KvBatch done;
  SaveViewMeta(*v, true, &done);
  TALLY_RETURN_IF_ERROR(state_->Write(done, true));
  rebuild_changed_[v] = changed;
  spdlog::info("view {}: rebuilt from {} rows into {} groups at {}; {} summary rows changed",
               v->config->name, rows, v->groups, position.ToString(), changed);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// In-process jobs (no daemon running).

Result<JobResult> Daemon::RunJobInProcess(JobRequest request) {
  stop_when_idle_ = true;
  pending_jobs_.push_back(std::move(request));
  TALLY_RETURN_IF_ERROR(RunLoop());
  if (!in_process_result_) return Status::Unavailable("interrupted before the job finished");
  return std::move(*in_process_result_);
}

Result<JobResult> Daemon::RunJobWithoutStream(JobRequest request) {
  stop_when_idle_ = true;
  if (request.kind != "reconcile") {
    return Status::FailedPrecondition("replication slot '" + config_.slot +
                                      "' is lost; run `tally reconcile --repair` first");
  }
  TALLY_ASSIGN_OR_RETURN(auto repl, pg::ReplicationConnection::Connect(config_.source_dsn));
  pg::CreatedSlot created;
  if (request.repair) {
    // Every view lost the same stretch of the stream: all are rebuilt, from the snapshot of
    // the slot made anew.
    TALLY_RETURN_IF_ERROR(source_
                              ->ExecParams("SELECT pg_drop_replication_slot(slot_name) FROM "
                                           "pg_replication_slots WHERE slot_name = $1",
                                           {config_.slot})
                              .status()
                              .WithContext("dropping slot " + config_.slot));
    TALLY_ASSIGN_OR_RETURN(created, repl->CreateLogicalSlot(config_.slot, false, true));
    request.views.clear();
    spdlog::info("recreated replication slot {} at {}", config_.slot,
                 created.consistent_point.ToString());
  } else {
    TALLY_ASSIGN_OR_RETURN(
        created, repl->CreateLogicalSlot("tally_job_" + std::to_string(::getpid()), true, true));
  }
  const bool repair = request.repair;
  pending_jobs_.clear();
  // As StartJob, with this slot.
  auto job = std::make_unique<Job>();
  job->request = request;
  job->time_zone = db_.time_zone;
  job->rebuild_all = repair;
  for (auto& v : views_) {
    if (!v->ready) continue;
    Job::Item item;
    item.view = v.get();
    item.name = v->config->name;
    item.table = v->table;
    for (const auto& o : v->plan().outputs) item.types.push_back(o.type);
    item.query = v->plan().query_sql;
    job->items.push_back(std::move(item));
  }
  if (!request.views.empty()) {
    std::vector<Job::Item> kept;
    for (const auto& name : request.views) {
      auto it = std::find_if(job->items.begin(), job->items.end(),
                             [&](const Job::Item& i) { return i.name == name; });
      if (it == job->items.end()) {
        return Status::InvalidArgument("no view named '" + name + "' in " + config_.path);
      }
      kept.push_back(std::move(*it));
    }
    job->items = std::move(kept);
  }
  job->snapshot_conn = std::move(repl);
  job->position = created.consistent_point;
  job->snapshot = created.snapshot_name;
  TALLY_ASSIGN_OR_RETURN(job->compare_conn, pg::PgConn::Connect(config_.sink_dsn));
  job->phase = Job::Phase::kCompare;
  job_ = std::move(job);
  const Lsn position = job_->position;
  TALLY_RETURN_IF_ERROR(SnapshotForCompare());
  if (!in_process_result_) return Status::Internal("reconcile ended without a result");
  if (repair && in_process_result_->ok()) {
    store::KvBatch b;
    b.Put(kCheckpointKey, position.ToString());
    TALLY_RETURN_IF_ERROR(state_->Write(b, true));
    checkpoint_ = position;
    TALLY_RETURN_IF_ERROR(sink_->AdvancePosition(view_names_, position));
  }
  return std::move(*in_process_result_);
}

// ---------------------------------------------------------------------------------------
// The command table: <meta_schema>.commands, NOTIFY on "<meta_schema>.commands".

void Daemon::PollCommands() {
  if (!serve_commands_) return;
  const auto now = Clock::now();
  if (now - commands_polled_ < std::chrono::milliseconds(50)) return;
  static Clock::time_point last_table_check;
  bool check = now - last_table_check > std::chrono::seconds(10);
  commands_polled_ = now;
  if (!commands_conn_ || !commands_conn_->ok()) {
    static Clock::time_point last_attempt;
    if (now - last_attempt < std::chrono::seconds(5)) return;
    last_attempt = now;
    auto c = pg::PgConn::Connect(config_.sink_dsn);
    if (!c.ok()) {
      spdlog::warn("command table: {}", c.status().message());
      return;
    }
    commands_conn_ = std::move(c).value();
    const std::string m = QuoteIdentifier(config_.meta_schema);
    Status s = commands_conn_->ExecAll(
        {"LISTEN " + QuoteIdentifier(CommandsChannel(config_)),
         // Commands a previous daemon was running when it stopped will not finish.
         "UPDATE " + m +
             ".commands SET status = 'failed', finished_at = now(), result = "
             "'{\"error\": \"the daemon stopped while running it\", \"exit_code\": 1}' "
             "WHERE status = 'running'"});
    if (!s.ok()) {
      spdlog::warn("command table: {}", s.message());
      commands_conn_.reset();
      return;
    }
    check = true;
  }
  PGconn* raw = commands_conn_->raw();
  if (PQconsumeInput(raw) != 1) {
    commands_conn_.reset();
    return;
  }
  while (PGnotify* n = PQnotifies(raw)) {
    check = true;
    PQfreemem(n);
  }
  if (!check) return;
  if (job_ || !pending_jobs_.empty()) {
    last_table_check = Clock::time_point();  // look again as soon as the job is done
    return;
  }
  last_table_check = now;
  const std::string m = QuoteIdentifier(config_.meta_schema);
  auto claimed = commands_conn_->Exec(
      "UPDATE " + m +
      ".commands SET status = 'running', started_at = now() WHERE id = (SELECT id "
      "FROM " +
      m +
      ".commands WHERE status = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP "
      "LOCKED) RETURNING id, command, args::text");
  if (!claimed.ok()) {
    spdlog::warn("command table: {}", claimed.status().message());
    return;
  }
  if (claimed->rows() == 0) return;
  commands_polled_ = Clock::time_point();  // another may be waiting
  last_table_check = Clock::time_point();
  JobRequest r;
  r.command_id = std::stoll(std::string(claimed->get(0, 0)));
  r.kind = std::string(claimed->get(0, 1));
  json args = json::parse(std::string(claimed->get(0, 2)), nullptr, /*allow_exceptions=*/false);
  if (args.is_discarded() || !args.is_object() ||
      (r.kind != "reconcile" && r.kind != "refresh" && r.kind != "drop" && r.kind != "init")) {
    FinishCommand(r.command_id, Status::InvalidArgument("unknown command '" + r.kind + "'"));
    return;
  }
  if (args.contains("views") && args["views"].is_array()) {
    for (const auto& v : args["views"]) {
      if (v.is_string()) r.views.push_back(v.get<std::string>());
    }
  }
  r.repair = args.value("repair", false);
  r.config_path = args.value("config", std::string());
  spdlog::info("command {}: {}", r.command_id, r.kind);
  pending_jobs_.push_back(std::move(r));
}

void Daemon::FinishCommand(int64_t id, const Result<JobResult>& result) {
  json out;
  std::string status = "done";
  if (result.ok()) {
    out = result->report;
    out["exit_code"] = result->exit_code;
  } else {
    out = {{"error", result.status().message()}, {"exit_code", ExitCodeFor(result.status())}};
    status = "failed";
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!commands_conn_ || !commands_conn_->ok()) {
      auto c = pg::PgConn::Connect(config_.sink_dsn);
      if (!c.ok()) continue;
      commands_conn_ = std::move(c).value();
      commands_conn_->Exec("LISTEN " + QuoteIdentifier(CommandsChannel(config_)))
          .status()
          .IgnoreError();
    }
    auto r = commands_conn_->ExecParams(
        "WITH done AS (UPDATE " + QuoteIdentifier(config_.meta_schema) +
            ".commands SET status = $2, finished_at = now(), result = $3::jsonb WHERE id = $1 "
            "RETURNING id) SELECT pg_notify($4, id::text) FROM done",
        {std::to_string(id), status, out.dump(), DoneChannel(config_)});
    if (r.ok()) return;
    spdlog::warn("command {}: writing its result: {}", id, r.status().message());
    commands_conn_.reset();
  }
}

// ---------------------------------------------------------------------------------------
// Test hook: TALLY_TEST_CORRUPT_STATE=<view> folds the first stored row of the view's table
// into the view's state once more, without touching its summary: the state then differs
// from the query in exactly one group (integration/reconcile injects drift with it).

Status Daemon::TestCorruptState() {
  const char* name = std::getenv("TALLY_TEST_CORRUPT_STATE");
  if (name == nullptr || *name == '\0') return Status::Ok();
  for (auto& v : views_) {
    if (v->config->name != name) continue;
    if (!v->ready || v->group == nullptr || !v->group->rows) {
      return Status::FailedPrecondition(std::string("TALLY_TEST_CORRUPT_STATE: view ") + name +
                                        " has no stored rows");
    }
    const std::string prefix = v->group->rows->Prefix();
    auto it = state_->NewIterator();
    it->Seek(prefix);
    if (!it->Valid() || it->key().substr(0, prefix.size()) != prefix) {
      return Status::FailedPrecondition("TALLY_TEST_CORRUPT_STATE: the table is empty");
    }
    std::vector<std::optional<std::string>> row;
    TALLY_RETURN_IF_ERROR(engine::DecodeRow(it->value(), &row));
    it.reset();
    std::vector<std::optional<std::string_view>> projected;
    for (int p : v->positions) {
      projected.push_back(row[p] ? std::optional<std::string_view>(*row[p]) : std::nullopt);
    }
    v->maintainer->set_record_pending(false);
    TALLY_RETURN_IF_ERROR(v->maintainer->ApplyRow(projected, 1, *state_));
    store::KvBatch b;
    std::vector<engine::SinkRow> discard;
    bool rewrite = false;
    TALLY_RETURN_IF_ERROR(v->maintainer->Flush(*state_, b, &discard, &rewrite));
    v->maintainer->set_record_pending(true);
    TALLY_RETURN_IF_ERROR(state_->Write(b, true));
    spdlog::warn("TALLY_TEST_CORRUPT_STATE: one row counted twice in the state of view {}", name);
    return Status::Ok();
  }
  return Status::InvalidArgument(std::string("TALLY_TEST_CORRUPT_STATE: no view ") + name);
}

}  // namespace tally::daemon
