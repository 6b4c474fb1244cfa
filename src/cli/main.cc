// tally's command line (DESIGN.md, "Commands"). CLI11 is included here only: it is slow to
// compile.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <iostream>

#include "tally/daemon/config.h"
#include "tally/daemon/daemon.h"

namespace {

void OnSignal(int) { tally::daemon::g_stop_requested = true; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tally: keeps PostgreSQL summary tables exact from the replication stream"};
  app.require_subcommand(1);
  std::string config_path;
  tally::daemon::CommandOptions opts;
  std::string timeout = "30s";

  auto add = [&](const char* name, const char* help) {
    auto* sub = app.add_subcommand(name, help);
    sub->add_option("--config,-c", config_path, "configuration file (TOML)")->required();
    return sub;
  };
  auto* validate = add("validate", "check the config and every view; print each view's mode");
  auto* init = add("init", "create what is missing and backfill new views");
  auto* run = add("run", "the daemon: follow the stream and keep the summaries current");
  auto* sync = add("sync", "wait until every view reflects every transaction committed before");
  sync->add_option("--timeout", timeout, "how long to wait, e.g. 30s");
  auto* status = add("status", "per view: mode, applied LSN, lag, staleness, groups");
  status->add_flag("--json", opts.json, "JSON output");
  auto* explain = add("explain", "print a view's maintenance plan");
  explain->add_option("--view", opts.view, "view name")->required();
  auto* reconcile = add("reconcile",
                        "compare summaries (and tally's state) with their queries "
                        "at one position; exit 3 on drift");
  reconcile->add_option("--view", opts.view, "only this view");
  reconcile->add_flag("--json", opts.json, "JSON output");
  reconcile->add_flag("--repair", opts.repair, "repair what differs");
  auto* refresh = add("refresh", "rebuild a view from a fresh snapshot (--full)");
  refresh->add_option("--view", opts.view, "view name")->required();
  refresh->add_flag("--full", opts.full, "rebuild its state and summary from a snapshot");
  auto* drop = add("drop", "remove one view");
  drop->add_option("--view", opts.view)->required();
  auto* uninstall = add("uninstall", "remove everything tally created");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  auto config = tally::daemon::LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "tally: " << config.status().message() << "\n";
    return 2;
  }
  auto d = tally::daemon::ParseDuration(timeout);
  if (!d.ok()) {
    std::cerr << "tally: --timeout: " << d.status().message() << "\n";
    return 2;
  }
  opts.timeout = *d;
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  using namespace tally::daemon;
  if (*validate) return CommandValidate(*config, std::cout);
  if (*init) return CommandInit(*config, std::cout);
  if (*run) return CommandRun(*config, std::cout);
  if (*sync) return CommandSync(*config, opts, std::cout);
  if (*status) return CommandStatus(*config, opts, std::cout);
  if (*explain) return CommandExplain(*config, opts, std::cout);
  if (*drop) return CommandDrop(*config, opts, std::cout);
  if (*uninstall) return CommandUninstall(*config, std::cout);
  if (*reconcile) return CommandReconcile(*config, opts, std::cout);
  if (*refresh) return CommandRefresh(*config, opts, std::cout);
  return 2;
}
