// Monitor: what tally tells a dashboard and an operator about its own progress, written to the
// meta schema (DESIGN.md, "Meta tables"):
//   - <meta>.daemon, one row: whether a daemon is running, when it last reported, the commit
//     timestamp of the oldest commit it has received but not applied yet, and the source's WAL
//     end as it last learned it. <meta>.freshness computes staleness and lag from it.
//   - <meta>.refresh_log: one row per view per minute for stream batches ('incremental':
//     started_at = the first batch's start, finished_at = the last one's end, rows_changed
//     summed, lsn = the last), plus one row per backfill; rows older than the retention are
//     deleted, at most once per purge interval.
//
// The monitor only produces statements and decides when they are due; SummaryWriter runs them,
// inside a batch's transaction or alone when the stream is idle. Times are injected so the
// policy is unit-tested. Thread-safe: the stream notes commits while the previous batch's
// transaction (on the state's writer thread) asks for its statements.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tally/core/lsn.h"
#include "tally/core/status.h"

namespace tally::sink {

// A parameterized statement.
struct Statement {
  std::string sql;
  std::vector<std::optional<std::string>> params;
};

struct MonitorOptions {
  std::chrono::milliseconds refresh_log_retention{7LL * 24 * 3600 * 1000};
  // The summaries live in the source database: when no daemon runs, <meta>.freshness can
  // measure lag against the live pg_current_wal_lsn().
  bool source_is_sink = true;
};

// Microseconds since 2000-01-01 UTC, as pgoutput sends commit timestamps.
using PgMicros = int64_t;

class Monitor {
 public:
  using WallClock = std::chrono::system_clock;
  using SteadyClock = std::chrono::steady_clock;

  // A daemon that received no commit for this long, with one pending, says so on its own.
  static constexpr std::chrono::seconds kPendingReportAfter{1};
  // A running daemon writes its row at least this often (a dashboard takes a row older than
  // kDeadAfter, in <meta>.freshness, as a daemon that is gone).
  static constexpr std::chrono::seconds kHeartbeat{10};
  static constexpr int kDeadAfterSeconds = 30;

  Monitor(std::string meta_schema, MonitorOptions options);

  // A commit was received from the stream (not yet applied).
  void NoteCommit(PgMicros commit_time, WallClock::time_point received_at = WallClock::now());
  // The source's WAL end, from a keepalive or pg_current_wal_lsn().
  void NoteWalEnd(Lsn end);
  // The batch being written ends here: the commits noted so far are its own, and once its
  // transaction commits they are applied; later ones stay pending.
  void CutBatch();

  // The statements for a stream batch's transaction: the daemon row (nothing pending once this
  // commits), the refresh_log rows of `written` (view, summary rows written), and the purge
  // when due. `position`: the batch's applied position.
  struct Written {
    std::string view;
    int64_t rows = 0;
  };
  std::vector<Statement> BatchStatements(const std::vector<Written>& written, Lsn position,
                                         SteadyClock::time_point now = SteadyClock::now());
  // The transaction holding the statements last handed out committed: what they wrote is now
  // what the database says.
  void Committed();
  // It failed: nothing it wrote holds.
  void Failed();

  // Whether the stream, idle or in a long batch, should write the daemon row now: a pending
  // commit not yet reported that is over kPendingReportAfter old (received that old, or
  // waiting that long), the heartbeat, or the purge.
  bool ReportDue(SteadyClock::time_point now = SteadyClock::now()) const;
  // How long until a report is due (at least 1 ms): the stream waits no longer than this.
  std::chrono::milliseconds UntilReportDue(SteadyClock::time_point now = SteadyClock::now()) const;
  // The daemon row (and the purge when due), alone; `running` false when the daemon stops.
  // Then Committed or Failed, as for a batch. The first report with `running` marks the
  // stream as started: from then on batches write the daemon row too (before it, a batch is
  // `init`'s or start-up's work, not a running daemon's).
  std::vector<Statement> ReportStatements(bool running,
                                          SteadyClock::time_point now = SteadyClock::now());

  bool streaming() const {
    std::lock_guard lock(mu_);
    return streaming_;
  }
  std::optional<PgMicros> pending_commit() const {
    std::lock_guard lock(mu_);
    return pending_commit_;
  }
  Lsn wal_end() const {
    std::lock_guard lock(mu_);
    return wal_end_;
  }
  std::chrono::milliseconds purge_interval() const;

 private:
  bool ReportDueLocked(SteadyClock::time_point now) const;
  Statement DaemonUpsert(bool running, std::optional<PgMicros> oldest, Lsn wal_end) const;
  std::optional<Statement> PurgeIfDue(SteadyClock::time_point now);

  mutable std::mutex mu_;
  std::string meta_;  // quoted
  MonitorOptions options_;
  std::optional<WallClock::time_point> cut_since_;  // the cut batch's first commit came
  bool streaming_ = false;
  std::optional<PgMicros> pending_commit_;              // oldest received, not applied
  std::optional<WallClock::time_point> pending_since_;  // when the batch's first commit came
  SteadyClock::time_point pending_due_;                 // when the pending commit is worth a report
  Lsn wal_end_;
  // What the statements last handed out make true once they commit.
  std::optional<PgMicros> staged_reported_;
  bool staged_purge_ = false;
  SteadyClock::time_point staged_at_;
  // What the database says.
  std::optional<PgMicros> reported_;
  bool ever_reported_ = false;
  SteadyClock::time_point last_report_;
  SteadyClock::time_point last_purge_;
  bool ever_purged_ = false;
};

PgMicros WallToPgMicros(Monitor::WallClock::time_point t);

}  // namespace tally::sink
