#include "tally/engine/view_maintainer.h"

#include <cstring>

#include "tally/agg/codec.h"
#include "tally/agg/sort_key.h"

namespace tally::engine {

using store::AppendU32;
using store::ReadU32;

namespace {

constexpr char kGroupTag = 'g';
constexpr char kValueCountTag = 'x';
constexpr char kPendingTag = 'p';

std::string ViewPrefix(char tag, uint32_t view_id) {
  std::string s(1, tag);
  AppendU32(view_id, &s);
  return s;
}

void AppendBytes(std::string_view b, std::string* out) {
  AppendU32(static_cast<uint32_t>(b.size()), out);
  out->append(b);
}

bool ReadBytes(std::string_view* in, std::string_view* out) {
  if (in->size() < 4) return false;
  uint32_t n = ReadU32(*in);
  in->remove_prefix(4);
  if (in->size() < n) return false;
  *out = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

void AppendI64(int64_t v, std::string* out) { store::AppendU64(static_cast<uint64_t>(v), out); }

bool ReadI64(std::string_view* in, int64_t* v) {
  if (in->size() < 8) return false;
  *v = static_cast<int64_t>(store::ReadU64(*in));
  in->remove_prefix(8);
  return true;
}

compiler::EvalContext EvalContextFor(const EvalSettings& settings) {
  compiler::EvalContext ctx;
  ctx.session_zone = settings.session_zone;
  ctx.collation = settings.collation;
  return ctx;
}

bool IsValueCounted(const agg::AggSpec& spec) {
  return spec.kind == agg::AggKind::kMin || spec.kind == agg::AggKind::kMax || spec.distinct;
}

}  // namespace

void EncodeRow(RowFields row, std::string* out) {
  for (const auto& f : row) {
    if (!f) {
      out->push_back('\0');
    } else {
      out->push_back('\1');
      AppendBytes(*f, out);
    }
  }
}

Status DecodeRow(std::string_view bytes, std::vector<std::optional<std::string>>* out) {
  out->clear();
  while (!bytes.empty()) {
    char flag = bytes[0];
    bytes.remove_prefix(1);
    if (flag == '\0') {
      out->emplace_back(std::nullopt);
      continue;
    }
    std::string_view v;
    if (flag != '\1' || !ReadBytes(&bytes, &v)) return Status::Corruption("bad stored row");
    out->emplace_back(std::string(v));
  }
  return Status::Ok();
}

void EncodeSinkRow(const SinkRow& row, std::string* out) {
  out->push_back(row.is_delete ? 'd' : 'u');
  std::vector<std::optional<std::string_view>> fields(row.columns.begin(), row.columns.end());
  EncodeRow(fields, out);
}

Result<SinkRow> DecodeSinkRow(std::string_view bytes) {
  if (bytes.empty() || (bytes[0] != 'd' && bytes[0] != 'u')) {
    return Status::Corruption("bad pending summary row");
  }
  SinkRow row;
  row.is_delete = bytes[0] == 'd';
  TALLY_RETURN_IF_ERROR(DecodeRow(bytes.substr(1), &row.columns));
  return row;
}

void EncodeGroupKey(std::span<const Value> keys, std::string* out) {
  static const Collation kBytewise = Collation::Open("C").value();
  std::string sort;
  for (const auto& k : keys) {
    if (k.is_null()) {
      out->push_back('\0');
      continue;
    }
    out->push_back('\1');
    sort.clear();
    agg::AppendSortKey(k, kBytewise, &sort);
    AppendBytes(sort, out);
  }
}

ViewMaintainer::ViewMaintainer(uint32_t view_id, compiler::ViewPlan plan, EvalSettings settings)
    : view_id_(view_id), plan_(std::move(plan)), settings_(settings) {
  for (const auto& a : plan_.aggregates) {
    agg::AggSpec spec{static_cast<agg::AggKind>(a.kind), a.distinct, a.input_type, a.result_type};
    specs_.push_back(spec);
    if (IsValueCounted(spec)) keeps_value_counts_ = true;
  }
  // Aggregates over the same argument and FILTER (min(x), max(x), count(DISTINCT x)) share one
  // set of value counts.
  auto same = [](const compiler::ExprPtr& a, const compiler::ExprPtr& b) {
    return (!a && !b) || (a && b && compiler::ExprEquals(*a, *b));
  };
  value_count_slot_.resize(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    value_count_slot_[i] = i;
    if (!IsValueCounted(specs_[i])) continue;
    for (size_t j = 0; j < i; ++j) {
      if (IsValueCounted(specs_[j]) && value_count_slot_[j] == j &&
          same(plan_.aggregates[i].arg, plan_.aggregates[j].arg) &&
          same(plan_.aggregates[i].filter, plan_.aggregates[j].filter)) {
        value_count_slot_[i] = j;
        break;
      }
    }
  }
  for (size_t i = 0; i < plan_.outputs.size(); ++i) {
    int gk = plan_.outputs[i].group_key_index;
    if (gk < 0) continue;
    bool seen = false;
    for (int j : key_outputs_) seen |= plan_.outputs[j].group_key_index == gk;
    if (!seen) key_outputs_.push_back(static_cast<int>(i));
  }
}

std::string ViewMaintainer::GroupPrefix() const { return ViewPrefix(kGroupTag, view_id_); }
std::string ViewMaintainer::PendingPrefix() const { return ViewPrefix(kPendingTag, view_id_); }
std::string ViewMaintainer::ValueCountViewPrefix() const {
  return ViewPrefix(kValueCountTag, view_id_);
}

void ViewMaintainer::Reset() {
  groups_.clear();
  value_counts_.clear();
  final_counts_.clear();
  truncated_ = false;
  group_count_delta_ = 0;
}

Status ViewMaintainer::Parse(RowFields row) {
  const auto& cols = plan_.input_columns;
  if (row.size() != cols.size()) {
    return Status::Internal("view " + plan_.name + ": row has " + std::to_string(row.size()) +
                            " fields, the plan reads " + std::to_string(cols.size()));
  }
  row_values_.resize(cols.size());
  for (size_t i = 0; i < cols.size(); ++i) {
    const auto& col = plan_.source.columns[cols[i]];
    if (!row[i]) {
      row_values_[i] = Value::Null(col.type_oid);
      continue;
    }
    auto v = Value::ParseText(col.type_oid, *row[i]);
    if (!v.ok()) {
      return v.status().WithContext("view " + plan_.name + ", column " + col.name);
    }
    row_values_[i] = std::move(v).value();
  }
  return Status::Ok();
}

Result<ViewMaintainer::GroupState*> ViewMaintainer::LoadGroup(const std::string& group_key,
                                                              std::span<const Value> keys,
                                                              store::KvStore& store) {
  auto it = groups_.find(group_key);
  if (it != groups_.end()) return &it->second;
  GroupState g;
  g.keys.assign(keys.begin(), keys.end());
  g.accumulators.resize(specs_.size());
  g.extreme_keys.resize(specs_.size());
  g.extremes.resize(specs_.size());
  if (!truncated_) {
    std::string key = GroupPrefix() + group_key;
    TALLY_ASSIGN_OR_RETURN(auto stored, store.Get(key));
    if (stored) {
      TALLY_RETURN_IF_ERROR(DecodeGroup(*stored, &g));
      g.existed_before = true;
    }
  }
  return &groups_.emplace(group_key, std::move(g)).first->second;
}

void ViewMaintainer::EncodeGroup(const GroupState& g, std::string* out) const {
  AppendI64(g.rows, out);
  AppendU32(static_cast<uint32_t>(g.keys.size()), out);
  for (const auto& k : g.keys) agg::EncodeValue(k, out);
  AppendU32(static_cast<uint32_t>(g.accumulators.size()), out);
  std::string acc;
  for (const auto& a : g.accumulators) {
    acc.clear();
    agg::EncodeAccumulator(a, &acc);
    AppendBytes(acc, out);
  }
  for (size_t i = 0; i < g.accumulators.size(); ++i) {
    const std::string& key = i < g.extreme_keys.size() ? g.extreme_keys[i] : std::string();
    AppendBytes(key, out);
    if (!key.empty()) agg::EncodeValue(g.extremes[i], out);
  }
}

Status ViewMaintainer::DecodeGroup(std::string_view bytes, GroupState* g) const {
  auto bad = [&] { return Status::Corruption("view " + plan_.name + ": bad stored group state"); };
  if (!ReadI64(&bytes, &g->rows) || bytes.size() < 4) return bad();
  uint32_t nkeys = ReadU32(bytes);
  bytes.remove_prefix(4);
  g->keys.clear();
  for (uint32_t i = 0; i < nkeys; ++i) {
    TALLY_ASSIGN_OR_RETURN(Value v, agg::DecodeValue(&bytes));
    g->keys.push_back(std::move(v));
  }
  if (bytes.size() < 4) return bad();
  uint32_t naccs = ReadU32(bytes);
  bytes.remove_prefix(4);
  if (naccs != specs_.size()) return bad();
  g->accumulators.resize(naccs);
  for (uint32_t i = 0; i < naccs; ++i) {
    std::string_view acc;
    if (!ReadBytes(&bytes, &acc)) return bad();
    TALLY_RETURN_IF_ERROR(agg::DecodeAccumulator(acc, &g->accumulators[i]));
  }
  g->extreme_keys.assign(naccs, std::string());
  g->extremes.assign(naccs, Value());
  for (uint32_t i = 0; i < naccs; ++i) {
    std::string_view key;
    if (!ReadBytes(&bytes, &key)) return bad();
    if (key.empty()) continue;
    g->extreme_keys[i] = std::string(key);
    TALLY_ASSIGN_OR_RETURN(g->extremes[i], agg::DecodeValue(&bytes));
  }
  return Status::Ok();
}

std::string ViewMaintainer::ValueCountPrefix(const std::string& group_key, size_t agg_index) const {
  std::string p = ValueCountViewPrefix();
  AppendU32(static_cast<uint32_t>(group_key.size()), &p);
  p += group_key;
  p.push_back(static_cast<char>(agg_index));
  return p;
}

Status ViewMaintainer::ApplyRow(RowFields row, int64_t weight, store::KvStore& store) {
  TALLY_RETURN_IF_ERROR(Parse(row));
  compiler::EvalContext ctx = EvalContextFor(settings_);
  ctx.row = row_values_;
  if (plan_.where) {
    auto pass = compiler::EvaluatePredicate(*plan_.where, ctx);
    if (!pass.ok()) return pass.status().WithContext("view " + plan_.name + ", WHERE");
    if (!*pass) return Status::Ok();
  }
  key_values_.clear();
  for (const auto& k : plan_.group_keys) {
    auto v = compiler::Evaluate(*k, ctx);
    if (!v.ok()) return v.status().WithContext("view " + plan_.name + ", GROUP BY");
    key_values_.push_back(std::move(v).value());
  }
  key_scratch_.clear();
  EncodeGroupKey(key_values_, &key_scratch_);
  TALLY_ASSIGN_OR_RETURN(GroupState * g, LoadGroup(key_scratch_, key_values_, store));
  g->rows += weight;
  for (size_t i = 0; i < plan_.aggregates.size(); ++i) {
    const auto& call = plan_.aggregates[i];
    if (call.filter) {
      auto pass = compiler::EvaluatePredicate(*call.filter, ctx);
      if (!pass.ok()) return pass.status().WithContext("view " + plan_.name + ", FILTER");
      if (!*pass) continue;
    }
    Value input;
    if (call.arg) {
      auto v = compiler::Evaluate(*call.arg, ctx);
      if (!v.ok()) return v.status().WithContext("view " + plan_.name + ", aggregate argument");
      input = std::move(v).value();
    }
    if (IsValueCounted(specs_[i])) {
      if (input.is_null() || value_count_slot_[i] != i) continue;
      std::string key = ValueCountPrefix(key_scratch_, i);
      agg::AppendSortKey(input, *settings_.collation, &key);
      auto& delta = value_counts_[key];
      delta.delta += weight;
      if (delta.value.is_null()) delta.value = std::move(input);
      continue;
    }
    agg::Apply(specs_[i], g->accumulators[i], input, weight);
  }
  return Status::Ok();
}

void ViewMaintainer::Truncate() {
  // Groups already touched in this batch keep their deletion bookkeeping; every other stored
  // group disappears with the summary rewrite.
  Reset();
  truncated_ = true;
}

Result<std::optional<std::pair<std::string, Value>>> ViewMaintainer::Extreme(
    const std::string& group_key, size_t agg_index, bool want_max, store::KvStore& store) const {
  using Found = std::optional<std::pair<std::string, Value>>;
  const std::string prefix = ValueCountPrefix(group_key, value_count_slot_[agg_index]);
  const std::string end = store::PrefixEnd(prefix);
  // Candidate from this batch's value counts (keys not necessarily in the store yet).
  std::optional<std::pair<std::string, Value>> overlay_best;
  {
    auto lo = value_counts_.lower_bound(prefix);
    auto hi = value_counts_.lower_bound(end);
    std::vector<decltype(lo)> live;
    for (auto it = lo; it != hi; ++it) {
      auto fc = final_counts_.find(it->first);
      if (fc != final_counts_.end() && fc->second > 0) live.push_back(it);
    }
    if (!live.empty()) {
      auto best = want_max ? live.back() : live.front();
      overlay_best.emplace(best->first, best->second.value);
    }
  }
  std::optional<std::pair<std::string, Value>> stored_best;
  if (!truncated_) {
    auto it = store.NewIterator();
    if (want_max) {
      it->SeekForPrev(end);
      if (it->Valid() && it->key() == end) it->Prev();
    } else {
      it->Seek(prefix);
    }
    for (; it->Valid(); want_max ? it->Prev() : it->Next()) {
      std::string_view k = it->key();
      if (k.substr(0, prefix.size()) != prefix) break;
      auto fc = final_counts_.find(std::string(k));
      if (fc != final_counts_.end() && fc->second <= 0) continue;
      std::string_view v = it->value();
      int64_t count = 0;
      if (!ReadI64(&v, &count)) return Status::Corruption("view " + plan_.name + ": bad value count");
      TALLY_ASSIGN_OR_RETURN(Value value, agg::DecodeValue(&v));
      stored_best.emplace(std::string(k), std::move(value));
      break;
    }
    TALLY_RETURN_IF_ERROR(it->status());
  }
  if (!overlay_best) return Found(std::move(stored_best));
  if (!stored_best) return Found(std::move(overlay_best));
  bool overlay_wins = want_max ? overlay_best->first > stored_best->first
                               : overlay_best->first < stored_best->first;
  return overlay_wins ? Found(std::move(overlay_best)) : Found(std::move(stored_best));
}

Status ViewMaintainer::UpdateExtremes(const std::string& group_key, GroupState& g,
                                      store::KvStore& store) const {
  for (size_t i = 0; i < specs_.size(); ++i) {
    const auto kind = specs_[i].kind;
    if (kind != agg::AggKind::kMin && kind != agg::AggKind::kMax) continue;
    const bool want_max = kind == agg::AggKind::kMax;
    std::string& cur = g.extreme_keys[i];
    auto gone = final_counts_.find(cur);
    if (!cur.empty() && gone != final_counts_.end() && gone->second == 0) {
      // The extreme itself was deleted: find the next one.
      TALLY_ASSIGN_OR_RETURN(auto found, Extreme(group_key, i, want_max, store));
      if (found) {
        cur = std::move(found->first);
        g.extremes[i] = std::move(found->second);
      } else {
        cur.clear();
        g.extremes[i] = Value();
      }
      continue;
    }
    // Otherwise only this batch's new values can beat the current extreme.
    const std::string prefix = ValueCountPrefix(group_key, value_count_slot_[i]);
    auto hi = value_counts_.lower_bound(store::PrefixEnd(prefix));
    for (auto it = value_counts_.lower_bound(prefix); it != hi; ++it) {
      auto fc = final_counts_.find(it->first);
      if (fc == final_counts_.end() || fc->second <= 0) continue;
      if (cur.empty() || (want_max ? it->first > cur : it->first < cur)) {
        cur = it->first;
        g.extremes[i] = it->second.value;
      }
    }
  }
  return Status::Ok();
}

Result<std::optional<SinkRow>> ViewMaintainer::ComputeRow(const GroupState& g) const {
  if (g.rows <= 0 && plan_.has_group_by) return std::optional<SinkRow>();
  std::vector<Value> results(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    const auto& spec = specs_[i];
    if (spec.kind == agg::AggKind::kMin || spec.kind == agg::AggKind::kMax) {
      results[i] = g.extreme_keys[i].empty() ? Value::Null(spec.result_type) : g.extremes[i];
    } else if (spec.distinct) {
      results[i] = Value::Int(pgtype::kInt8, g.accumulators[i].count);
    } else {
      auto v = agg::Finalize(spec, g.accumulators[i]);
      if (!v.ok()) return v.status().WithContext("view " + plan_.name);
      results[i] = std::move(v).value();
    }
  }
  compiler::EvalContext ctx = EvalContextFor(settings_);
  ctx.group_keys = g.keys;
  ctx.aggregates = results;
  if (plan_.having) {
    auto pass = compiler::EvaluatePredicate(*plan_.having, ctx);
    if (!pass.ok()) return pass.status().WithContext("view " + plan_.name + ", HAVING");
    if (!*pass) return std::optional<SinkRow>();
  }
  SinkRow row;
  row.columns.reserve(plan_.outputs.size());
  for (const auto& out : plan_.outputs) {
    auto v = compiler::Evaluate(*out.expr, ctx);
    if (!v.ok()) return v.status().WithContext("view " + plan_.name + ", column " + out.name);
    if (v->is_null()) {
      row.columns.emplace_back(std::nullopt);
    } else {
      row.columns.emplace_back(v->FormatText());
    }
  }
  return std::optional<SinkRow>(std::move(row));
}

SinkRow ViewMaintainer::DeletionRow(const GroupState& g) const {
  SinkRow row;
  row.is_delete = true;
  row.columns.resize(plan_.outputs.size());
  for (int i : key_outputs_) {
    const Value& k = g.keys[plan_.outputs[i].group_key_index];
    if (!k.is_null()) row.columns[i] = k.FormatText();
  }
  return row;
}

Status ViewMaintainer::Flush(store::KvStore& store, store::KvBatch& batch,
                             std::vector<SinkRow>* out, bool* rewrite_all) {
  *rewrite_all = truncated_;
  group_count_delta_ = 0;
  if (truncated_) {
    for (const std::string& p : {GroupPrefix(), ValueCountViewPrefix(), PendingPrefix()}) {
      batch.DeleteRange(p, store::PrefixEnd(p));
    }
  }
  if (!plan_.has_group_by) {
    // A view without GROUP BY has its one row even over an empty table.
    TALLY_RETURN_IF_ERROR(LoadGroup(std::string(), {}, store).status());
  }
  // Value counts: merge the batch's deltas with the stored counts.
  final_counts_.clear();
  const size_t group_key_offset = 1 + 4 + 4;
  for (auto& [key, delta] : value_counts_) {
    if (delta.delta == 0) continue;
    int64_t old_count = 0;
    const uint32_t key_glen = ReadU32(std::string_view(key).substr(5));
    auto owner = groups_.find(key.substr(group_key_offset, key_glen));
    // A group that did not exist before this batch has no stored value counts.
    const bool may_be_stored = owner == groups_.end() || owner->second.existed_before;
    if (!truncated_ && may_be_stored) {
      TALLY_ASSIGN_OR_RETURN(auto stored, store.Get(key));
      if (stored) {
        std::string_view v = *stored;
        if (!ReadI64(&v, &old_count)) {
          return Status::Corruption("view " + plan_.name + ": bad value count");
        }
      }
    }
    int64_t new_count = old_count + delta.delta;
    if (new_count < 0) {
      return Status::Corruption("view " + plan_.name +
                                ": a value count went negative (the state missed a row)");
    }
    final_counts_[key] = new_count;
    if (new_count == 0) {
      batch.Delete(key);
    } else {
      std::string v;
      AppendI64(new_count, &v);
      agg::EncodeValue(delta.value, &v);
      batch.Put(key, v);
    }
    uint32_t glen = ReadU32(std::string_view(key).substr(5));
    std::string group_key = key.substr(group_key_offset, glen);
    size_t slot = static_cast<uint8_t>(key[group_key_offset + glen]);
    if ((old_count == 0) != (new_count == 0)) {
      for (size_t a = 0; a < specs_.size(); ++a) {
        if (value_count_slot_[a] != slot || !specs_[a].distinct) continue;
        auto g = groups_.find(group_key);
        if (g == groups_.end()) return Status::Internal("value count of an untouched group");
        // For count(DISTINCT) the accumulator's count is the number of distinct values.
        g->second.accumulators[a].count += new_count > 0 ? 1 : -1;
      }
    }
  }
  for (auto& [group_key, g] : groups_) {
    bool exists_now = g.rows > 0 || !plan_.has_group_by;
    if (g.rows < 0) {
      return Status::Corruption("view " + plan_.name +
                                ": a group's row count went negative (the state missed a row)");
    }
    std::string key = GroupPrefix() + group_key;
    if (exists_now) {
      TALLY_RETURN_IF_ERROR(UpdateExtremes(group_key, g, store));
      std::string v;
      EncodeGroup(g, &v);
      batch.Put(key, v);
    } else if (g.existed_before) {
      batch.Delete(key);
    }
    if (exists_now && !g.existed_before) ++group_count_delta_;
    if (!exists_now && g.existed_before) --group_count_delta_;
    if ((!exists_now && !g.existed_before) || !record_pending_) continue;
    TALLY_ASSIGN_OR_RETURN(auto row, ComputeRow(g));
    SinkRow sink_row = row ? std::move(*row) : DeletionRow(g);
    std::string encoded;
    EncodeSinkRow(sink_row, &encoded);
    batch.Put(PendingPrefix() + group_key, encoded);
    out->push_back(std::move(sink_row));
  }
  groups_.clear();
  value_counts_.clear();
  final_counts_.clear();
  truncated_ = false;
  return Status::Ok();
}

Status ViewMaintainer::ScanAll(store::KvStore& store,
                               const std::function<Status(const SinkRow&)>& emit) {
  const std::string prefix = GroupPrefix();
  auto it = store.NewIterator();
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    std::string_view k = it->key();
    if (k.substr(0, prefix.size()) != prefix) break;
    GroupState g;
    TALLY_RETURN_IF_ERROR(DecodeGroup(it->value(), &g));
    TALLY_ASSIGN_OR_RETURN(auto row, ComputeRow(g));
    if (row) TALLY_RETURN_IF_ERROR(emit(*row));
  }
  return it->status();
}

}  // namespace tally::engine
