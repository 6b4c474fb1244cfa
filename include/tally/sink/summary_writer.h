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

// A parameterized statement run inside a batch's transaction.
struct Statement {
  std::string sql;
  std::vector<std::optional<std::string>> params;
};

class SummaryWriter {
 public:
  SummaryWriter(std::unique_ptr<pg::PgConn> conn, std::string meta_schema);

  pg::PgConn& conn() { return *conn_; }
  const std::string& meta_schema() const { return meta_schema_; }

  // Creates the meta schema and tables when missing.
  Status EnsureMetaSchema();

  // Applies every delta and sets applied_lsn = position for `all_views` in one transaction.
  // `extra` statements run first, in the same transaction.
  Status ApplyBatch(const std::vector<ViewDelta>& deltas, const std::vector<std::string>& all_views,
                    Lsn position, const std::vector<Statement>& extra = {});

  // Only moves the applied position of views (an idle stream's keepalive position).
  Status AdvancePosition(const std::vector<std::string>& views, Lsn position);

 private:
  Status ApplyView(const ViewDelta& d);
  std::unique_ptr<pg::PgConn> conn_;
  std::string meta_schema_;
  std::vector<std::string> temp_tables_;  // created in this session
};

// DDL of the meta tables, quoted for `meta_schema`.
std::vector<std::string> MetaSchemaDdl(const std::string& meta_schema);

}  // namespace tally::sink
