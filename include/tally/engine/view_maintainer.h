// ViewMaintainer: incremental maintenance of one compiled GROUP BY view over weighted rows.
//
// A change is a weighted row (a Z-set entry): insert (+1), delete (-1), update = (old, -1)
// then (new, +1). ApplyRow folds a row into the touched group's accumulators and, for min,
// max and count(DISTINCT), into per-group value counts. Changes are held in an overlay
// until Flush, which writes the new group states, value counts and the pending sink rows
// into one KvBatch; nothing reaches the store before that, so a batch is all or nothing.
//
// Rows are given as the text Postgres prints for each input column (pgoutput and COPY give
// the same text under tally's session settings), in the plan's input column order.
// Not thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tally/agg/aggregate.h"
#include "tally/compiler/eval.h"
#include "tally/compiler/plan.h"
#include "tally/core/collation.h"
#include "tally/core/status.h"
#include "tally/core/value.h"
#include "tally/engine/cache_budget.h"
#include "tally/engine/node_map.h"
#include "tally/store/kv.h"

namespace date {
class time_zone;
}

namespace tally::engine {

using RowFields = std::span<const std::optional<std::string_view>>;

// One summary row to write (upsert) or remove (delete), as COPY text per output column.
struct SinkRow {
  bool is_delete = false;
  std::vector<std::optional<std::string>> columns;  // output order; deletes fill key columns
};

struct EvalSettings {
  const date::time_zone* session_zone = nullptr;  // the database's default TimeZone
  const Collation* collation = nullptr;           // the database's collation
};

class ViewMaintainer {
 public:
  ViewMaintainer(uint32_t view_id, compiler::ViewPlan plan, EvalSettings settings);
  ~ViewMaintainer() { budget_->Unregister(&cache_bytes_); }
  ViewMaintainer(const ViewMaintainer&) = delete;
  ViewMaintainer& operator=(const ViewMaintainer&) = delete;

  uint32_t view_id() const { return view_id_; }
  const compiler::ViewPlan& plan() const { return plan_; }
  // Output columns that are bare group keys: the summary's unique key.
  const std::vector<int>& key_outputs() const { return key_outputs_; }

  // Folds one row in with `weight`. Errors name the view and column.
  Status ApplyRow(RowFields row, int64_t weight, store::KvStore& store);
  // An update: the old row out, the new row in. The same as ApplyRow(old, -1) then
  // ApplyRow(new, +1), except that aggregates whose input did not change are left alone when
  // the row stays in its group (and a group nothing changes in is not touched).
  Status ApplyUpdate(RowFields old_row, RowFields new_row, store::KvStore& store);
  // ApplyRow and ApplyUpdate for rows already parsed: input column i of the plan is
  // row[row_map[i]] (a table group's row, parsed once for all its views).
  Status ApplyValues(std::span<const Value> row, std::span<const int> row_map, int64_t weight,
                     store::KvStore& store);
  Status ApplyUpdateValues(std::span<const Value> old_row, std::span<const Value> new_row,
                           std::span<const int> row_map, store::KvStore& store);

  // TRUNCATE of the base table: the view's stored state is logically empty from here on;
  // Flush deletes it and asks for the summary to be rewritten whole.
  void Truncate();

  // Writes the batch's changes into `batch` and the changed summary rows into `out`
  // (also recorded as pending keys in the batch). `*rewrite_all` is set when the summary
  // must be emptied before `out` is applied (after a TRUNCATE). Clears the overlay.
  Status Flush(store::KvStore& store, store::KvBatch& batch, std::vector<SinkRow>* out,
               bool* rewrite_all);

  // Every group's summary row, read from the store (for backfill and full rewrites).
  Status ScanAll(store::KvStore& store, const std::function<Status(const SinkRow&)>& emit);

  // Group states (with the value-count runs they loaded) stay in memory after a flush, as a
  // cache of the store, up to about this many bytes; the least recently used go first.
  // The memory limit this cache shares with others (by default one of its own, 64 MB).
  void set_cache_budget(std::shared_ptr<CacheBudget> budget) {
    budget_->Unregister(&cache_bytes_);
    budget_ = std::move(budget);
    budget_->Register(&cache_bytes_);
  }
  size_t cache_bytes() const { return cache_bytes_.get(); }
  int64_t group_count_delta() const { return group_count_delta_; }

  // Whether Flush records pending sink rows ("p" keys); off while a backfill builds a state
  // whose summary is written whole at its end.
  void set_record_pending(bool on) { record_pending_ = on; }
  // Pending rows keyed by group, so that later flushes overwrite earlier ones (a streamed
  // transaction applied in chunks, written to the sink once at its end); otherwise they go
  // in a few runs per flush, which the next flush must not find (the daemon clears them).
  void set_pending_per_group(bool on) { pending_per_group_ = on; }

  // The rows' min/max and count(DISTINCT) arguments are recorded per group as value-count
  // deltas and applied to the group's runs here, sorted and netted: a group's runs are then
  // read once per batch while in cache, not once per row with a cache miss at each step.
  // Flush settles first; the daemon's apply worker settles before a flush, off the stream's
  // thread. Errors the runs find (a count gone negative) surface here.
  Status SettleValueCounts(store::KvStore& store);
  bool keeps_value_counts() const { return keeps_value_counts_; }
  // Whether a large settle may split its groups with a second thread: worth it when nothing
  // else needs the other core, as at the end of a catch-up, where the last batch's settle
  // stands between the stream running dry and the batch's write.
  void set_parallel_settle(bool on) { parallel_settle_.store(on, std::memory_order_relaxed); }
  uint64_t split_settles() const { return split_settles_; }  // settles that used two threads
  // Deltas settle as they reach this many bytes, too.
  void set_value_count_delta_limit(size_t bytes) { delta_limit_ = bytes; }

  // Drops the overlay and the cache: after an error, a discarded batch, or anything else
  // that wrote this view's state.
  void Reset();

  // Key helpers, exposed for the daemon's pending-row bookkeeping and tests.
  std::string GroupPrefix() const;           // "g" + view_id
  std::string PendingPrefix() const;         // "p" + view_id
  std::string ValueCountViewPrefix() const;  // "x" + view_id

 private:
  // One stored value count: how many rows of the group have this aggregate argument.
  struct ValueEntry {
    // The sort key (agg::AppendSortKey under the database's collation) then the value
    // (agg::EncodeValue), in one heap block: one allocation, and a run's insert or erase
    // shifts entries of 24 bytes with a pointer move each.
    std::unique_ptr<char[]> bytes;
    uint32_t sort_key_size = 0;
    uint32_t value_size = 0;
    int64_t count = 0;

    void Assign(std::string_view sort_key, std::string_view value);
    std::string_view sort_key() const { return std::string_view(bytes.get(), sort_key_size); }
    std::string_view value() const {
      return std::string_view(bytes.get() + sort_key_size, value_size);
    }
  };
  // A run of one group's value counts (for one aggregate argument), stored under one key. The
  // runs of a set partition the sort-key space into ranges [lo, hi); a run is stored under
  // the set's prefix plus its hi ("\x01" hi, or "\x02" for the unbounded last run) and keeps
  // its lo in the value, so one forward Seek finds the run that holds a value, with both
  // bounds (RocksDB reads backwards slowly). One key per run rather than per value makes a
  // batch write one key per touched run where groups hold many distinct values.
  struct ValueChunk {
    std::optional<std::string> lo, hi;  // nullopt: unbounded
    bool stored = false;                // a key for it exists in the store, under stored_hi
    std::optional<std::string> stored_hi;
    std::vector<ValueEntry> entries;  // ascending; counts > 0
    // Per entry its sort key's first 8 bytes, big-endian: a lookup searches these few cache
    // lines first and reads only the entries whose head equals the sought one's.
    std::vector<uint64_t> heads;
    bool dirty = false;
  };
  // The loaded runs of one group's value counts for one aggregate argument, by range start:
  // "" for the first run (unbounded below), "\x01" + lo for the others.
  using ValueSet = std::map<std::string, ValueChunk>;
  // A value count's change, not yet in the runs (SettleValueCounts): the sort key then the
  // encoded value at `offset` in delta_bytes_.
  struct ValueDelta {
    uint64_t head = 0;  // store::KeyHead of the sort key
    uint32_t offset = 0;
    uint32_t sort_key_size = 0;
    uint32_t value_size = 0;
    uint32_t slot = 0;
    int64_t weight = 0;
  };

  struct GroupState {
    std::vector<Value> keys;
    int64_t rows = 0;  // weight sum of rows in the group; the group exists while > 0
    std::vector<agg::Accumulator> accumulators;
    // min/max: the current extreme's sort key ("" with a NULL value when the group has none)
    // and value, so that only deleting the extreme needs a look at other value counts.
    std::vector<std::string> extreme_keys;
    std::vector<Value> extremes;
    std::vector<ValueSet> value_sets;      // per aggregate that owns value counts (its slot)
    std::vector<ValueDelta> value_deltas;  // since the last SettleValueCounts
    bool existed_before = false;           // stored (as of the last flush)
    bool dirty = false;                    // changed since the last flush
    bool recent = false;                   // used since the cache last looked for what to evict
    size_t bytes = 0;                      // approximate memory, counted in cache_bytes_
  };
  using GroupMap = NodeMap<GroupState>;

  // One thread's reads of stored value-count runs: an iterator (made on first use, dropped by
  // Flush and Reset) and a key buffer.
  struct RunReader {
    std::unique_ptr<store::KvIterator> iter;
    std::string lookup;
    store::KvIterator& Iterator(store::KvStore& store) {
      if (!iter) iter = store.NewIterator();
      return *iter;
    }
  };

  Result<GroupState*> LoadGroup(const std::string& group_key, uint64_t hash,
                                std::span<const Value> keys, store::KvStore& store);
  Status DecodeGroup(std::string_view bytes, GroupState* g) const;
  void EncodeGroup(const GroupState& g, std::string* out) const;
  std::string ValueCountPrefix(const std::string& group_key, size_t slot) const;
  // The run of `set` whose range holds `sort_key`, loaded from the store when needed.
  Result<ValueChunk*> FindChunk(const std::string& group_key, const GroupState& g, size_t slot,
                                std::string_view sort_key, ValueSet& set, store::KvStore& store,
                                RunReader& reader);
  // Reads the run stored at `key` (a full value-count key of the set with `prefix`).
  Status ParseChunk(std::string_view prefix, std::string_view key, std::string_view value,
                    ValueChunk* chunk) const;
  // Adds `weight` rows with `value` to the run; returns +1 when the value appeared, -1 when
  // it disappeared, else 0.
  Result<int> AddToChunk(ValueChunk& chunk, std::string_view sort_key,
                         std::string_view encoded_value, int64_t weight) const;
  // Touches only `g` and `reader`: groups settle on two threads at once (parallel_settle_).
  Status SettleGroup(const std::string& group_key, GroupState& g, store::KvStore& store,
                     RunReader& reader);
  Status SettleGroups(std::span<GroupMap::value_type* const> groups, store::KvStore& store,
                      RunReader& reader);
  Status SettleAll(store::KvStore& store, bool may_split);
  // Merges the runs the batch emptied into a neighbour, so stored runs are never empty and
  // the first and last runs hold the set's minimum and maximum.
  Status DropEmptyChunks(const std::string& prefix, ValueSet& set, store::KvStore& store,
                         store::KvBatch& batch);
  // Writes the set's changed runs (split when grown) into `batch`.
  void WriteValueSet(const std::string& prefix, ValueSet& set, store::KvBatch& batch);
  // min/max after the batch: from the first or last run when it was loaded (else unchanged).
  Status UpdateExtremes(GroupState& g);
  // After a flush: the group as the store now holds it, and its memory counted again.
  void MarkFlushed(const std::string& group_key, GroupState& g);
  void EvictToBudget();
  Result<std::optional<SinkRow>> ComputeRow(const GroupState& g) const;
  SinkRow DeletionRow(const GroupState& g) const;
  Status Parse(RowFields row, std::vector<Value>* out);
  // A row, evaluated: whether it passes WHERE, its group, and per aggregate whether FILTER
  // lets it in and its argument.
  struct RowEval {
    bool passes = false;
    std::string group_key;
    uint64_t group_hash = 0;  // GroupMap::Hash(group_key)
    std::vector<Value> keys;
    std::vector<char> included;
    // Per aggregate its argument: into the evaluated row, the plan, or `computed` (a NULL
    // there for aggregates without one), valid while the row is.
    std::vector<const Value*> inputs;
    std::vector<Value> computed;
    std::vector<Value> row_values;  // a text row, parsed (ApplyRow, ApplyUpdate)
  };
  Status EvaluateRow(RowFields row, RowEval* out);
  Status EvaluateValues(std::span<const Value> row, std::span<const int> row_map, RowEval* out);
  // eval_old_ out, eval_new_ in.
  Status FoldUpdate(store::KvStore& store);
  bool SameContribution(const RowEval& a, const RowEval& b, size_t agg_index) const;
  // Folds an evaluated row into its group; with `unchanged_from`, skips the row count and the
  // aggregates to which that row contributes the same.
  Status FoldRow(const RowEval& e, int64_t weight, const RowEval* unchanged_from,
                 store::KvStore& store);

  uint32_t view_id_;
  compiler::ViewPlan plan_;
  EvalSettings settings_;
  std::vector<agg::AggSpec> specs_;
  std::vector<int> key_outputs_;
  bool keeps_value_counts_ = false;
  std::vector<size_t> value_count_slot_;  // per aggregate: whose value counts it reads

  // Groups changed in the current batch (dirty) and cached from earlier ones.
  GroupMap groups_;
  std::vector<GroupMap::value_type*> dirty_groups_;
  std::vector<GroupMap::value_type*> settling_;  // SettleValueCounts' scratch
  CacheBytes cache_bytes_;
  std::shared_ptr<CacheBudget> budget_ = [this] {
    auto b = std::make_shared<CacheBudget>(size_t{64} << 20);
    b->Register(&cache_bytes_);
    return b;
  }();
  RunReader reader_;  // this thread's reads of this batch; reset by Flush
  std::atomic<bool> parallel_settle_ = false;
  uint64_t split_settles_ = 0;
  bool truncated_ = false;
  bool record_pending_ = true;
  bool pending_per_group_ = false;
  int64_t group_count_delta_ = 0;

  // The bytes of every group's value_deltas. They settle early when they and the deltas take
  // more than delta_limit_, a bound on memory (batches are bounded already): settling at the
  // flush rather than in slices was faster in the bench harness (3 A/B runs: 4 MB slices
  // 187k rows/s, 64 MB 193k).
  std::string delta_bytes_;
  size_t delta_count_ = 0;  // deltas in all groups' value_deltas, each sizeof(ValueDelta) too
  size_t delta_limit_ = size_t{64} << 20;

  // Scratch, reused per row to avoid allocation.
  RowEval eval_old_, eval_new_;
  std::string flush_prefix_, flush_key_, flush_value_;  // Flush only
};

// Row encoding for the row store (row_store.h): per field a flag byte (0 NULL, 1 value), u32
// length, bytes.
void EncodeRow(RowFields row, std::string* out);
Status DecodeRow(std::string_view bytes, std::vector<std::optional<std::string>>* out);
// As DecodeRow, with views into `bytes`.
Status DecodeRowViews(std::string_view bytes, std::vector<std::optional<std::string_view>>* out);
void EncodeSinkRow(const SinkRow& row, std::string* out);
Result<SinkRow> DecodeSinkRow(std::string_view bytes);
// The summary rows in one pending key's value (ViewMaintainer::Flush).
Status ForEachPendingRow(std::string_view value,
                         const std::function<Status(const SinkRow&)>& visit);

// Encodes a group key (the GROUP BY values) so that equal keys under GROUP BY's equality
// give equal bytes.
void EncodeGroupKey(std::span<const Value> keys, std::string* out);

}  // namespace tally::engine
