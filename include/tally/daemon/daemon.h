// The daemon and the commands that share its machinery (init, run, validate, sync, status,
// explain). One process owns the state directory (RocksDB admits one writer).
//
// Life of a batch (DESIGN.md, "Durability"): the stream's transactions are folded into the
// view maintainers' overlays; at a commit boundary, when max_batch_ms or max_batch_changes is
// reached, one synced RocksDB write holds the new state, the checkpoint and the pending summary
// rows; one sink transaction writes those rows and the views' applied positions; then the
// pending rows are cleared and the flush position is reported to the slot.
#pragma once

#include <atomic>
#include <iosfwd>
#include <memory>
#include <string>

#include "tally/core/status.h"
#include "tally/daemon/config.h"

namespace tally::daemon {

// Set by SIGTERM/SIGINT: the daemon finishes its batch, checkpoints and returns.
extern std::atomic<bool> g_stop_requested;

struct CommandOptions {
  bool json = false;
  std::string view;                          // --view
  std::chrono::milliseconds timeout{30000};  // sync --timeout
  bool repair = false;                       // reconcile --repair
  bool full = false;                         // refresh --full
};

// Each returns the process exit code (0 ok, 1 runtime failure, 2 bad usage/config/SQL,
// 3 drift) and prints what the user needs on `out` / errors on stderr.
int CommandValidate(const Config& config, std::ostream& out);
int CommandInit(const Config& config, std::ostream& out);
int CommandRun(const Config& config, std::ostream& out);
int CommandSync(const Config& config, const CommandOptions& opts, std::ostream& out);
int CommandStatus(const Config& config, const CommandOptions& opts, std::ostream& out);
int CommandExplain(const Config& config, const CommandOptions& opts, std::ostream& out);
// reconcile and refresh hand their work to a running daemon through <meta_schema>.commands,
// or do it in this process when none runs.
int CommandReconcile(const Config& config, const CommandOptions& opts, std::ostream& out);
int CommandRefresh(const Config& config, const CommandOptions& opts, std::ostream& out);
int CommandDrop(const Config& config, const CommandOptions& opts, std::ostream& out);
int CommandUninstall(const Config& config, std::ostream& out);

// Exit code for a failed Status.
int ExitCodeFor(const Status& s);

}  // namespace tally::daemon
