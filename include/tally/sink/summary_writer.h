// SummaryWriter: tally's writes to the sink database — the meta schema, summary tables,
// and one transaction per batch that applies changed summary rows and advances each view's
// applied position in <meta>.views (DESIGN.md, "Durability", step 2).
//
// Rows arrive as COPY text per output column. A batch: COPY into a temporary table, DELETE
// the vanished groups, INSERT ... ON CONFLICT for the rest, all in one transaction with
// synchronous_commit = on. Not thread-safe: owns its connection.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tally/core/lsn.h"
#include "tally/core/status.h"
#include "tally/engine/view_maintainer.h"
#include "tally/pg/connection.h"
#include "tally/sink/monitor.h"

namespace tally::sink {

struct SummaryTable {
  std::string schema;
  std::string name;
  std::vector<std::string> columns;  // in output order, as Postgres named them
  std::vector<int> key_columns;      // indices into columns: the unique key (empty: one row)
};

// Calls `visit` for every row of a delta; rows are streamed, never collected, so a delta of
// any size (a backfill, a whole rewrite) takes bounded memory.
using RowVisitor = std::function<Status(const engine::SinkRow&)>;
using RowSource = std::function<Status(const RowVisitor& visit)>;

// A RowSource over rows already in memory (a normal batch's).
RowSource RowsOf(const std::vector<engine::SinkRow>* rows);

struct ViewDelta {
  const SummaryTable* table = nullptr;
  std::string view_name;
  bool rewrite_all = false;  // empty the summary first
  RowSource rows;
  int64_t groups = 0;  // group count after this batch
};

class SummaryWriter {
 public:
  SummaryWriter(std::unique_ptr<pg::PgConn> conn, std::string meta_schema,
                MonitorOptions monitor_options = {});

  pg::PgConn& conn() { return *conn_; }
  const std::string& meta_schema() const { return meta_schema_; }
  Monitor& monitor() { return monitor_; }

  // Creates the meta tables when missing, and the meta schema when missing and this role may
  // (otherwise an error that points at sql/setup.sql).
  Status EnsureMetaSchema();
  // Lets `role` (a view's grant_select) read the monitoring tables: USAGE on the meta schema,
  // SELECT on freshness and refresh_log.
  Status GrantMonitoring(const std::string& role);

  // Applies every delta and sets applied_lsn = position for `all_views` in one transaction.
  // `extra` statements run first, in the same transaction. A non-empty `all_views` makes it a
  // stream batch: the monitor's statements (the daemon row, refresh_log) go with it, and a
  // delta of a view in `all_views` is logged as an incremental batch.
  Status ApplyBatch(const std::vector<ViewDelta>& deltas, const std::vector<std::string>& all_views,
                    Lsn position, const std::vector<Statement>& extra = {});

  // Only moves the applied position of views (an idle stream's keepalive position).
  Status AdvancePosition(const std::vector<std::string>& views, Lsn position);

  // Writes the daemon row when the monitor says it is due; only the stream loop calls this
  // (see Monitor::ReportStatements).
  Status ReportIfDue();
  // Writes the daemon row now; `running` false as the daemon stops.
  Status Report(bool running);

 private:
  // Writes one view's delta; counts the summary rows written in `rows`.
  Status ApplyView(const ViewDelta& d, int64_t* rows);
  Status RunInTransaction(const std::vector<Statement>& statements);
  std::unique_ptr<pg::PgConn> conn_;
  std::string meta_schema_;
  Monitor monitor_;
  std::vector<std::string> temp_tables_;  // created in this session
};

// DDL of the meta tables, quoted for `meta_schema`.
std::vector<std::string> MetaSchemaDdl(const std::string& meta_schema);

}  // namespace tally::sink
