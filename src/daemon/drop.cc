// `tally drop --view V`: removes one view — its summary table, its state (its keys, and its
// table group's row store when no other view shares it), its meta rows, and its table from the
// publication when no other view reads that table.
//
// Order, so a failure anywhere leaves something a second `drop` (or `init`) finishes: the sink
// transaction (DROP TABLE, meta rows) is opened first, so a summary that cannot be dropped (a
// user's view depends on it) stops here with nothing changed; then the state loses the view in
// one synced write; then the sink commits; the publication comes last. A view whose state is
// gone but whose table and meta row are left is dropped by the next `drop`; if it is still in
// the config, `init`/`run` builds it afresh over the table tally created (a new id, a backfill
// that rewrites the whole summary).
//
// With `tally run` up, the drop goes to that daemon through the command table (handoff.cc): it
// runs RemoveView between batches, on its own connections and state, and stops maintaining
// the view.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <set>

#include "daemon_impl.h"
#include "tally/daemon/daemon.h"

namespace tally::daemon {

using pg::QuoteIdentifier;

namespace {

// The state's key layout (store/kv.h; the same names as daemon.cc's).
const std::string kRewritePrefix = "Mrewrite";
const std::string kMetaGroupPrefix = "Mgroup";

std::string WithId(std::string prefix, uint32_t id) {
  store::AppendU32(id, &prefix);
  return prefix;
}

struct StoredView {
  uint32_t id = 0;
  std::string name;
  uint32_t group_id = 0;
  std::string definition;
};

// "V" id -> "ready|backfill\nname\nstart_lsn\ngroups\ngroup_id\ndefinition".
Result<std::vector<StoredView>> ReadStoredViews(store::KvStore& state) {
  std::vector<StoredView> out;
  auto it = state.NewIterator();
  for (it->Seek("V"); it->Valid() && it->key()[0] == 'V'; it->Next()) {
    std::string meta(it->value());
    std::vector<std::string> parts;
    size_t pos = 0;
    for (int i = 0; i < 5 && pos != std::string::npos; ++i) {
      size_t nl = meta.find('\n', pos);
      if (nl == std::string::npos) return Status::Corruption("bad view meta in the state");
      parts.push_back(meta.substr(pos, nl - pos));
      pos = nl + 1;
    }
    StoredView v;
    v.id = store::ReadU32(it->key().substr(1));
    v.name = parts[1];
    v.group_id = static_cast<uint32_t>(std::stoul(parts[4]));
    v.definition = meta.substr(pos);
    out.push_back(std::move(v));
  }
  TALLY_RETURN_IF_ERROR(it->status());
  return out;
}

}  // namespace

Status Daemon::DropView(const std::string& name, std::ostream& out) {
  TALLY_ASSIGN_OR_RETURN(source_, pg::PgConn::Connect(config_.source_dsn));
  TALLY_ASSIGN_OR_RETURN(sink_, OpenSink());

  // A daemon that started since CommandDrop looked owns the state now: RocksDB's lock would
  // refuse it anyway, this says why.
  TALLY_ASSIGN_OR_RETURN(auto slot, source_->ExecParams("SELECT active_pid FROM "
                                                        "pg_replication_slots WHERE slot_name = "
                                                        "$1 AND active",
                                                        {config_.slot}));
  if (slot.rows() > 0) {
    return Status::FailedPrecondition(
        "a tally daemon started meanwhile (process " + std::string(slot.get(0, 0)) +
        " consumes slot " + config_.slot + "); run `tally drop` again to hand it the drop");
  }
  // The state, if there is one (a drop never creates a state directory).
  if (std::filesystem::exists(std::filesystem::path(config_.state_dir) / "CURRENT")) {
    TALLY_ASSIGN_OR_RETURN(state_, store::OpenRocksDb(config_.state_dir));
  }
  bool state_changed = false;
  TALLY_RETURN_IF_ERROR(RemoveView(name, out, &state_changed));
  if (config_.FindView(name) != nullptr) {
    out << "note: view " << name << " is still in " << config_.path
        << "; the next `tally init` or `tally run` builds it again (remove it from the config "
           "to keep it dropped)\n";
  }
  return Status::Ok();
}

Status Daemon::RemoveView(const std::string& name, std::ostream& out, bool* state_changed) {
  *state_changed = false;
  auto& src = *source_;
  auto& snk = sink_->conn();
  const std::string meta = QuoteIdentifier(config_.meta_schema);

  // The meta row: where its summary is.
  std::optional<std::string> summary, definition;
  TALLY_ASSIGN_OR_RETURN(auto has_meta,
                         snk.ExecParams("SELECT to_regclass($1) IS NOT NULL", {meta + ".views"}));
  const bool meta_exists = has_meta.get(0, 0) == "t";
  if (meta_exists) {
    TALLY_ASSIGN_OR_RETURN(auto row, snk.ExecParams("SELECT summary_schema, summary_table, "
                                                    "definition FROM " +
                                                        meta + ".views WHERE name = $1",
                                                    {name}));
    if (row.rows() == 1) {
      summary = QuoteIdentifier(row.get(0, 0)) + "." + QuoteIdentifier(row.get(0, 1));
      definition = std::string(row.get(0, 2));
    }
  }

  std::vector<StoredView> stored;
  const StoredView* view = nullptr;
  if (state_) {
    TALLY_ASSIGN_OR_RETURN(stored, ReadStoredViews(*state_));
    for (const auto& s : stored) {
      if (s.name == name) view = &s;
    }
  }
  if (view == nullptr && !summary) {
    return Status::InvalidArgument("no view named '" + name + "': neither the state in " +
                                   config_.state_dir + " nor " + meta + ".views knows it");
  }
  if (view != nullptr && !definition) definition = view->definition;

  // Which tables the other views read, and which one this view read: compiled from what the
  // state, the meta table and the config say (a table since dropped is simply not found).
  PgCatalog catalog(source_.get());
  auto table_of = [&](const std::string& view_name, const std::string& sql) -> std::optional<Oid> {
    auto plan = compiler::CompileView(view_name, sql, catalog);
    if (!plan.ok()) return std::nullopt;
    return plan->source.oid;
  };
  std::optional<Oid> table;
  if (definition) table = table_of(name, *definition);
  if (!table) {
    if (const ViewConfig* vc = config_.FindView(name)) table = table_of(name, vc->query);
  }
  std::set<Oid> still_read;
  std::set<std::string> others;
  for (const auto& s : stored) {
    if (s.name != name && others.insert(s.name).second) {
      if (auto t = table_of(s.name, s.definition)) still_read.insert(*t);
    }
  }
  if (meta_exists) {
    TALLY_ASSIGN_OR_RETURN(
        auto rows,
        snk.ExecParams("SELECT name, definition FROM " + meta + ".views WHERE name <> $1", {name}));
    for (int i = 0; i < rows.rows(); ++i) {
      std::string other(rows.get(i, 0));
      if (others.insert(other).second) {
        if (auto t = table_of(other, std::string(rows.get(i, 1)))) still_read.insert(*t);
      }
    }
  }
  for (const auto& vc : config_.views) {
    if (vc.name != name && others.insert(vc.name).second) {
      if (auto t = table_of(vc.name, vc.query)) still_read.insert(*t);
    }
  }

  // 1. The sink transaction, up to its commit: a summary that cannot go stops the drop here.
  TALLY_RETURN_IF_ERROR(snk.Exec("BEGIN").status());
  auto rollback = [&](Status s) {
    snk.Exec("ROLLBACK").status().IgnoreError();
    return s;
  };
  if (summary) {
    auto owned = snk.ExecParams(
        "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = to_regclass($1)",
        {*summary});
    if (!owned.ok()) return rollback(owned.status());
    if (owned->rows() == 1 && owned->get(0, 0) != "t") {
      return rollback(Status::FailedPrecondition("view " + name + ": this role does not own " +
                                                 *summary + ", so it cannot drop it"));
    }
    auto d = snk.Exec("DROP TABLE IF EXISTS " + *summary);
    if (!d.ok()) return rollback(d.status().WithContext("view " + name + ": dropping " + *summary));
  }
  if (meta_exists) {
    for (const std::string& sql : {"DELETE FROM " + meta + ".views WHERE name = $1",
                                   "DELETE FROM " + meta + ".refresh_log WHERE view_name = $1",
                                   "DELETE FROM " + meta + ".reconcile_log WHERE view_name = $1"}) {
      auto d = snk.ExecParams(sql, {name});
      if (!d.ok()) return rollback(d.status());
    }
  }

  // 2. The state, in one synced write: the view's meta and keys; its row store and the store's
  // description when no other view shares them.
  int64_t shared = 0;
  if (view != nullptr) {
    store::KvBatch b;
    b.Delete(WithId("V", view->id));
    b.Delete(WithId(kRewritePrefix, view->id));
    for (const char* tag : {"g", "x", "p"}) {
      const std::string p = WithId(tag, view->id);
      b.DeleteRange(p, store::PrefixEnd(p));
    }
    for (const auto& s : stored) {
      if (s.id != view->id && s.group_id == view->group_id) ++shared;
    }
    if (shared == 0) {
      const std::string r = WithId("r", view->group_id);
      b.DeleteRange(r, store::PrefixEnd(r));
      b.Delete(WithId(kMetaGroupPrefix, view->group_id));
    }
    Status w = state_->Write(b, /*sync=*/true);
    if (!w.ok()) return rollback(w);
    *state_changed = true;
  }

  // 3. Commit. Failing here leaves the summary and meta row for the next drop.
  TALLY_RETURN_IF_ERROR(snk.Exec("COMMIT").status().WithContext(
      "view " + name + ": its state is gone; run `tally drop` again to drop " +
      summary.value_or("its summary")));

  // 4. The publication: the table leaves it when no other view reads it.
  std::string publication_note;
  if (table && still_read.count(*table) == 0) {
    TALLY_ASSIGN_OR_RETURN(
        auto in_pub,
        src.ExecParams("SELECT pg_has_role(p.pubowner, 'USAGE'), format('%I.%I', n.nspname, "
                       "c.relname) FROM pg_publication p JOIN pg_publication_rel r ON r.prpubid "
                       "= p.oid JOIN pg_class c ON c.oid = r.prrelid JOIN pg_namespace n ON "
                       "n.oid = c.relnamespace WHERE p.pubname = $1 AND r.prrelid = $2::oid",
                       {config_.publication, std::to_string(*table)}));
    if (in_pub.rows() == 1) {
      const std::string alter = "ALTER PUBLICATION " + QuoteIdentifier(config_.publication) +
                                " DROP TABLE " + std::string(in_pub.get(0, 1));
      if (in_pub.get(0, 0) == "t") {
        TALLY_RETURN_IF_ERROR(src.Exec(alter).status().WithContext("view " + name));
        publication_note =
            "; table " + std::string(in_pub.get(0, 1)) + " left publication " + config_.publication;
      } else {
        publication_note = "; no other view reads table " + std::string(in_pub.get(0, 1)) +
                           ": its publication's owner may now run " + alter;
      }
    }
  }
  out << "dropped view " << name << ": summary " << summary.value_or("(none)")
      << (view != nullptr ? ", its state" : "")
      << (view != nullptr && shared == 0 ? " and row store" : "") << ", meta rows"
      << publication_note << "\n";
  return Status::Ok();
}

int CommandDrop(const Config& config, const CommandOptions& opts, std::ostream& out) {
  if (auto handed = DropViaDaemon(config, opts.view, out)) return *handed;
  Daemon d(config);
  Status s = d.DropView(opts.view, out);
  if (!s.ok()) {
    std::cerr << "tally: drop: " << s.message() << "\n";
    return ExitCodeFor(s);
  }
  return 0;
}

}  // namespace tally::daemon
