#include "tally/sink/monitor.h"

#include <catch2/catch.hpp>

namespace tally::sink {
namespace {

using namespace std::chrono_literals;
using Steady = Monitor::SteadyClock;
using Wall = Monitor::WallClock;

bool Mentions(const std::vector<Statement>& st, const std::string& what) {
  for (const auto& s : st) {
    if (s.sql.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE("monitor: the first report is due at once and marks the stream as started") {
  Monitor m("tally", {});
  REQUIRE(m.ReportDue());
  REQUIRE_FALSE(m.streaming());
  auto st = m.ReportStatements(true);
  REQUIRE(m.streaming());
  REQUIRE(Mentions(st, "\"tally\".daemon"));
  REQUIRE(Mentions(st, "DELETE FROM \"tally\".refresh_log"));  // the first purge
  m.Committed();
  REQUIRE_FALSE(m.ReportDue());
}

TEST_CASE("monitor: a fresh commit is reported only if its batch takes over a second") {
  Monitor m("tally", {});
  const auto t0 = Steady::now();
  m.ReportStatements(true, t0);
  m.Committed();
  m.NoteCommit(WallToPgMicros(Wall::now()));
  REQUIRE(m.pending_commit());
  REQUIRE_FALSE(m.ReportDue(Steady::now()));
  REQUIRE(m.UntilReportDue() <= 1001ms);  // the stream wakes up for it
  REQUIRE(m.UntilReportDue() > 900ms);
  REQUIRE(m.ReportDue(Steady::now() + 1100ms));
  // A batch applies it: nothing pending, nothing due.
  m.CutBatch();
  auto st = m.BatchStatements({{"v", 3}}, Lsn{100});
  REQUIRE(Mentions(st, "refresh_log"));
  REQUIRE(st[0].params[2] == std::nullopt);  // oldest_unapplied_commit_at NULL
  m.Committed();
  REQUIRE_FALSE(m.pending_commit());
  REQUIRE_FALSE(m.ReportDue(Steady::now() + 1100ms));
}

TEST_CASE("monitor: a commit received while the previous batch is written stays pending") {
  // Batches are written in the background: the stream cuts a batch, goes on receiving, and
  // the cut batch's transaction asks for its statements later.
  Monitor m("tally", {});
  m.ReportStatements(true);
  m.Committed();
  m.NoteCommit(WallToPgMicros(Wall::now() - 2s));
  m.CutBatch();
  const PgMicros next = WallToPgMicros(Wall::now());
  m.NoteCommit(next);  // the next batch's
  auto st = m.BatchStatements({{"v", 1}}, Lsn{7});
  REQUIRE(st[0].params[2] == std::to_string(next));  // still unapplied when this commits
  m.Committed();
  REQUIRE(*m.pending_commit() == next);
}

TEST_CASE("monitor: a commit already old when received is reported at once") {
  Monitor m("tally", {});
  m.ReportStatements(true);
  m.Committed();
  const PgMicros old = WallToPgMicros(Wall::now() - 30s);
  m.NoteCommit(old);
  m.NoteCommit(WallToPgMicros(Wall::now()));  // later commits do not move the oldest
  REQUIRE(*m.pending_commit() == old);
  REQUIRE(m.ReportDue());
  auto st = m.ReportStatements(true);
  REQUIRE(st[0].params[2] == std::to_string(old));
  m.Committed();
  REQUIRE(m.pending_commit());  // a report applies nothing
  REQUIRE_FALSE(m.ReportDue());
}

TEST_CASE("monitor: a failed batch keeps the pending commit") {
  Monitor m("tally", {});
  m.ReportStatements(true);
  m.Committed();
  m.NoteCommit(WallToPgMicros(Wall::now()));
  m.CutBatch();
  const PgMicros later = WallToPgMicros(Wall::now());
  m.NoteCommit(later);
  m.BatchStatements({}, Lsn{5});
  m.Failed();
  REQUIRE(*m.pending_commit() == later);
}

TEST_CASE("monitor: heartbeat and purge intervals") {
  MonitorOptions o;
  o.refresh_log_retention = 1s;
  Monitor m("tally", o);
  REQUIRE(m.purge_interval() == 1s);
  const auto t0 = Steady::now();
  m.ReportStatements(true, t0);
  m.Committed();
  REQUIRE_FALSE(m.ReportDue(t0 + 500ms));
  REQUIRE(m.ReportDue(t0 + 1s));  // purge
  auto st = m.BatchStatements({}, Lsn{1}, t0 + 1s);
  REQUIRE(Mentions(st, "DELETE"));
  REQUIRE_FALSE(Mentions(st, "refresh_log AS l"));  // nothing written, nothing logged
  m.Committed();
  REQUIRE_FALSE(m.ReportDue(t0 + 1500ms));

  Monitor week("tally", {});
  REQUIRE(week.purge_interval() == 5min);
  week.ReportStatements(true, t0);
  week.Committed();
  REQUIRE_FALSE(week.ReportDue(t0 + 9s));
  REQUIRE(week.UntilReportDue(t0 + 9s) == 1001ms);
  REQUIRE(week.ReportDue(t0 + Monitor::kHeartbeat));
}

TEST_CASE("monitor: batches before the stream starts write no daemon row") {
  Monitor m("tally", {});
  auto st = m.BatchStatements({{"v", 1}}, Lsn{7});
  REQUIRE_FALSE(Mentions(st, ".daemon"));
  REQUIRE(Mentions(st, "refresh_log"));
}

}  // namespace
}  // namespace tally::sink
