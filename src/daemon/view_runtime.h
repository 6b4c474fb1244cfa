// What the daemon keeps per view while it runs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tally/compiler/plan.h"
#include "tally/core/lsn.h"
#include "tally/daemon/config.h"
#include "tally/engine/view_maintainer.h"
#include "tally/sink/summary_writer.h"

namespace tally::daemon {

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

  // Mapping of the current Relation message onto the plan, rebuilt on every 'R'.
  uint32_t relation_id = 0;
  std::vector<int> input_fields;  // per plan input column: index into the relation's columns
  std::vector<int> pk_fields;     // primary key columns: indices into the relation's columns
  std::vector<int> pk_inputs;     // for backfill rows: pk positions after the input columns

  const compiler::ViewPlan& plan() const { return maintainer->plan(); }
};

}  // namespace tally::daemon
