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

  uint32_t view_id() const { return view_id_; }
  const compiler::ViewPlan& plan() const { return plan_; }
  // Output columns that are bare group keys: the summary's unique key.
  const std::vector<int>& key_outputs() const { return key_outputs_; }

  // Folds one row in with `weight`. Errors name the view and column.
  Status ApplyRow(RowFields row, int64_t weight, store::KvStore& store);

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

  // Number of groups whose state changed since the last Flush.
  size_t touched_groups() const { return groups_.size(); }
  int64_t group_count_delta() const { return group_count_delta_; }

  // Whether Flush records pending sink rows ("p" keys); off while a backfill builds a state
  // whose summary is written whole at its end.
  void set_record_pending(bool on) { record_pending_ = on; }

  // Drops the overlay (after an error or a discarded batch).
  void Reset();

  // Key helpers, exposed for the daemon's pending-row bookkeeping and tests.
  std::string GroupPrefix() const;   // "g" + view_id
  std::string PendingPrefix() const; // "p" + view_id
  std::string ValueCountViewPrefix() const;  // "x" + view_id

 private:
  struct GroupState {
    std::vector<Value> keys;
    int64_t rows = 0;  // weight sum of rows in the group; the group exists while > 0
    std::vector<agg::Accumulator> accumulators;
    // min/max: the current extreme's value-count key ("" when the group has no value) and
    // value, so that only deleting the extreme needs a scan of the value counts.
    std::vector<std::string> extreme_keys;
    std::vector<Value> extremes;
    bool existed_before = false;
  };
  struct ValueCountDelta {
    int64_t delta = 0;
    Value value;
  };

  Result<GroupState*> LoadGroup(const std::string& group_key, std::span<const Value> keys,
                                store::KvStore& store);
  Status DecodeGroup(std::string_view bytes, GroupState* g) const;
  void EncodeGroup(const GroupState& g, std::string* out) const;
  std::string ValueCountPrefix(const std::string& group_key, size_t agg_index) const;
  // The first (min) or last (max) live value count of a group's aggregate: key and value.
  Result<std::optional<std::pair<std::string, Value>>> Extreme(const std::string& group_key,
                                                               size_t agg_index, bool want_max,
                                                               store::KvStore& store) const;
  Status UpdateExtremes(const std::string& group_key, GroupState& g, store::KvStore& store) const;
  Result<std::optional<SinkRow>> ComputeRow(const GroupState& g) const;
  SinkRow DeletionRow(const GroupState& g) const;
  Status Parse(RowFields row);

  uint32_t view_id_;
  compiler::ViewPlan plan_;
  EvalSettings settings_;
  std::vector<agg::AggSpec> specs_;
  std::vector<int> key_outputs_;
  bool keeps_value_counts_ = false;
  std::vector<size_t> value_count_slot_;  // per aggregate: whose value counts it reads

  // Overlay of the current batch.
  std::unordered_map<std::string, GroupState> groups_;
  std::map<std::string, ValueCountDelta> value_counts_;
  std::map<std::string, int64_t> final_counts_;  // value counts after this batch, during Flush
  bool truncated_ = false;
  bool record_pending_ = true;
  int64_t group_count_delta_ = 0;

  // Scratch, reused per row to avoid allocation.
  std::vector<Value> row_values_;
  std::vector<Value> key_values_;
  std::string key_scratch_;
  std::string sort_scratch_;
};

// Row encoding for the row store (row_store.h): per field a flag byte (0 NULL, 1 value), u32 length, bytes.
void EncodeRow(RowFields row, std::string* out);
Status DecodeRow(std::string_view bytes, std::vector<std::optional<std::string>>* out);
void EncodeSinkRow(const SinkRow& row, std::string* out);
Result<SinkRow> DecodeSinkRow(std::string_view bytes);

// Encodes a group key (the GROUP BY values) so that equal keys under GROUP BY's equality
// give equal bytes.
void EncodeGroupKey(std::span<const Value> keys, std::string* out);

}  // namespace tally::engine
