#include "tally/daemon/config.h"

#include <toml++/toml.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace tally::daemon {

namespace {

std::string Where(const std::string& path, const toml::source_region& r) {
  return path + ":" + std::to_string(r.begin.line);
}

class Reader {
 public:
  Reader(const toml::table& t, std::string prefix, const std::string& path)
      : table_(t), prefix_(std::move(prefix)), path_(path) {}

  Status CheckKeys(const std::set<std::string>& allowed) const {
    for (const auto& [k, v] : table_) {
      if (!allowed.count(std::string(k.str()))) {
        return Status::InvalidArgument(Where(path_, k.source()) + ": unknown key '" + prefix_ +
                                       std::string(k.str()) + "'");
      }
    }
    return Status::Ok();
  }

  Status String(const char* key, std::string* out, bool required = false) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) {
      if (required) {
        return Status::InvalidArgument(Where(path_, table_.source()) + ": missing required key '" +
                                       prefix_ + key + "'");
      }
      return Status::Ok();
    }
    auto s = n->value<std::string>();
    if (!s) return TypeError(key, *n, "a string");
    *out = *s;
    return Status::Ok();
  }

  Status Int(const char* key, int64_t* out) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) return Status::Ok();
    if (!n->is_integer()) return TypeError(key, *n, "an integer");
    *out = *n->value<int64_t>();
    return Status::Ok();
  }

  // Durations are strings ("100ms"); a bare integer is taken as milliseconds.
  Status Duration(const char* key, std::chrono::milliseconds* out) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) return Status::Ok();
    if (n->is_integer()) {
      *out = std::chrono::milliseconds(*n->value<int64_t>());
      return Status::Ok();
    }
    auto s = n->value<std::string>();
    if (!s) return TypeError(key, *n, "a duration string such as \"5s\"");
    auto d = ParseDuration(*s);
    if (!d.ok()) {
      return Status::InvalidArgument(Where(path_, n->source()) + ": key '" + prefix_ + key +
                                     "': " + d.status().message());
    }
    *out = *d;
    return Status::Ok();
  }

  Status StringArray(const char* key, std::vector<std::string>* out) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) return Status::Ok();
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return TypeError(key, *n, "an array of strings");
    for (const auto& e : *arr) {
      auto s = e.value<std::string>();
      if (!s) return TypeError(key, e, "an array of strings");
      out->push_back(*s);
    }
    return Status::Ok();
  }

  Status TypeError(const char* key, const toml::node& n, const char* expected) const {
    return Status::InvalidArgument(Where(path_, n.source()) + ": key '" + prefix_ + key +
                                   "' must be " + expected);
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  const std::string& path_;
};

}  // namespace

std::string_view ViewModeName(ViewMode m) {
  switch (m) {
    case ViewMode::kAuto:
      return "auto";
    case ViewMode::kIncremental:
      return "incremental";
    case ViewMode::kRefresh:
      return "refresh";
  }
  return "?";
}

const ViewConfig* Config::FindView(const std::string& name) const {
  for (const auto& v : views) {
    if (v.name == name) return &v;
  }
  return nullptr;
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return std::chrono::milliseconds(0);
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  std::string_view unit(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  if (ec != std::errc() || ptr == text.data() || n < 0) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a duration (an integer with ms, s, m, h or d)");
  }
  int64_t ms;
  if (unit == "ms")
    ms = n;
  else if (unit == "s")
    ms = n * 1000;
  else if (unit == "m")
    ms = n * 60'000;
  else if (unit == "h")
    ms = n * 3'600'000;
  else if (unit == "d")
    ms = n * 86'400'000;
  else
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a duration (an integer with ms, s, m, h or d)");
  return std::chrono::milliseconds(ms);
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

Result<Config> ParseConfig(std::string_view text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(path + ":" + std::to_string(e.source().begin.line) + ":" +
                                   std::to_string(e.source().begin.column) + ": " +
                                   std::string(e.description()));
  }
  Config c;
  c.path = path;
  std::filesystem::path base = std::filesystem::absolute(path).parent_path();

  TALLY_RETURN_IF_ERROR(Reader(root, "", path)
                            .CheckKeys({"source", "sink", "state", "apply", "reconcile", "metrics",
                                        "monitoring", "views"}));
  auto section = [&](const char* name) -> Result<const toml::table*> {
    const toml::node* n = root.get(name);
    if (n == nullptr) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) {
      return Status::InvalidArgument(Where(path, n->source()) + ": '" + name + "' must be a table");
    }
    return n->as_table();
  };

  TALLY_ASSIGN_OR_RETURN(const toml::table* source, section("source"));
  if (source == nullptr) {
    return Status::InvalidArgument(path + ":1: missing required key 'source.dsn'");
  }
  {
    Reader r(*source, "source.", path);
    TALLY_RETURN_IF_ERROR(r.CheckKeys({"kind", "dsn", "slot", "publication"}));
    TALLY_RETURN_IF_ERROR(r.String("kind", &c.source_kind));
    TALLY_RETURN_IF_ERROR(r.String("dsn", &c.source_dsn, /*required=*/true));
    TALLY_RETURN_IF_ERROR(r.String("slot", &c.slot));
    TALLY_RETURN_IF_ERROR(r.String("publication", &c.publication));
    if (c.source_kind != "postgres" && c.source_kind != "kafka") {
      return Status::InvalidArgument(Where(path, source->get("kind")->source()) +
                                     ": source.kind must be \"postgres\" or \"kafka\"");
    }
  }
  TALLY_ASSIGN_OR_RETURN(const toml::table* sink, section("sink"));
  if (sink != nullptr) {
    Reader r(*sink, "sink.", path);
    TALLY_RETURN_IF_ERROR(r.CheckKeys({"dsn", "schema", "meta_schema"}));
    TALLY_RETURN_IF_ERROR(r.String("dsn", &c.sink_dsn));
    TALLY_RETURN_IF_ERROR(r.String("schema", &c.sink_schema));
    TALLY_RETURN_IF_ERROR(r.String("meta_schema", &c.meta_schema));
  }
  if (c.sink_dsn.empty()) c.sink_dsn = c.source_dsn;
  std::string state_dir = "tally-state";
  TALLY_ASSIGN_OR_RETURN(const toml::table* state, section("state"));
  if (state != nullptr) {
    Reader r(*state, "state.", path);
    TALLY_RETURN_IF_ERROR(r.CheckKeys({"dir", "cache_mb"}));
    TALLY_RETURN_IF_ERROR(r.String("dir", &state_dir));
    TALLY_RETURN_IF_ERROR(r.Int("cache_mb", &c.cache_mb));
    if (c.cache_mb < 0) {
      return Status::InvalidArgument(Where(path, state->get("cache_mb")->source()) +
                                     ": state.cache_mb must not be negative");
    }
  }
  c.state_dir = (base / state_dir).lexically_normal().string();
  TALLY_ASSIGN_OR_RETURN(const toml::table* apply, section("apply"));
  if (apply != nullptr) {
    Reader r(*apply, "apply.", path);
    TALLY_RETURN_IF_ERROR(r.CheckKeys({"max_batch_ms", "max_batch_changes"}));
    TALLY_RETURN_IF_ERROR(r.Duration("max_batch_ms", &c.max_batch_ms));
    TALLY_RETURN_IF_ERROR(r.Int("max_batch_changes", &c.max_batch_changes));
    if (c.max_batch_changes <= 0) {
      return Status::InvalidArgument(Where(path, apply->get("max_batch_changes")->source()) +
                                     ": apply.max_batch_changes must be positive");
    }
  }
  TALLY_ASSIGN_OR_RETURN(const toml::table* reconcile, section("reconcile"));
  if (reconcile != nullptr) {
    Reader r(*reconcile, "reconcile.", path);
    TALLY_RETURN_IF_ERROR(r.CheckKeys({"every", "action"}));
    TALLY_RETURN_IF_ERROR(r.Duration("every", &c.reconcile_every));
    TALLY_RETURN_IF_ERROR(r.String("action", &c.reconcile_action));
    if (c.reconcile_action != "report" && c.reconcile_action != "repair") {
      return Status::InvalidArgument(Where(path, reconcile->get("action")->source()) +
                                     ": reconcile.action must be \"report\" or \"repair\"");
    }
  }
  TALLY_ASSIGN_OR_RETURN(const toml::table* metrics, section("metrics"));
  if (metrics != nullptr) {
    Reader r(*metrics, "metrics.", path);
    TALLY_RETURN_IF_ERROR(r.CheckKeys({"listen"}));
    TALLY_RETURN_IF_ERROR(r.String("listen", &c.metrics_listen));
  }
  TALLY_ASSIGN_OR_RETURN(const toml::table* monitoring, section("monitoring"));
  if (monitoring != nullptr) {
    Reader r(*monitoring, "monitoring.", path);
    TALLY_RETURN_IF_ERROR(r.CheckKeys({"refresh_log_retention"}));
    TALLY_RETURN_IF_ERROR(r.Duration("refresh_log_retention", &c.refresh_log_retention));
  }

  const toml::node* views = root.get("views");
  if (views == nullptr || !views->is_array_of_tables() || views->as_array()->empty()) {
    return Status::InvalidArgument(path +
                                   ":1: at least one [[views]] with name and query is required");
  }
  std::set<std::string> names;
  for (const auto& vn : *views->as_array()) {
    const toml::table& vt = *vn.as_table();
    Reader r(vt, "views.", path);
    ViewConfig v;
    v.line = static_cast<int>(vt.source().begin.line);
    TALLY_RETURN_IF_ERROR(
        r.CheckKeys({"name", "query", "file", "mode", "grant_select", "refresh_min_interval"}));
    TALLY_RETURN_IF_ERROR(r.String("name", &v.name, /*required=*/true));
    TALLY_RETURN_IF_ERROR(r.String("query", &v.query));
    TALLY_RETURN_IF_ERROR(r.String("file", &v.file));
    std::string mode = "auto";
    TALLY_RETURN_IF_ERROR(r.String("mode", &mode));
    if (mode == "auto")
      v.mode = ViewMode::kAuto;
    else if (mode == "incremental")
      v.mode = ViewMode::kIncremental;
    else if (mode == "refresh")
      v.mode = ViewMode::kRefresh;
    else
      return Status::InvalidArgument(Where(path, vt.get("mode")->source()) +
                                     ": views.mode must be auto, incremental or refresh");
    TALLY_RETURN_IF_ERROR(r.StringArray("grant_select", &v.grant_select));
    TALLY_RETURN_IF_ERROR(r.Duration("refresh_min_interval", &v.refresh_min_interval));
    if (v.query.empty() == v.file.empty()) {
      return Status::InvalidArgument(path + ":" + std::to_string(v.line) + ": view '" + v.name +
                                     "' needs exactly one of 'query' or 'file'");
    }
    if (!v.file.empty()) {
      std::filesystem::path f = base / v.file;
      std::ifstream in(f);
      if (!in) {
        return Status::InvalidArgument(path + ":" + std::to_string(v.line) + ": view '" + v.name +
                                       "': cannot read file " + f.string());
      }
      std::stringstream ss;
      ss << in.rdbuf();
      v.query = ss.str();
      v.file = f.string();
    }
    if (!names.insert(v.name).second) {
      return Status::InvalidArgument(path + ":" + std::to_string(v.line) +
                                     ": duplicate view name '" + v.name + "'");
    }
    c.views.push_back(std::move(v));
  }
  return c;
}

}  // namespace tally::daemon
