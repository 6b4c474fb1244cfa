// The daemon's side of monitoring: the sink writer with the monitor's options, and the last
// word of a daemon that stops. What is written and when is sink::Monitor's business.
#include <spdlog/spdlog.h>

#include "daemon_impl.h"

namespace tally::daemon {

Result<std::unique_ptr<sink::SummaryWriter>> Daemon::OpenSink() {
  TALLY_ASSIGN_OR_RETURN(auto conn, pg::PgConn::Connect(config_.sink_dsn));
  sink::MonitorOptions options;
  options.refresh_log_retention = config_.refresh_log_retention;
  // The same connection string is the same database; a different one may still be, but then
  // freshness only loses the live WAL position while no daemon runs.
  options.source_is_sink = config_.sink_dsn == config_.source_dsn;
  return std::make_unique<sink::SummaryWriter>(std::move(conn), config_.meta_schema, options);
}

void Daemon::LearnWalEnd() {
  if (!source_ || !sink_) return;
  auto r = source_->Exec("SELECT pg_current_wal_lsn()");
  if (!r.ok()) return;  // a lost connection shows in the stream
  auto end = Lsn::Parse(r->get(0, 0));
  if (end.ok()) sink_->monitor().NoteWalEnd(*end);
}

void Daemon::ReportStopped() {
  if (!sink_ || !sink_->monitor().streaming()) return;
  Status s = sink_->Report(/*running=*/false);
  if (!s.ok())
    spdlog::warn("could not mark the daemon stopped in {}.daemon: {}", config_.meta_schema,
                 s.message());
}

}  // namespace tally::daemon
