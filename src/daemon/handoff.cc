// `tally drop` and `tally init` with `tally run` up: RocksDB admits one writer, so the CLI hands
// the work to the daemon through <meta_schema>.commands (as reconcile and refresh do) and the
// daemon does it at once, at a commit boundary between batches, with the batch so far written
// and settled:
// - drop: RemoveView (drop.cc, the same steps as a drop with no daemon), then the daemon stops
//   maintaining the view. A view still in the daemon's config stays dropped until the daemon
//   starts again (then it is built afresh, as after any drop).
// - init: the daemon re-reads its config file and builds the views it does not know from a
//   temporary slot's snapshot at their own position, as start-up does for a view added later;
//   the others go on from where they were once the backfill is done (the stream waits for it).
//   Views changed in or removed from the config are left as they are and reported (`drop`
//   removes a view; a changed one is dropped and then built with `init`).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "daemon_impl.h"
#include "tally/daemon/daemon.h"

namespace tally::daemon {

using nlohmann::json;

namespace {

// The exit code once a running daemon took the request; nullopt when none runs (or the source
// cannot be asked: the command then meets the same error itself).
std::optional<int> Handoff(const Config& config, const JobRequest& request, std::ostream& out) {
  auto source = pg::PgConn::Connect(config.source_dsn);
  if (!source.ok()) return std::nullopt;
  auto running = DaemonRunning(**source, config);
  if (!running.ok() || !*running) return std::nullopt;
  LogToStderr("tally-" + request.kind);
  auto result = ViaDaemon(config, request, **source);
  if (!result.ok()) {
    std::cerr << "tally: " << request.kind << ": " << result.status().message() << "\n";
    return ExitCodeFor(result.status());
  }
  out << result->report.value("output", std::string());
  return result->exit_code;
}

}  // namespace

std::optional<int> DropViaDaemon(const Config& config, const std::string& view, std::ostream& out) {
  JobRequest request;
  request.kind = "drop";
  request.views.push_back(view);
  auto code = Handoff(config, request, out);
  if (code && *code == 0 && config.FindView(view) != nullptr) {
    out << "note: view " << view << " is still in " << config.path
        << "; the running daemon keeps it dropped, but its next start (or `tally init` with no "
           "daemon running) builds it again (remove it from the config to keep it dropped)\n";
  }
  return code;
}

std::optional<int> InitViaDaemon(const Config& config, std::ostream& out) {
  JobRequest request;
  request.kind = "init";
  std::error_code ec;
  auto absolute = std::filesystem::absolute(config.path, ec);
  request.config_path = ec ? config.path : absolute.string();
  return Handoff(config, request, out);
}

// ---------------------------------------------------------------------------------------
// The daemon's side.

Status Daemon::RunNow(JobRequest request) {
  // The batch so far first: what follows writes the state and the sink itself.
  Status settled = Flush();
  if (settled.ok()) settled = SettleWrites();
  if (!settled.ok()) {
    CompleteJob(request, settled);
    return settled;
  }
  Result<JobResult> result = Status::InvalidArgument("drop: name one view");
  if (request.kind == "init") {
    result = AddNewViews(request.config_path);
  } else if (request.views.size() == 1) {
    result = DropRunningView(request.views.front());
  }
  CompleteJob(request, std::move(result));
  return Status::Ok();
}

Result<JobResult> Daemon::DropRunningView(const std::string& name) {
  ViewRuntime* running = nullptr;
  for (auto& v : views_) {
    if (v->config->name == name) running = v.get();
  }
  std::ostringstream out;
  bool state_changed = false;
  Status s = RemoveView(name, out, &state_changed);
  if (s.ok() || state_changed) {
    // Its keys are gone: maintaining it further would write a state nobody reads.
    if (running != nullptr) ForgetView(running);
    dropped_views_.insert(name);
  }
  if (!s.ok()) {
    return state_changed ? s.WithContext("view " + name + " is no longer maintained") : s;
  }
  spdlog::info("command: {}", out.str().substr(0, out.str().find('\n')));
  JobResult result;
  result.report = {{"view", name}, {"output", out.str()}};
  return result;
}

void Daemon::ForgetView(ViewRuntime* v) {
  if (TableGroup* g = v->group) {
    g->members.erase(std::remove(g->members.begin(), g->members.end(), v), g->members.end());
    if (g->members.empty()) {
      groups_.erase(
          std::remove_if(groups_.begin(), groups_.end(),
                         [g](const std::unique_ptr<TableGroup>& p) { return p.get() == g; }),
          groups_.end());
    }
  }
  view_names_.erase(std::remove(view_names_.begin(), view_names_.end(), v->config->name),
                    view_names_.end());
  views_.erase(std::remove_if(views_.begin(), views_.end(),
                              [v](const std::unique_ptr<ViewRuntime>& p) { return p.get() == v; }),
               views_.end());
}

Status Daemon::DescribeKnownRelation(uint32_t relation_id) {
  const pgoutput::RelationInfo* known = relations_.Find(relation_id);
  if (known == nullptr) return Status::Ok();
  const pgoutput::RelationInfo info = *known;  // HandleChange applies it again
  pgoutput::Message m;
  m.type = pgoutput::MessageType::kRelation;
  m.relation.relation_id = info.relation_id;
  m.relation.namespace_name = info.namespace_name;
  m.relation.name = info.name;
  m.relation.replica_identity = info.replica_identity;
  for (const auto& c : info.columns) {
    pgoutput::RelationColumn col;
    col.flags = c.is_key ? pgoutput::RelationColumn::kFlagKey : 0;
    col.name = c.name;
    col.type_oid = c.type_oid;
    col.type_modifier = c.type_modifier;
    m.relation.columns.push_back(col);
  }
  return HandleChange(m, checkpoint_);
}

Result<std::map<std::string, std::pair<uint32_t, uint32_t>>> Daemon::StoredViewGroups() {
  std::map<std::string, std::pair<uint32_t, uint32_t>> out;
  auto it = state_->NewIterator();
  for (it->Seek("V"); it->Valid() && it->key()[0] == 'V'; it->Next()) {
    // "ready|backfill\nname\nstart_lsn\ngroups\ngroup_id\ndefinition" (SaveViewMeta)
    std::string meta(it->value());
    std::vector<std::string> parts;
    size_t pos = 0;
    for (int i = 0; i < 5; ++i) {
      size_t nl = meta.find('\n', pos);
      if (nl == std::string::npos) return Status::Corruption("bad view meta in the state");
      parts.push_back(meta.substr(pos, nl - pos));
      pos = nl + 1;
    }
    out[parts[1]] = {store::ReadU32(it->key().substr(1)),
                     static_cast<uint32_t>(std::stoul(parts[4]))};
  }
  TALLY_RETURN_IF_ERROR(it->status());
  return out;
}

Status Daemon::DropUnreadRowStores(const std::set<uint32_t>& candidates) {
  if (candidates.empty()) return Status::Ok();
  TALLY_ASSIGN_OR_RETURN(auto stored, StoredViewGroups());
  for (uint32_t id : candidates) {
    bool read = FindGroup(id) != nullptr;
    for (const auto& [name, ids] : stored) read = read || ids.second == id;
    if (read) continue;
    std::string rows = "r";
    store::AppendU32(id, &rows);
    TALLY_RETURN_IF_ERROR(store::DeletePrefixInChunks(*state_, rows));
    std::string meta = "Mgroup";
    store::AppendU32(id, &meta);
    store::KvBatch b;
    b.Delete(meta);
    TALLY_RETURN_IF_ERROR(state_->Write(b, false));
  }
  return Status::Ok();
}

Result<JobResult> Daemon::AddNewViews(const std::string& config_path) {
  namespace fs = std::filesystem;
  if (!config_path.empty()) {
    std::error_code e1, e2;
    if (fs::weakly_canonical(config_path, e1) != fs::weakly_canonical(config_.path, e2)) {
      return Status::InvalidArgument(
          "the running daemon was started with config " + config_.path + ", not " + config_path +
          ": add the view there and run `tally init --config " + config_.path + "`");
    }
  }
  TALLY_ASSIGN_OR_RETURN(Config read, LoadConfig(config_.path));
  auto fresh = std::make_unique<Config>(std::move(read));
  auto find_running = [&](const std::string& name) -> ViewRuntime* {
    for (auto& v : views_) {
      if (v->config->name == name) return v.get();
    }
    return nullptr;
  };

  // What is new; what changed or went is only reported.
  json ignored = json::array();
  std::vector<std::unique_ptr<ViewRuntime>> added;
  PgCatalog catalog(source_.get());
  for (const auto& vc : fresh->views) {
    const std::string where = fresh->path + ":" + std::to_string(vc.line);
    if (dropped_views_.count(vc.name) > 0) {
      ignored.push_back({{"name", vc.name},
                         {"reason",
                          "dropped while this daemon runs: it is built again when tally "
                          "starts (remove it from the config to keep it dropped)"}});
      continue;
    }
    auto plan = compiler::CompileView(vc.name, vc.query, catalog);
    if (ViewRuntime* running = find_running(vc.name)) {
      if (!plan.ok() || plan->query_sql != running->plan().query_sql) {
        ignored.push_back(
            {{"name", vc.name},
             {"reason", "its query changed (" + where +
                            "): the daemon goes on with the one it was built with; `tally drop "
                            "--view` then `tally init` builds it with the new one"}});
      }
      continue;
    }
    if (!plan.ok()) {
      Status s = plan.status();
      if (s.code() == StatusCode::kNotSupported) {
        return Status::NotSupported("view " + vc.name + " (" + where + "): " + s.message() +
                                    " (refresh mode is not implemented yet)");
      }
      return s.WithContext("view " + vc.name + " (" + where + ")");
    }
    auto rt = std::make_unique<ViewRuntime>();
    rt->config = &vc;
    rt->maintainer = std::make_unique<engine::ViewMaintainer>(
        0, std::move(plan).value(), engine::EvalSettings{zone_, collation_.get()});
    added.push_back(std::move(rt));
  }
  for (auto& v : views_) {
    if (fresh->FindView(v->config->name) == nullptr) {
      ignored.push_back({{"name", v->config->name},
                         {"reason",
                          "no longer in the config: the daemon goes on maintaining it; "
                          "`tally drop --view` removes it"}});
    }
  }
  std::string notes;
  for (const auto& i : ignored) {
    notes += "ignored view " + i["name"].get<std::string>() + ": " +
             i["reason"].get<std::string>() + "\n";
  }
  JobResult result;
  if (added.empty()) {
    result.report = {{"added", json::array()},
                     {"ignored", ignored},
                     {"output", "nothing to do: the running daemon maintains every view of " +
                                    config_.path + "\n" + notes}};
    return result;
  }

  // A view the state knows from an earlier life (it left the config while kept there) keeps its
  // id: the backfill clears its keys. Its old row store goes afterwards if nothing reads it.
  TALLY_ASSIGN_OR_RETURN(auto stored, StoredViewGroups());
  std::vector<ViewRuntime*> building;
  std::set<uint32_t> old_groups;
  for (auto& rt : added) {
    auto id = stored.find(rt->config->name);
    if (id != stored.end()) old_groups.insert(id->second.second);
    rt->id = id != stored.end() ? id->second.first : next_view_id_++;
    rt->maintainer = std::make_unique<engine::ViewMaintainer>(
        rt->id, rt->maintainer->plan(), engine::EvalSettings{zone_, collation_.get()});
    rt->maintainer->set_cache_budget(cache_budget_);
    building.push_back(rt.get());
    // In views_ for the checks and the publication, which go over views_; out again on failure.
    views_.push_back(std::move(rt));
  }
  auto undo = [&](Status s) -> Status {
    for (ViewRuntime* v : building) ForgetView(v);
    // A backfill that failed before its views joined their group leaves it empty.
    groups_.erase(
        std::remove_if(groups_.begin(), groups_.end(),
                       [](const std::unique_ptr<TableGroup>& g) { return g->members.empty(); }),
        groups_.end());
    return s;
  };
  Status s = CheckSourceTables();
  // The publication gets their tables before the snapshot is taken: every change committed
  // after the snapshot's position then reaches the stream.
  if (s.ok()) s = EnsurePublication();
  for (ViewRuntime* v : building) {
    if (s.ok()) s = EnsureSummaryTable(*v);
  }
  if (!s.ok()) return undo(s);
  const auto started = Clock::now();
  auto repl = pg::ReplicationConnection::Connect(config_.source_dsn);
  if (!repl.ok()) return undo(repl.status());
  // Its own name each time: the server drops a temporary slot only once its session is gone.
  static int serial = 0;
  auto created = (*repl)->CreateLogicalSlot(
      config_.slot + "_backfill_" + std::to_string(::getpid()) + "_" + std::to_string(++serial),
      /*temporary=*/true, /*export_snapshot=*/true);
  if (!created.ok()) return undo(created.status());
  s = Backfill(building, created->snapshot_name, created->consistent_point);
  if (!s.ok()) {
    // Their metas say "backfill": the next start (or init) builds them from a fresh snapshot.
    return undo(s.WithContext("adding views to the running daemon"));
  }
  reloaded_configs_.push_back(std::move(fresh));  // the views point into it
  TALLY_RETURN_IF_ERROR(DropUnreadRowStores(old_groups));
  std::set<Oid> tables;
  for (ViewRuntime* v : building) {
    view_names_.push_back(v->config->name);
    if (tables.insert(v->plan().source.oid).second) {
      TALLY_RETURN_IF_ERROR(DescribeKnownRelation(v->plan().source.oid));
    }
  }
  const auto took = std::chrono::duration<double>(Clock::now() - started).count();
  std::string output;
  json added_json = json::array();
  for (ViewRuntime* v : building) {
    added_json.push_back({{"name", v->config->name},
                          {"groups", v->groups},
                          {"lsn", created->consistent_point.ToString()}});
    std::ostringstream line;
    line << "added view " << v->config->name << " to the running daemon: backfilled into "
         << v->groups << " groups at " << created->consistent_point.ToString() << "\n";
    output += line.str();
  }
  spdlog::info("command: added {} view(s) at {} ({:.2f} s)", building.size(),
               created->consistent_point.ToString(), took);
  result.report = {{"added", added_json}, {"ignored", ignored}, {"output", output + notes}};
  return result;
}

}  // namespace tally::daemon
