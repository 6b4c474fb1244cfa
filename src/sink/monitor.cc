#include "tally/sink/monitor.h"

#include <unistd.h>

#include <algorithm>

#include "tally/pg/connection.h"

namespace tally::sink {

namespace {

// pgoutput's timestamps count from 2000-01-01; Postgres adds them back exactly this way.
constexpr const char* kPgEpoch = "timestamptz '2000-01-01 00:00:00+00'";
constexpr int64_t kUnixToPgEpochMicros = 946684800LL * 1000000;

std::optional<std::string> OptText(const std::optional<PgMicros>& t) {
  if (!t) return std::nullopt;
  return std::to_string(*t);
}

}  // namespace

PgMicros WallToPgMicros(Monitor::WallClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() -
         kUnixToPgEpochMicros;
}

Monitor::Monitor(std::string meta_schema, MonitorOptions options)
    : meta_(pg::QuoteIdentifier(meta_schema)), options_(options) {}

void Monitor::NoteCommit(PgMicros commit_time, WallClock::time_point received_at) {
  std::lock_guard lock(mu_);
  if (pending_commit_) return;
  pending_commit_ = commit_time;
  pending_since_ = received_at;
  // A commit already old when it arrives means tally is behind: say so at once rather than
  // let a dashboard read "caught up" until the batch is applied.
  const auto age = std::chrono::microseconds(WallToPgMicros(received_at) - commit_time);
  pending_due_ =
      SteadyClock::now() +
      (age >= kPendingReportAfter
           ? SteadyClock::duration::zero()
           : std::chrono::duration_cast<SteadyClock::duration>(kPendingReportAfter - age));
}

void Monitor::NoteWalEnd(Lsn end) {
  std::lock_guard lock(mu_);
  if (end > wal_end_) wal_end_ = end;
}

void Monitor::CutBatch() {
  std::lock_guard lock(mu_);
  cut_since_ = pending_since_;
  pending_commit_.reset();
  pending_since_.reset();
}

std::chrono::milliseconds Monitor::purge_interval() const {
  // At most every few minutes; sooner only for a retention shorter than that (tests).
  return std::clamp(options_.refresh_log_retention, std::chrono::milliseconds(1000),
                    std::chrono::milliseconds(5 * 60 * 1000));
}

Statement Monitor::DaemonUpsert(bool running, std::optional<PgMicros> oldest, Lsn wal_end) const {
  Statement s;
  s.sql = "INSERT INTO " + meta_ +
          ".daemon AS d (id, running, pid, reported_at, oldest_unapplied_commit_at, "
          "source_wal_lsn, source_is_sink) VALUES (true, $1::boolean, $2::int, now(), " +
          kPgEpoch +
          " + $3::bigint * interval '1 microsecond', $4::pg_lsn, $5::boolean) "
          "ON CONFLICT (id) DO UPDATE SET running = EXCLUDED.running, pid = EXCLUDED.pid, "
          "reported_at = EXCLUDED.reported_at, "
          "oldest_unapplied_commit_at = EXCLUDED.oldest_unapplied_commit_at, "
          "source_wal_lsn = greatest(EXCLUDED.source_wal_lsn, d.source_wal_lsn), "
          "source_is_sink = EXCLUDED.source_is_sink";
  s.params = {running ? "true" : "false", std::to_string(::getpid()), OptText(oldest),
              wal_end.IsZero() ? std::nullopt : std::optional<std::string>(wal_end.ToString()),
              options_.source_is_sink ? "true" : "false"};
  return s;
}

std::optional<Statement> Monitor::PurgeIfDue(SteadyClock::time_point now) {
  if (ever_purged_ && now - last_purge_ < purge_interval()) return std::nullopt;
  staged_purge_ = true;
  return Statement{"DELETE FROM " + meta_ +
                       ".refresh_log WHERE finished_at < now() - $1::bigint * interval '1 "
                       "millisecond'",
                   {std::to_string(options_.refresh_log_retention.count())}};
}

std::vector<Statement> Monitor::BatchStatements(const std::vector<Written>& written, Lsn position,
                                                SteadyClock::time_point now) {
  std::lock_guard lock(mu_);
  std::vector<Statement> out;
  // The commits up to the cut are in this batch; what came after it is still pending once
  // the batch commits.
  if (streaming_) {
    out.push_back(DaemonUpsert(true, pending_commit_, std::max(wal_end_, position)));
  }
  if (!written.empty()) {
    std::vector<std::string> views, rows;
    for (const auto& w : written) {
      views.push_back(w.view);
      rows.push_back(std::to_string(w.rows));
    }
    const PgMicros started = WallToPgMicros(cut_since_.value_or(WallClock::now()));
    // One row per view and minute: a batch folds into the row of the minute it started in.
    out.push_back(
        {"INSERT INTO " + meta_ +
             ".refresh_log AS l (view_name, started_at, finished_at, mode, rows_changed, lsn, "
             "minute, batches) SELECT w.view_name, s.t, clock_timestamp(), 'incremental', w.n, "
             "$2::pg_lsn, to_timestamp(floor(extract(epoch FROM s.t) / 60) * 60), 1 "
             "FROM unnest($3::text[], $4::bigint[]) AS w(view_name, n), (SELECT " +
             std::string(kPgEpoch) +
             " + $1::bigint * interval '1 microsecond' AS t) s "
             "ON CONFLICT (view_name, mode, minute) DO UPDATE SET finished_at = "
             "EXCLUDED.finished_at, rows_changed = l.rows_changed + EXCLUDED.rows_changed, "
             "lsn = EXCLUDED.lsn, batches = l.batches + 1",
         {std::to_string(started), position.ToString(), pg::TextArrayLiteral(views), "{" + [&] {
            std::string joined;
            for (const auto& r : rows) joined += (joined.empty() ? "" : ",") + r;
            return joined;
          }() + "}"}});
  }
  if (auto purge = PurgeIfDue(now)) out.push_back(std::move(*purge));
  staged_reported_ = pending_commit_;
  staged_at_ = now;
  return out;
}

void Monitor::Committed() {
  std::lock_guard lock(mu_);
  reported_ = staged_reported_;
  ever_reported_ = true;
  last_report_ = staged_at_;
  if (staged_purge_) {
    last_purge_ = staged_at_;
    ever_purged_ = true;
  }
  staged_purge_ = false;
}

void Monitor::Failed() {
  std::lock_guard lock(mu_);
  staged_purge_ = false;
}

bool Monitor::ReportDue(SteadyClock::time_point now) const {
  std::lock_guard lock(mu_);
  return ReportDueLocked(now);
}

bool Monitor::ReportDueLocked(SteadyClock::time_point now) const {
  if (!ever_reported_ || now - last_report_ >= kHeartbeat) return true;
  if (ever_purged_ && now - last_purge_ >= purge_interval()) return true;
  return pending_commit_ && pending_commit_ != reported_ && now >= pending_due_;
}

std::chrono::milliseconds Monitor::UntilReportDue(SteadyClock::time_point now) const {
  std::lock_guard lock(mu_);
  if (ReportDueLocked(now)) return std::chrono::milliseconds(1);
  SteadyClock::time_point next = last_report_ + kHeartbeat;
  if (ever_purged_) next = std::min(next, last_purge_ + purge_interval());
  if (pending_commit_ && pending_commit_ != reported_) next = std::min(next, pending_due_);
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(next - now) +
                      std::chrono::milliseconds(1));
}

std::vector<Statement> Monitor::ReportStatements(bool running, SteadyClock::time_point now) {
  std::lock_guard lock(mu_);
  streaming_ = running;
  std::vector<Statement> out;
  out.push_back(DaemonUpsert(running, pending_commit_, wal_end_));
  if (auto purge = PurgeIfDue(now)) out.push_back(std::move(*purge));
  staged_reported_ = pending_commit_;
  staged_at_ = now;
  return out;
}

}  // namespace tally::sink
