#include "tally/engine/view_maintainer.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <system_error>
#include <thread>

#include "tally/agg/codec.h"
#include "tally/agg/sort_key.h"

namespace tally::engine {

using store::AppendU32;
using store::AppendU64;
using store::ReadU32;

namespace {

constexpr char kGroupTag = 'g';
constexpr char kValueCountTag = 'x';
constexpr char kPendingTag = 'p';
constexpr char kPendingRun = 'c';      // + run number: the rows of one batch
constexpr char kPendingByGroup = 'k';  // + group key: one group's row (streamed transactions)
constexpr size_t kPendingRunBytes = 1 << 20;
constexpr size_t kMaxRunEntries = 128;     // value counts per stored run
constexpr size_t kKeptDeltaCapacity = 16;  // per group, between settles
// Fewer groups to settle than this are not worth a second thread.
constexpr size_t kParallelSettleGroups = 1024;

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

// As AppendBytes, for the bytes `encode` appends to `out`: encoded in place, the length
// filled in after.
template <class Encode>
void AppendFramed(std::string* out, Encode encode) {
  const size_t at = out->size();
  AppendU32(0, out);
  encode();
  const auto length = static_cast<uint32_t>(out->size() - at - 4);
  for (int b = 0; b < 4; ++b) (*out)[at + b] = static_cast<char>(length >> (24 - 8 * b));
}

void AppendI64(int64_t v, std::string* out) { AppendU64(static_cast<uint64_t>(v), out); }

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

// std::lower_bound without branches on the data (a compare of random heads mispredicts half
// the time, which cost more than the search's cache misses).
size_t HeadLowerBound(const std::vector<uint64_t>& heads, uint64_t head) {
  const uint64_t* base = heads.data();
  size_t n = heads.size();
  if (n == 0) return 0;
  while (n > 1) {
    const size_t half = n / 2;
    base += static_cast<size_t>(base[half - 1] < head) * half;  // compiled without a branch
    n -= half;
  }
  return static_cast<size_t>(base - heads.data()) + (*base < head ? 1 : 0);
}

// The key prefix of one group's value counts for one aggregate argument (its slot), after
// the view's value-count prefix (ViewMaintainer::ValueCountViewPrefix).
void AppendValueCountPrefix(std::string_view view_prefix, std::string_view group_key, size_t slot,
                            std::string* out) {
  out->append(view_prefix);
  AppendU32(static_cast<uint32_t>(group_key.size()), out);
  out->append(group_key);
  out->push_back(static_cast<char>(slot));
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

Status DecodeRowViews(std::string_view bytes, std::vector<std::optional<std::string_view>>* out) {
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
    out->emplace_back(v);
  }
  return Status::Ok();
}

Status DecodeRow(std::string_view bytes, std::vector<std::optional<std::string>>* out) {
  std::vector<std::optional<std::string_view>> fields;
  TALLY_RETURN_IF_ERROR(DecodeRowViews(bytes, &fields));
  out->assign(fields.begin(), fields.end());
  return Status::Ok();
}

void EncodeSinkRow(const SinkRow& row, std::string* out) {
  out->push_back(row.is_delete ? 'd' : 'u');
  std::vector<std::optional<std::string_view>> fields(row.columns.begin(), row.columns.end());
  EncodeRow(fields, out);
}

Status ForEachPendingRow(std::string_view value,
                         const std::function<Status(const SinkRow&)>& visit) {
  while (!value.empty()) {
    std::string_view frame;
    if (!ReadBytes(&value, &frame)) return Status::Corruption("bad pending summary rows");
    TALLY_ASSIGN_OR_RETURN(SinkRow row, DecodeSinkRow(frame));
    TALLY_RETURN_IF_ERROR(visit(row));
  }
  return Status::Ok();
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
  delta_bytes_.clear();
  delta_count_ = 0;
  dirty_groups_.clear();
  cache_bytes_ = 0;
  reader_.iter.reset();
  truncated_ = false;
  group_count_delta_ = 0;
}

Status ViewMaintainer::Parse(RowFields row, std::vector<Value>* out) {
  const auto& cols = plan_.input_columns;
  if (row.size() != cols.size()) {
    return Status::Internal("view " + plan_.name + ": row has " + std::to_string(row.size()) +
                            " fields, the plan reads " + std::to_string(cols.size()));
  }
  out->resize(cols.size());
  for (size_t i = 0; i < cols.size(); ++i) {
    const auto& col = plan_.source.columns[cols[i]];
    if (!row[i]) {
      (*out)[i] = Value::Null(col.type_oid);
      continue;
    }
    auto v = Value::ParseText(col.type_oid, *row[i]);
    if (!v.ok()) {
      return v.status().WithContext("view " + plan_.name + ", column " + col.name);
    }
    (*out)[i] = std::move(v).value();
  }
  return Status::Ok();
}

Result<ViewMaintainer::GroupState*> ViewMaintainer::LoadGroup(const std::string& group_key,
                                                              uint64_t hash,
                                                              std::span<const Value> keys,
                                                              store::KvStore& store) {
  auto it = groups_.find(group_key, hash);
  if (it != groups_.end()) {
    GroupState& cached = it->second;
    cached.recent = true;
    if (!cached.dirty) {
      cached.dirty = true;
      dirty_groups_.push_back(&*it);
    }
    return &cached;
  }
  GroupState g;
  g.keys.assign(keys.begin(), keys.end());
  g.accumulators.resize(specs_.size());
  g.extreme_keys.resize(specs_.size());
  g.extremes.resize(specs_.size());
  if (keeps_value_counts_) g.value_sets.resize(specs_.size());
  if (!truncated_) {
    std::string key = GroupPrefix() + group_key;
    TALLY_ASSIGN_OR_RETURN(auto stored, store.Get(key));
    if (stored) {
      TALLY_RETURN_IF_ERROR(DecodeGroup(*stored, &g));
      g.existed_before = true;
    }
  }
  g.dirty = true;
  g.recent = true;
  auto& entry = *groups_.emplace(group_key, hash, std::move(g)).first;
  dirty_groups_.push_back(&entry);
  return &entry.second;
}

void ViewMaintainer::EncodeGroup(const GroupState& g, std::string* out) const {
  AppendI64(g.rows, out);
  AppendU32(static_cast<uint32_t>(g.keys.size()), out);
  for (const auto& k : g.keys) agg::EncodeValue(k, out);
  AppendU32(static_cast<uint32_t>(g.accumulators.size()), out);
  for (const auto& a : g.accumulators) {
    AppendFramed(out, [&] { agg::EncodeAccumulator(a, out); });
  }
  for (size_t i = 0; i < g.accumulators.size(); ++i) {
    const bool has = i < g.extremes.size() && !g.extremes[i].is_null();
    out->push_back(has ? '\1' : '\0');
    if (!has) continue;
    AppendBytes(g.extreme_keys[i], out);
    agg::EncodeValue(g.extremes[i], out);
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
    if (bytes.empty() || (bytes[0] != '\0' && bytes[0] != '\1')) return bad();
    const bool has = bytes[0] == '\1';
    bytes.remove_prefix(1);
    if (!has) continue;
    std::string_view key;
    if (!ReadBytes(&bytes, &key)) return bad();
    g->extreme_keys[i] = std::string(key);
    TALLY_ASSIGN_OR_RETURN(g->extremes[i], agg::DecodeValue(&bytes));
  }
  return Status::Ok();
}

std::string ViewMaintainer::ValueCountPrefix(const std::string& group_key, size_t agg_index) const {
  std::string p;
  AppendValueCountPrefix(ValueCountViewPrefix(), group_key, agg_index, &p);
  return p;
}

Status ViewMaintainer::EvaluateRow(RowFields row, RowEval* out) {
  TALLY_RETURN_IF_ERROR(Parse(row, &out->row_values));
  return EvaluateValues(out->row_values, {}, out);
}

Status ViewMaintainer::EvaluateValues(std::span<const Value> row, std::span<const int> row_map,
                                      RowEval* out) {
  compiler::EvalContext ctx = EvalContextFor(settings_);
  ctx.row = row;
  ctx.row_map = row_map;
  out->passes = true;
  if (plan_.where) {
    auto pass = compiler::EvaluatePredicate(*plan_.where, ctx);
    if (!pass.ok()) return pass.status().WithContext("view " + plan_.name + ", WHERE");
    out->passes = *pass;
    if (!out->passes) return Status::Ok();
  }
  out->keys.clear();
  for (const auto& k : plan_.group_keys) {
    auto v = compiler::Evaluate(*k, ctx);
    if (!v.ok()) return v.status().WithContext("view " + plan_.name + ", GROUP BY");
    out->keys.push_back(std::move(v).value());
  }
  out->group_key.clear();
  EncodeGroupKey(out->keys, &out->group_key);
  // The group's lookup follows the arguments' evaluation: its first cache miss overlaps that.
  out->group_hash = GroupMap::Hash(out->group_key);
  groups_.Prefetch(out->group_hash);
  const size_t n = plan_.aggregates.size();
  out->included.assign(n, 0);
  out->inputs.resize(n);
  out->computed.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& call = plan_.aggregates[i];
    if (call.filter) {
      auto pass = compiler::EvaluatePredicate(*call.filter, ctx);
      if (!pass.ok()) return pass.status().WithContext("view " + plan_.name + ", FILTER");
      if (!*pass) continue;
    }
    out->included[i] = 1;
    if (!call.arg) {
      out->computed[i] = Value();
      out->inputs[i] = &out->computed[i];
      continue;
    }
    Status s = compiler::EvaluateInPlace(*call.arg, ctx, &out->computed[i], &out->inputs[i]);
    if (!s.ok()) return s.WithContext("view " + plan_.name + ", aggregate argument");
  }
  return Status::Ok();
}

bool ViewMaintainer::SameContribution(const RowEval& a, const RowEval& b, size_t i) const {
  if (a.included[i] != b.included[i]) return false;
  return !a.included[i] || a.inputs[i]->Identical(*b.inputs[i]);
}

Status ViewMaintainer::FoldRow(const RowEval& e, int64_t weight, const RowEval* unchanged_from,
                               store::KvStore& store) {
  TALLY_ASSIGN_OR_RETURN(GroupState * g, LoadGroup(e.group_key, e.group_hash, e.keys, store));
  if (unchanged_from == nullptr) g->rows += weight;
  for (size_t i = 0; i < plan_.aggregates.size(); ++i) {
    if (!e.included[i]) continue;
    if (unchanged_from != nullptr && SameContribution(e, *unchanged_from, i)) continue;
    const Value& input = *e.inputs[i];
    if (IsValueCounted(specs_[i])) {
      if (input.is_null() || value_count_slot_[i] != i) continue;
      ValueDelta d;
      d.offset = static_cast<uint32_t>(delta_bytes_.size());
      agg::AppendSortKey(input, *settings_.collation, &delta_bytes_);
      d.sort_key_size = static_cast<uint32_t>(delta_bytes_.size() - d.offset);
      agg::EncodeValue(input, &delta_bytes_);
      d.value_size = static_cast<uint32_t>(delta_bytes_.size() - d.offset - d.sort_key_size);
      d.head = store::KeyHead(std::string_view(delta_bytes_).substr(d.offset, d.sort_key_size));
      d.slot = static_cast<uint32_t>(i);
      d.weight = weight;
      g->value_deltas.push_back(d);
      ++delta_count_;
      continue;
    }
    agg::Apply(specs_[i], g->accumulators[i], input, weight);
  }
  if (delta_bytes_.size() + delta_count_ * sizeof(ValueDelta) > delta_limit_) {
    // Mid-batch, with the stream's thread busy: on this thread alone.
    return SettleAll(store, /*may_split=*/false);
  }
  return Status::Ok();
}

Status ViewMaintainer::SettleValueCounts(store::KvStore& store) {
  return SettleAll(store, parallel_settle_.load(std::memory_order_relaxed));
}

Status ViewMaintainer::SettleAll(store::KvStore& store, bool may_split) {
  if (delta_bytes_.empty()) return Status::Ok();
  settling_.clear();
  for (auto* entry : dirty_groups_) {
    if (!entry->second.value_deltas.empty()) settling_.push_back(entry);
  }
  const std::span<GroupMap::value_type* const> groups(settling_);
  // Halves by position: the groups are in the order the batch first touched them, so both
  // halves hold about as many deltas.
  size_t mine = groups.size();
  std::thread helper;
  Status helper_status;
  RunReader helper_reader;
  if (may_split && groups.size() >= kParallelSettleGroups) {
    const size_t half = groups.size() / 2;
    try {
      helper = std::thread(
          [&] { helper_status = SettleGroups(groups.subspan(half), store, helper_reader); });
      mine = half;
      ++split_settles_;
    } catch (const std::system_error&) {
      // No thread to be had: this one settles them all.
    }
  }
  Status s = SettleGroups(groups.first(mine), store, reader_);
  if (helper.joinable()) helper.join();
  TALLY_RETURN_IF_ERROR(s);
  TALLY_RETURN_IF_ERROR(helper_status);
  delta_bytes_.clear();
  delta_count_ = 0;
  if (delta_bytes_.capacity() > delta_limit_) std::string().swap(delta_bytes_);
  return Status::Ok();
}

Status ViewMaintainer::SettleGroups(std::span<GroupMap::value_type* const> groups,
                                    store::KvStore& store, RunReader& reader) {
  for (auto* entry : groups) {
    TALLY_RETURN_IF_ERROR(SettleGroup(entry->first, entry->second, store, reader));
  }
  return Status::Ok();
}

Status ViewMaintainer::SettleGroup(const std::string& group_key, GroupState& g,
                                   store::KvStore& store, RunReader& reader) {
  std::vector<ValueDelta>& deltas = g.value_deltas;
  auto sort_key = [&](const ValueDelta& d) {
    return std::string_view(delta_bytes_).substr(d.offset, d.sort_key_size);
  };
  // By slot and sort key; equal keys net out before the runs see them.
  std::sort(deltas.begin(), deltas.end(), [&](const ValueDelta& a, const ValueDelta& b) {
    if (a.slot != b.slot) return a.slot < b.slot;
    if (a.head != b.head) return a.head < b.head;
    return sort_key(a) < sort_key(b);
  });
  for (size_t i = 0; i < deltas.size();) {
    const ValueDelta& d = deltas[i];
    const std::string_view key = sort_key(d);
    int64_t weight = 0;
    size_t j = i;
    for (; j < deltas.size() && deltas[j].slot == d.slot && deltas[j].head == d.head &&
           sort_key(deltas[j]) == key;
         ++j) {
      weight += deltas[j].weight;
    }
    i = j;
    if (weight == 0) continue;
    const size_t slot = d.slot;
    TALLY_ASSIGN_OR_RETURN(ValueChunk * chunk,
                           FindChunk(group_key, g, slot, key, g.value_sets[slot], store, reader));
    const std::string_view value =
        std::string_view(delta_bytes_).substr(d.offset + d.sort_key_size, d.value_size);
    TALLY_ASSIGN_OR_RETURN(int appeared, AddToChunk(*chunk, key, value, weight));
    if (appeared == 0) continue;
    for (size_t a = 0; a < specs_.size(); ++a) {
      // For count(DISTINCT) the accumulator's count is the number of distinct values.
      if (value_count_slot_[a] == slot && specs_[a].distinct) g.accumulators[a].count += appeared;
    }
  }
  deltas.clear();
  // A group that took a large batch's share does not keep its memory.
  if (deltas.capacity() > kKeptDeltaCapacity) std::vector<ValueDelta>().swap(deltas);
  return Status::Ok();
}

Status ViewMaintainer::ApplyRow(RowFields row, int64_t weight, store::KvStore& store) {
  TALLY_RETURN_IF_ERROR(EvaluateRow(row, &eval_old_));
  if (!eval_old_.passes) return Status::Ok();
  return FoldRow(eval_old_, weight, nullptr, store);
}

Status ViewMaintainer::ApplyUpdate(RowFields old_row, RowFields new_row, store::KvStore& store) {
  TALLY_RETURN_IF_ERROR(EvaluateRow(old_row, &eval_old_));
  TALLY_RETURN_IF_ERROR(EvaluateRow(new_row, &eval_new_));
  return FoldUpdate(store);
}

Status ViewMaintainer::ApplyValues(std::span<const Value> row, std::span<const int> row_map,
                                   int64_t weight, store::KvStore& store) {
  TALLY_RETURN_IF_ERROR(EvaluateValues(row, row_map, &eval_old_));
  if (!eval_old_.passes) return Status::Ok();
  return FoldRow(eval_old_, weight, nullptr, store);
}

Status ViewMaintainer::ApplyUpdateValues(std::span<const Value> old_row,
                                         std::span<const Value> new_row,
                                         std::span<const int> row_map, store::KvStore& store) {
  TALLY_RETURN_IF_ERROR(EvaluateValues(old_row, row_map, &eval_old_));
  TALLY_RETURN_IF_ERROR(EvaluateValues(new_row, row_map, &eval_new_));
  return FoldUpdate(store);
}

Status ViewMaintainer::FoldUpdate(store::KvStore& store) {
  if (eval_old_.passes && eval_new_.passes && eval_old_.group_key == eval_new_.group_key) {
    // The row stays in its group: only the aggregates whose input changed see it, and a group
    // none of them changes is not touched at all.
    bool any = false;
    for (size_t i = 0; i < plan_.aggregates.size() && !any; ++i) {
      any = !SameContribution(eval_old_, eval_new_, i);
    }
    if (!any) return Status::Ok();
    TALLY_RETURN_IF_ERROR(FoldRow(eval_old_, -1, &eval_new_, store));
    return FoldRow(eval_new_, 1, &eval_old_, store);
  }
  if (eval_old_.passes) TALLY_RETURN_IF_ERROR(FoldRow(eval_old_, -1, nullptr, store));
  if (eval_new_.passes) TALLY_RETURN_IF_ERROR(FoldRow(eval_new_, 1, nullptr, store));
  return Status::Ok();
}

void ViewMaintainer::Truncate() {
  // Groups already touched in this batch keep their deletion bookkeeping; every other stored
  // group disappears with the summary rewrite.
  Reset();
  truncated_ = true;
}

namespace {

constexpr char kBoundedRun = '\1';
constexpr char kLastRun = '\2';

void AppendRunKey(std::string_view prefix, std::optional<std::string_view> hi, std::string* out) {
  out->append(prefix);
  if (hi) {
    out->push_back(kBoundedRun);
    out->append(*hi);
  } else {
    out->push_back(kLastRun);
  }
}

std::string RunKey(std::string_view prefix, const std::optional<std::string>& hi) {
  std::string key;
  AppendRunKey(prefix, hi, &key);
  return key;
}

std::string RunStart(const std::optional<std::string>& lo) {
  return lo ? std::string(1, '\1') + *lo : std::string();
}

}  // namespace

Status ViewMaintainer::ParseChunk(std::string_view prefix, std::string_view key,
                                  std::string_view bytes, ValueChunk* chunk) const {
  auto bad = [&] { return Status::Corruption("view " + plan_.name + ": bad stored value counts"); };
  key.remove_prefix(prefix.size());
  if (key.empty() || (key[0] != kBoundedRun && key[0] != kLastRun)) return bad();
  chunk->hi.reset();
  if (key[0] == kBoundedRun) chunk->hi.emplace(key.substr(1));
  chunk->stored = true;
  chunk->stored_hi = chunk->hi;
  if (bytes.empty()) return bad();
  const bool has_lo = bytes[0] == '\1';
  bytes.remove_prefix(1);
  chunk->lo.reset();
  if (has_lo) {
    std::string_view lo;
    if (!ReadBytes(&bytes, &lo)) return bad();
    chunk->lo.emplace(lo);
  }
  if (bytes.size() < 4) return bad();
  uint32_t n = ReadU32(bytes);
  bytes.remove_prefix(4);
  // Every entry takes at least two bytes: a count beyond that is corrupt.
  if (n > bytes.size() / 2) return bad();
  chunk->entries.resize(n);
  chunk->heads.resize(n);
  std::string sort_key;
  for (uint32_t i = 0; i < n; ++i) {
    ValueEntry& e = chunk->entries[i];
    const std::string_view entry = bytes;
    auto value = agg::DecodeValue(&bytes);
    if (!value.ok() || value->is_null()) return bad();
    const std::string_view value_bytes = entry.substr(0, entry.size() - bytes.size());
    uint64_t count;
    if (!agg::GetVarint64(&bytes, &count) || count == 0 ||
        count > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return bad();
    }
    e.count = static_cast<int64_t>(count);
    // Sort keys are derived from the values, not stored: runs are rewritten far more often
    // than they are read back.
    sort_key.clear();
    agg::AppendSortKey(*value, *settings_.collation, &sort_key);
    e.Assign(sort_key, value_bytes);
    chunk->heads[i] = store::KeyHead(sort_key);
  }
  if (!bytes.empty() || n == 0) return bad();
  return Status::Ok();
}

Result<ViewMaintainer::ValueChunk*> ViewMaintainer::FindChunk(const std::string& group_key,
                                                              const GroupState& g, size_t slot,
                                                              std::string_view sort_key,
                                                              ValueSet& set, store::KvStore& store,
                                                              RunReader& reader) {
  if (set.size() == 1) {
    // The common case: the set's one run covers everything, no lookup key to build.
    ValueChunk& c = set.begin()->second;
    if (!c.lo && !c.hi) return &c;
  }
  reader.lookup.assign(1, '\1');
  reader.lookup.append(sort_key);
  auto it = set.upper_bound(reader.lookup);
  if (it != set.begin()) {
    --it;
    ValueChunk& c = it->second;
    if (!c.hi || sort_key < *c.hi) return &c;
  }
  if (truncated_ || !g.existed_before) return &set[std::string()];  // nothing stored
  const std::string prefix = ValueCountPrefix(group_key, slot);
  store::KvIterator& iter = reader.Iterator(store);
  // The first run whose (exclusive) end is past sort_key.
  reader.lookup = prefix;
  reader.lookup.push_back(kBoundedRun);
  reader.lookup.append(sort_key);
  reader.lookup.push_back('\0');
  iter.Seek(reader.lookup);
  if (!iter.Valid() || iter.key().substr(0, prefix.size()) != prefix) {
    TALLY_RETURN_IF_ERROR(iter.status());
    if (!set.empty()) {
      return Status::Corruption("view " + plan_.name + ": value counts without a last run");
    }
    return &set[std::string()];  // no value counts stored for this set
  }
  ValueChunk chunk;
  TALLY_RETURN_IF_ERROR(ParseChunk(prefix, iter.key(), iter.value(), &chunk));
  if (chunk.lo && *chunk.lo > sort_key) {
    return Status::Corruption("view " + plan_.name + ": value-count runs do not cover a value");
  }
  auto [pos, inserted] = set.emplace(RunStart(chunk.lo), std::move(chunk));
  if (!inserted) return Status::Corruption("view " + plan_.name + ": overlapping value-count runs");
  return &pos->second;
}

void ViewMaintainer::ValueEntry::Assign(std::string_view sort_key, std::string_view value) {
  bytes = std::make_unique_for_overwrite<char[]>(sort_key.size() + value.size());
  std::memcpy(bytes.get(), sort_key.data(), sort_key.size());
  std::memcpy(bytes.get() + sort_key.size(), value.data(), value.size());
  sort_key_size = static_cast<uint32_t>(sort_key.size());
  value_size = static_cast<uint32_t>(value.size());
}

Result<int> ViewMaintainer::AddToChunk(ValueChunk& chunk, std::string_view sort_key,
                                       std::string_view encoded_value, int64_t weight) const {
  auto& entries = chunk.entries;
  auto& heads = chunk.heads;
  const uint64_t head = store::KeyHead(sort_key);
  // Among entries with this head (usually none or one), the full sort keys decide; those of
  // at most 8 bytes are their heads (zero-padded) and sizes, so their bytes stay unread.
  auto compare = [&](const ValueEntry& e) {
    if (e.sort_key_size <= 8 && sort_key.size() <= 8) {
      return e.sort_key_size < sort_key.size() ? -1 : e.sort_key_size > sort_key.size();
    }
    return e.sort_key().compare(sort_key);
  };
  size_t pos = HeadLowerBound(heads, head);
  int found = 1;  // entries[pos] compared to the sought key (1: past it or no entry there)
  if (pos < heads.size() && heads[pos] == head) {
    // Binary search: a run can hold thousands of entries with one head until it is split.
    size_t last = pos + 1;
    if (last < heads.size() && heads[last] == head) {
      last = static_cast<size_t>(
          std::upper_bound(heads.begin() + static_cast<ptrdiff_t>(last), heads.end(), head) -
          heads.begin());
    }
    while (pos < last) {
      const size_t mid = pos + (last - pos) / 2;
      if (compare(entries[mid]) < 0) {
        pos = mid + 1;
      } else {
        last = mid;
      }
    }
    if (pos < heads.size() && heads[pos] == head) found = compare(entries[pos]);
  }
  chunk.dirty = true;
  if (found == 0) {
    ValueEntry& e = entries[pos];
    e.count += weight;
    if (e.count > 0) return 0;
    if (e.count == 0) {
      entries.erase(entries.begin() + static_cast<ptrdiff_t>(pos));
      heads.erase(heads.begin() + static_cast<ptrdiff_t>(pos));
      return -1;
    }
  } else if (weight > 0) {
    ValueEntry e;
    e.Assign(sort_key, encoded_value);
    e.count = weight;
    entries.insert(entries.begin() + static_cast<ptrdiff_t>(pos), std::move(e));
    heads.insert(heads.begin() + static_cast<ptrdiff_t>(pos), head);
    return 1;
  }
  return Status::Corruption("view " + plan_.name +
                            ": a value count went negative (the state missed a row)");
}

Status ViewMaintainer::DropEmptyChunks(const std::string& prefix, ValueSet& set,
                                       store::KvStore& store, store::KvBatch& batch) {
  auto load = [&](std::string_view key, std::string_view value) -> Result<ValueSet::iterator> {
    ValueChunk c;
    TALLY_RETURN_IF_ERROR(ParseChunk(prefix, key, value, &c));
    auto [pos, inserted] = set.emplace(RunStart(c.lo), std::move(c));
    if (!inserted)
      return Status::Corruption("view " + plan_.name + ": overlapping value-count runs");
    return pos;
  };
  for (auto it = set.begin(); it != set.end();) {
    ValueChunk& c = it->second;
    if (!c.entries.empty() || (!c.stored && !c.dirty)) {
      ++it;
      continue;
    }
    if (c.stored) batch.Delete(RunKey(prefix, c.stored_hi));
    c.stored = false;
    c.dirty = false;
    if (c.hi) {
      // The next run takes over the range.
      auto next = set.find(RunStart(c.hi));
      if (next == set.end()) {
        if (truncated_) return Status::Internal("a truncated set with a bounded run");
        auto& iter = reader_.Iterator(store);
        std::string key = RunKey(prefix, c.hi);
        key.push_back('\0');
        iter.Seek(key);
        if (!iter.Valid() || iter.key().substr(0, prefix.size()) != prefix) {
          TALLY_RETURN_IF_ERROR(iter.status());
          return Status::Corruption("view " + plan_.name + ": value-count run missing after " +
                                    "an emptied one");
        }
        TALLY_ASSIGN_OR_RETURN(next, load(iter.key(), iter.value()));
      }
      auto node = set.extract(next);
      node.mapped().lo = c.lo;
      node.mapped().dirty = true;
      std::string start = it->first;
      set.erase(it);
      node.key() = std::move(start);
      it = set.insert(std::move(node)).position;  // looked at again: it may be empty too
    } else if (c.lo) {
      // The last run emptied: the previous run becomes the last.
      ValueSet::iterator prev = set.end();
      if (it != set.begin() && std::prev(it)->second.hi == c.lo) {
        prev = std::prev(it);
      } else {
        TALLY_ASSIGN_OR_RETURN(auto stored, store.Get(RunKey(prefix, c.lo)));
        if (!stored) {
          return Status::Corruption("view " + plan_.name + ": value-count run missing before " +
                                    "an emptied one");
        }
        TALLY_ASSIGN_OR_RETURN(prev, load(RunKey(prefix, c.lo), *stored));
      }
      prev->second.hi.reset();
      prev->second.dirty = true;
      it = set.erase(it);
    } else {
      ++it;  // the whole set is empty: kept as the empty run (-inf, +inf), not stored
    }
  }
  return Status::Ok();
}

void ViewMaintainer::WriteValueSet(const std::string& prefix, ValueSet& set,
                                   store::KvBatch& batch) {
  // A run grown past kMaxRunEntries is split into runs of half that.
  std::string& value = flush_value_;
  std::string& key = flush_key_;
  for (auto& [start, chunk] : set) {
    if (!chunk.dirty || chunk.entries.empty()) continue;
    if (chunk.stored && chunk.stored_hi != chunk.hi) batch.Delete(RunKey(prefix, chunk.stored_hi));
    const auto& entries = chunk.entries;
    const size_t per_run = entries.size() > kMaxRunEntries ? kMaxRunEntries / 2 : kMaxRunEntries;
    for (size_t begin = 0; begin < entries.size(); begin += per_run) {
      const size_t end = std::min(entries.size(), begin + per_run);
      // The run's lower bound: the chunk's for its first run, else its first entry.
      const bool has_lo = begin > 0 || chunk.lo.has_value();
      const std::string_view lo = begin > 0  ? entries[begin].sort_key()
                                  : chunk.lo ? std::string_view(*chunk.lo)
                                             : std::string_view();
      value.clear();
      value.push_back(has_lo ? '\1' : '\0');
      if (has_lo) AppendBytes(lo, &value);
      AppendU32(static_cast<uint32_t>(end - begin), &value);
      for (size_t i = begin; i < end; ++i) {
        value.append(entries[i].value());
        agg::PutVarint64(static_cast<uint64_t>(entries[i].count), &value);
      }
      key.clear();
      AppendRunKey(prefix,
                   end == entries.size() ? std::optional<std::string_view>(chunk.hi)
                                         : entries[end].sort_key(),
                   &key);
      batch.Put(key, value);
    }
  }
}

Status ViewMaintainer::UpdateExtremes(GroupState& g) {
  for (size_t i = 0; i < specs_.size(); ++i) {
    const auto kind = specs_[i].kind;
    if (kind != agg::AggKind::kMin && kind != agg::AggKind::kMax) continue;
    const ValueSet& set = g.value_sets[value_count_slot_[i]];
    if (set.empty()) continue;
    const ValueChunk* end_run = nullptr;
    if (kind == agg::AggKind::kMin) {
      if (!set.begin()->second.lo) end_run = &set.begin()->second;
    } else if (!set.rbegin()->second.hi) {
      end_run = &set.rbegin()->second;
    }
    // A run not loaded is unchanged, and so is the extreme it holds.
    if (end_run == nullptr) continue;
    if (end_run->entries.empty()) {
      g.extreme_keys[i].clear();
      g.extremes[i] = Value();
      continue;
    }
    const ValueEntry& e =
        kind == agg::AggKind::kMin ? end_run->entries.front() : end_run->entries.back();
    if (!g.extremes[i].is_null() && g.extreme_keys[i] == e.sort_key()) continue;
    g.extreme_keys[i] = e.sort_key();
    std::string_view bytes = e.value();
    TALLY_ASSIGN_OR_RETURN(g.extremes[i], agg::DecodeValue(&bytes));
  }
  return Status::Ok();
}

Result<std::optional<SinkRow>> ViewMaintainer::ComputeRow(const GroupState& g) const {
  if (g.rows <= 0 && plan_.has_group_by) return std::optional<SinkRow>();
  std::vector<Value> results(specs_.size());
  for (size_t i = 0; i < specs_.size(); ++i) {
    const auto& spec = specs_[i];
    if (spec.kind == agg::AggKind::kMin || spec.kind == agg::AggKind::kMax) {
      results[i] = g.extremes[i].is_null() ? Value::Null(spec.result_type) : g.extremes[i];
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
  TALLY_RETURN_IF_ERROR(SettleValueCounts(store));
  *rewrite_all = truncated_;
  group_count_delta_ = 0;
  if (truncated_) {
    for (const std::string& p : {GroupPrefix(), ValueCountViewPrefix(), PendingPrefix()}) {
      batch.DeleteRange(p, store::PrefixEnd(p));
    }
  }
  if (!plan_.has_group_by) {
    // A view without GROUP BY has its one row even over an empty table.
    TALLY_RETURN_IF_ERROR(LoadGroup(std::string(), GroupMap::Hash(""), {}, store).status());
  }
  // Pending summary rows, framed (u32 length, EncodeSinkRow), in runs of about
  // kPendingRunBytes per key: a few keys per batch rather than one per changed group.
  std::string pending;
  uint32_t pending_runs = 0;
  auto put_pending_run = [&] {
    std::string key = PendingPrefix() + kPendingRun;
    AppendU32(pending_runs++, &key);
    batch.Put(key, pending);
    pending.clear();
  };
  std::vector<std::string> vanished;
  const std::string group_prefix = GroupPrefix();
  const std::string value_count_view_prefix = ValueCountViewPrefix();
  for (auto* entry : dirty_groups_) {
    const std::string& group_key = entry->first;
    GroupState& g = entry->second;
    bool exists_now = g.rows > 0 || !plan_.has_group_by;
    if (g.rows < 0) {
      return Status::Corruption("view " + plan_.name +
                                ": a group's row count went negative (the state missed a row)");
    }
    if (keeps_value_counts_) {
      for (size_t slot = 0; slot < g.value_sets.size(); ++slot) {
        if (g.value_sets[slot].empty()) continue;
        std::string& prefix = flush_prefix_;
        prefix.clear();
        AppendValueCountPrefix(value_count_view_prefix, group_key, slot, &prefix);
        TALLY_RETURN_IF_ERROR(DropEmptyChunks(prefix, g.value_sets[slot], store, batch));
        WriteValueSet(prefix, g.value_sets[slot], batch);
      }
      TALLY_RETURN_IF_ERROR(UpdateExtremes(g));
    }
    std::string& key = flush_key_;
    key = group_prefix;
    key += group_key;
    if (exists_now) {
      flush_value_.clear();
      EncodeGroup(g, &flush_value_);
      batch.Put(key, flush_value_);
    } else if (g.existed_before) {
      batch.Delete(key);
    }
    if (exists_now && !g.existed_before) ++group_count_delta_;
    if (!exists_now && g.existed_before) --group_count_delta_;
    const bool write_row = (exists_now || g.existed_before) && record_pending_;
    if (exists_now) {
      MarkFlushed(group_key, g);
    } else {
      vanished.push_back(group_key);
    }
    if (!write_row) continue;
    TALLY_ASSIGN_OR_RETURN(auto row, ComputeRow(g));
    SinkRow sink_row = row ? std::move(*row) : DeletionRow(g);
    AppendFramed(&pending, [&] { EncodeSinkRow(sink_row, &pending); });
    if (pending_per_group_) {
      batch.Put(PendingPrefix() + kPendingByGroup + group_key, pending);
      pending.clear();
    } else if (pending.size() >= kPendingRunBytes) {
      put_pending_run();
    }
    out->push_back(std::move(sink_row));
  }
  if (!pending.empty()) put_pending_run();
  for (const std::string& key : vanished) {
    auto it = groups_.find(key);
    cache_bytes_ -= it->second.bytes;
    groups_.erase(it);
  }
  dirty_groups_.clear();
  reader_.iter.reset();
  truncated_ = false;
  EvictToBudget();
  return Status::Ok();
}

void ViewMaintainer::MarkFlushed(const std::string& group_key, GroupState& g) {
  g.existed_before = true;
  g.dirty = false;
  // An estimate of what the allocations take: the node and its hash slot, five vectors' heap
  // blocks, per key and accumulator their own heap parts (numeric limbs, scale counts), and
  // malloc's headers (counting only sizeof, a 1M-row update under a 256 MB budget peaked at
  // 732 MB VmHWM).
  size_t bytes = sizeof(GroupMap::value_type) + 48 + group_key.size() + 5 * 32 +
                 g.keys.size() * (sizeof(Value) + 32) +
                 g.accumulators.size() * (sizeof(agg::Accumulator) + 64) +
                 g.extremes.size() * (sizeof(Value) + sizeof(std::string)) +
                 g.value_deltas.capacity() * sizeof(ValueDelta);
  for (ValueSet& set : g.value_sets) {
    for (auto it = set.begin(); it != set.end();) {
      ValueChunk& c = it->second;
      if (c.dirty && c.entries.size() > kMaxRunEntries) {
        it = set.erase(it);  // stored as several runs now: loaded again as they are needed
        continue;
      }
      if (c.dirty) {
        c.stored = !c.entries.empty();
        c.stored_hi = c.hi;
        c.dirty = false;
      }
      bytes += 96 + it->first.size() + (c.hi ? c.hi->size() : 0) +
               c.entries.size() * (sizeof(ValueEntry) + sizeof(uint64_t) + 16 + 16);
      for (const ValueEntry& e : c.entries) bytes += e.sort_key_size + e.value_size;
      ++it;
    }
  }
  cache_bytes_ += bytes - g.bytes;
  g.bytes = bytes;
}

void ViewMaintainer::EvictToBudget() {
  EvictToTarget(*budget_, groups_, &cache_bytes_,
                [](const GroupMap::value_type& e) { return e.second.bytes; });
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
