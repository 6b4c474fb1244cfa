// What the daemon keeps per view while it runs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "apply_worker.h"
#include "tally/compiler/plan.h"
#include "tally/core/lsn.h"
#include "tally/daemon/config.h"
#include "tally/engine/row_store.h"
#include "tally/engine/view_maintainer.h"
#include "tally/sink/summary_writer.h"

namespace tally::daemon {

struct ViewRuntime;

// The views over one table that were backfilled from one snapshot: they share one row store
// (the union of the columns they read, once per primary key) and the mapping of the table's
// Relation message onto those columns.
struct TableGroup {
  uint32_t id = 0;  // the row store's id; kept in each member view's meta
  compiler::TableInfo table;
  std::vector<std::string> columns;        // stored columns, by name, in table order
  std::vector<Oid> column_types;           // of `columns`, from the catalog
  std::unique_ptr<engine::RowStore> rows;  // null when the table has no primary key
  std::vector<ViewRuntime*> members;
  Lsn start_lsn;

  // The current Relation message's layout, rebuilt on every 'R'.
  uint32_t relation_id = 0;
  std::vector<int> relation_fields;  // per stored column: index into the relation's columns
  std::vector<int> pk_fields;        // primary key columns: indices into the relation's columns

  // For the apply worker, which parses the changed rows (set on first use).
  ApplyWorker::TextLayout text_layout;
};

struct ViewRuntime {
  const ViewConfig* config = nullptr;
  uint32_t id = 0;
  std::unique_ptr<engine::ViewMaintainer> maintainer;
  sink::SummaryTable table;
  // Transactions whose commit record starts before this are already in the view's state
  // (its backfill snapshot saw them).
  Lsn start_lsn;
  bool ready = false;  // backfilled
  int64_t groups = 0;
  std::string stopped;  // why the view stopped following the stream; empty while it runs

  TableGroup* group = nullptr;
  uint32_t group_id = 0;       // from the view's meta; 0 until assigned
  std::vector<int> positions;  // per plan input column: index into group->columns

  const compiler::ViewPlan& plan() const { return maintainer->plan(); }
};

}  // namespace tally::daemon
