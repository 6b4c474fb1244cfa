// tally's configuration file (TOML), as DESIGN.md's "Configuration" section defines it.
//
// Loading is strict: unknown keys, wrong types and missing required keys are
// InvalidArgument errors naming the key and its line. Relative paths are resolved against
// the config file's directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tally/core/status.h"

namespace tally::daemon {

enum class ViewMode { kAuto, kIncremental, kRefresh };

struct ViewConfig {
  std::string name;
  std::string query;  // the SQL text: a SELECT, or the content of `file`
  std::string file;   // where the query came from, if from a file
  ViewMode mode = ViewMode::kAuto;
  std::vector<std::string> grant_select;
  std::chrono::milliseconds refresh_min_interval{5 * 60 * 1000};
  int line = 0;  // where [[views]] begins, for messages
};

struct Config {
  std::string path;  // the config file
  std::string source_kind = "postgres";
  std::string source_dsn;
  std::string slot = "tally";
  std::string publication = "tally";
  std::string sink_dsn;  // defaults to source_dsn
  std::string sink_schema = "public";
  std::string meta_schema = "tally";
  std::string state_dir;  // absolute
  int64_t cache_mb = 256;  // group states kept in memory between batches, all views together
  std::chrono::milliseconds max_batch_ms{100};
  int64_t max_batch_changes = 50000;
  std::chrono::milliseconds reconcile_every{60 * 60 * 1000};  // 0 = off
  std::string reconcile_action = "report";
  std::string metrics_listen = "127.0.0.1:9187";
  std::chrono::milliseconds refresh_log_retention{7LL * 24 * 3600 * 1000};
  std::vector<ViewConfig> views;

  const ViewConfig* FindView(const std::string& name) const;
};

Result<Config> LoadConfig(const std::string& path);
Result<Config> ParseConfig(std::string_view text, const std::string& path);
// "100ms", "5s", "5m", "1h", "7d" -> milliseconds; "" -> 0.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
std::string_view ViewModeName(ViewMode m);

}  // namespace tally::daemon
