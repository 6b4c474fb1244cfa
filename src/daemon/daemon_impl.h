// The daemon's private interface: the Daemon class, split across daemon.cc (preparation, the
// stream, batches) and the other .cc files of src/daemon that add commands it runs. Not
// installed; only src/daemon includes it. One Daemon per process; not thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "apply_worker.h"
#include "pg_catalog.h"
#include "tally/core/collation.h"
#include "tally/daemon/config.h"
#include "tally/pg/connection.h"
#include "tally/pg/replication.h"
#include "tally/pgoutput/decoder.h"
#include "tally/pgoutput/relation_cache.h"
#include "tally/sink/summary_diff.h"
#include "tally/sink/summary_writer.h"
#include "tally/store/kv.h"
#include "tally/store/pipelined_store.h"
#include "view_runtime.h"

namespace tally::daemon {

using Clock = std::chrono::steady_clock;

// Work the daemon does between batches at one source position (reconcile.cc): a
// reconciliation, or a rebuild of views from a snapshot (refresh --full, repair).
struct JobRequest {
  // "reconcile" or "refresh" (jobs at a snapshot position); "drop" or "init" (run at once,
  // between batches: handoff.cc)
  std::string kind;
  std::vector<std::string> views;  // empty: every view
  bool repair = false;             // reconcile: repair what differs
  int64_t command_id = 0;          // the row in <meta_schema>.commands, 0 when none
  bool scheduled = false;          // [reconcile] every
  // A repair first compares without holding the stream; only when that finds drift does a
  // second pass (this flag) hold the stream at its position through comparison and rebuild.
  bool hold_stream = false;
  nlohmann::json carried;   // a second pass: the first pass's reports of the views without drift
  std::string config_path;  // init: the config file the command was given
};

// The outcome: the report (DESIGN.md, `reconcile --json`) and the exit code it means.
struct JobResult {
  nlohmann::json report;
  int exit_code = 0;
};

struct Job;

// The command table, client side (job_commands.cc): whether a daemon consumes the slot, and
// handing it a request and waiting for its answer.
Result<bool> DaemonRunning(pg::PgConn& source, const Config& config);
Result<JobResult> ViaDaemon(const Config& config, const JobRequest& request, pg::PgConn& source);
// Progress to stderr: stdout carries the command's answer.
void LogToStderr(const std::string& name);
// `drop` and `init` with a daemon running (handoff.cc): the exit code once handed over, or
// nullopt when no daemon runs and the command does the work itself.
std::optional<int> DropViaDaemon(const Config& config, const std::string& view, std::ostream& out);
std::optional<int> InitViaDaemon(const Config& config, std::ostream& out);

// Daemon: owns the state, the source connection and the sink.

class Daemon {
 public:
  explicit Daemon(const Config& config);
  ~Daemon();

  // Compiles the views, opens the state, checks it belongs to this database and slot,
  // creates what is missing and backfills new views.
  Status Prepare(bool create_missing);
  Status RunLoop();
  // Marks the daemon row stopped, so <meta>.freshness stops counting on this daemon at once
  // rather than after its heartbeat goes stale (monitoring.cc). Best effort.
  void ReportStopped();
  // `tally drop --view`, with no daemon running (drop.cc).
  Status DropView(const std::string& name, std::ostream& out);

  // Serve <meta_schema>.commands and the [reconcile] schedule while running (`tally run`).
  void set_serve_commands(bool on) { serve_commands_ = on; }
  // Prepare does not refuse a missing slot, or one confirmed past the state: slot_lost()
  // says so, and only RunJobWithoutStream may follow.
  void set_allow_lost_slot(bool on) { allow_lost_slot_ = on; }
  bool slot_lost() const { return slot_lost_; }
  // Runs one job in this process, streaming until it is done (no daemon runs elsewhere).
  Result<JobResult> RunJobInProcess(JobRequest request);
  // With the slot lost: compares at a fresh snapshot; with repair, recreates the slot and
  // rebuilds every view from its snapshot.
  Result<JobResult> RunJobWithoutStream(JobRequest request);

 private:
  // The sink connection and writer, with the monitor's options (monitoring.cc).
  Result<std::unique_ptr<sink::SummaryWriter>> OpenSink();
  // Tells the monitor the source's WAL end now (monitoring.cc). Best effort.
  void LearnWalEnd();
  Status CompileViews(PgCatalog& catalog);
  Status OpenState();
  Status CheckStateIdentity(const std::string& system_id);
  // privileges.cc: checks what tally may not create, creates what it may.
  Status CheckSourceTables();
  Status EnsurePublication();
  Status EnsureSinkSchema();
  Status GrantReaders(const ViewRuntime& v);
  Status EnsureSummaryTable(ViewRuntime& v);
  Status LoadViewMetas();
  void SaveViewMeta(const ViewRuntime& v, bool ready, store::KvBatch* batch);
  TableGroup* FindGroup(uint32_t id);
  TableGroup* NewGroup(uint32_t id, const compiler::TableInfo& table,
                       std::vector<std::string> columns, Lsn start_lsn);
  Status JoinGroup(ViewRuntime& v, TableGroup& g);
  Status ApplyGroupChange(TableGroup& g, const pgoutput::RowChange& c, bool is_insert,
                          Lsn commit_lsn);
  Status Backfill(std::vector<ViewRuntime*> views, const std::string& snapshot, Lsn position);
  Status FinishBackfill(ViewRuntime* v, Lsn position, int64_t rows,
                        std::chrono::system_clock::time_point started);
  // Writes the summary rows an interrupted batch left pending, at `position`.
  Status RecoverPending(Lsn position);
  Status DropStaged();
  Status FinishInterruptedWork();
  Status StreamOnce();
  Status HandleMessage(std::string_view payload);
  Status HandleChange(const pgoutput::Message& m, Lsn commit_lsn);
  Status OnCommit(Lsn end_lsn);
  // Applies a streamed transaction staged in RocksDB, in chunks of max_batch_changes, each
  // chunk one RocksDB write with the replay marker, so a transaction larger than memory
  // never sits in RAM; the summaries see it whole, in one sink transaction, at the end.
  Status ReplayStaged(const std::string& marker);
  Status PersistRelation(const pgoutput::RelationMessage& r);
  Status LoadRelations();
  // Ends the batch: writes the row stores into it, then queues a task for the apply worker
  // that writes the views (FlushViews) and hands it to the state's background thread (state
  // write, then the sink transaction), after the previous batch's. Errors of the worker's
  // part show at the worker's next EndChange, Drain or WaitForTask.
  Status Flush();
  // A batch being flushed: what the stream's thread gives the worker's task.
  struct PendingFlush {
    store::KvBatch batch;  // the row stores' part, then the views'
    Lsn position;
    std::vector<uint32_t> stages;  // staged streamed transactions to drop
    bool fresh_memtable = false;
  };
  // On the apply worker: the views' part of the batch, then pipe_->Submit.
  Status FlushViews(PendingFlush& flush);
  // Once the worker has submitted the last flush's batch (waiting for that if `wait`): the
  // row stores let go of what they held for it.
  Status ReleaseRows(bool wait);
  // Between messages: acknowledges a batch that became durable, and settles once the last
  // flush is written.
  Status NoteDurableWrites();
  // Waits for the batches being flushed (draining the worker, which submits them); once they
  // are durable and in the summaries, the last becomes the checkpoint and is acknowledged to
  // the slot.
  Status SettleWrites();
  // SettleWrites once the worker has submitted the last flush's batch.
  Status FinishWrites();
  Status SendFeedback(Lsn position, bool reply_requested = false);
  // During long work (replaying a big transaction, writing many summary rows) the walsender
  // must still hear from tally, or it ends the connection after wal_sender_timeout.
  void Heartbeat();

  // Jobs (reconcile.cc).
  // Called between messages: commands, the schedule, a job's next step.
  Status ServiceJobs();
  // Called before a transaction whose commit record is at `commit_lsn` is applied (and with
  // a keepalive's position when no transaction is open): a job waiting for its snapshot's
  // position runs there.
  Status BeforePosition(Lsn commit_lsn);
  Status StartJob(JobRequest request);
  Status ReachedPosition();
  Status SnapshotForCompare();
  Status FinishCompare();
  // Rebuilds `views` from the snapshot at `position`: their state anew (like a backfill),
  // their summaries by key-wise difference in one transaction each.
  Status RebuildViews(const std::vector<ViewRuntime*>& views, const std::string& snapshot,
                      Lsn position);
  Status FinishRebuild(ViewRuntime* v, Lsn position, int64_t rows,
                       std::chrono::system_clock::time_point started);
  // Answers the job's command (or the in-process caller) and ends the job.
  void CompleteJob(const JobRequest& request, Result<JobResult> result);

  // drop.cc: removes view `name` (summary, state keys, meta rows, publication entry) over
  // source_, sink_ and state_ (null when there is no state). `state_changed`: the view's keys
  // left the state, so whatever maintained it must stop.
  Status RemoveView(const std::string& name, std::ostream& out, bool* state_changed);
  // handoff.cc: commands a running daemon does at once, at a commit boundary.
  Status RunNow(JobRequest request);
  Result<JobResult> DropRunningView(const std::string& name);
  Result<JobResult> AddNewViews(const std::string& config_path);
  // Stops maintaining `v`: out of views_, view_names_ and its table group (the group goes
  // when it has no member left).
  void ForgetView(ViewRuntime* v);
  // The stream described `table` already in this session: a new table group reading it gets
  // the layout now (pgoutput does not send a Relation message again).
  Status DescribeKnownRelation(Oid table);
  // The state's views: name -> (view id, row store id).
  Result<std::map<std::string, std::pair<uint32_t, uint32_t>>> StoredViewGroups();
  // Deletes the row stores among `candidates` that no view (stored or running) reads.
  Status DropUnreadRowStores(const std::set<uint32_t>& candidates);
  void PollCommands();
  void FinishCommand(int64_t id, const Result<JobResult>& result);
  Status TestCorruptState();

  const Config& config_;
  DatabaseSettings db_;
  std::string system_id_;
  // Shared by every view's group states and every row store (state.cache_mb).
  std::shared_ptr<engine::CacheBudget> cache_budget_ =
      std::make_shared<engine::CacheBudget>(static_cast<size_t>(config_.cache_mb) << 20);
  std::unique_ptr<store::KvStore> state_;
  store::PipelinedStore* pipe_ = nullptr;  // state_, writing batches in the background
  bool inflight_ = false;    // a batch is being flushed (by the worker, then by pipe_)
  Lsn inflight_position_;    // the last flushed batch's position
  uint64_t flush_task_ = 0;  // the apply worker's task number of the last flush
  bool rows_held_ = false;   // the row stores hold rows for a batch not known submitted
  // The newest batch in the summaries (set on the state's thread).
  std::atomic<uint64_t> durable_position_ = 0;
  std::unique_ptr<pg::PgConn> source_;
  std::unique_ptr<sink::SummaryWriter> sink_;
  std::unique_ptr<pg::ReplicationConnection> repl_;
  std::vector<std::unique_ptr<ViewRuntime>> views_;
  std::vector<std::unique_ptr<TableGroup>> groups_;
  std::vector<std::string> view_names_;
  std::unique_ptr<Collation> collation_;
  const date::time_zone* zone_ = nullptr;
  uint32_t next_view_id_ = 1;

  // Stream state.
  pgoutput::Decoder decoder_;
  pgoutput::Message msg_;
  pgoutput::RelationCache relations_;
  Lsn checkpoint_;         // last end LSN folded into the state (and acknowledged)
  Lsn batch_position_;     // last commit end LSN folded into the overlay
  Lsn current_final_lsn_;  // of the open (non-streamed) transaction
  bool in_transaction_ = false;
  bool batch_dirty_ = false;
  int64_t batch_changes_ = 0;
  // The last state batch's size (set on the worker's thread).
  std::atomic<size_t> last_batch_ops_ = 0, last_batch_bytes_ = 0;
  Clock::time_point batch_started_;
  std::vector<uint32_t> committed_stages_;  // staged streamed txns to drop at the next flush
  std::map<uint32_t, uint64_t> stage_seq_;
  uint32_t stream_top_xid_ = 0;
  uint64_t behind_bytes_ = 0;  // server's WAL end minus sent_up_to_
  // How far the walsender has gone: the last XLogData's start, or a keepalive's WAL end,
  // which counts WAL that decodes to nothing (the summaries' own writes, other tables).
  Lsn sent_up_to_;
  Clock::time_point last_heartbeat_;
  Clock::time_point lag_checked_at_;
  bool recheck_lag_ = false;  // an empty receive or a keepalive while catching up
  static constexpr uint64_t kCatchUpBytes = 8 << 20;
  // While catching up, a batch may take this many times max_batch_ms and max_batch_changes.
  static constexpr int kCatchUpTimeFactor = 20;
  static constexpr int kCatchUpChangesFactor = 5;
  static constexpr size_t kFreshMemtableOps = 100'000;
  bool stream_quiet_ = false;  // the last receive came back empty
  // Since when the stream has had nothing to receive (Clock, in ns; 0: it has data). Read on
  // the worker's thread; a batch flushed after kQuietNs of it goes into a fresh memtable.
  std::atomic<int64_t> stream_quiet_since_ns_ = 0;
  static constexpr int64_t kQuietNs = 50'000'000;
  static int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  }
  bool CatchingUp() const { return behind_bytes_ > kCatchUpBytes; }
  Clock::time_point last_idle_advance_;
  std::vector<std::optional<std::string_view>> fields_old_, fields_new_;
  std::vector<std::optional<std::string_view>> stored_row_;
  std::vector<std::optional<std::string_view>> pk_scratch_;
  std::string pk_old_, pk_new_, encoded_row_;

  // Jobs.
  bool serve_commands_ = false;
  bool allow_lost_slot_ = false;
  bool slot_lost_ = false;
  bool stop_when_idle_ = false;  // RunJobInProcess: leave the loop once the job is done
  bool rebuilding_ = false;      // Backfill finishes with FinishRebuild
  std::deque<JobRequest> pending_jobs_;
  std::unique_ptr<Job> job_;
  std::optional<Result<JobResult>> in_process_result_;
  std::map<ViewRuntime*, int64_t> rebuild_changed_;  // rows FinishRebuild changed, per view
  std::unique_ptr<pg::PgConn> commands_conn_;
  Clock::time_point commands_polled_;
  Clock::time_point next_scheduled_;
  Clock::time_point reply_requested_at_;
  // Views dropped through this daemon: not built again (even if still in its config) until
  // the next start.
  std::set<std::string> dropped_views_;
  // Configs re-read by `init` (handoff.cc): the views added from them point into these.
  std::vector<std::unique_ptr<Config>> reloaded_configs_;

  // Folds the stream's changes into the views on its own thread. Declared last: it stops
  // before the views and the state it uses are destroyed.
  std::unique_ptr<ApplyWorker> apply_ = std::make_unique<ApplyWorker>();
};

}  // namespace tally::daemon
