// RowStore: the source rows tally keeps per primary key, for REPLICA IDENTITY DEFAULT, where
// the stream carries no old row on UPDATE and only the key on DELETE.
//
// One RowStore serves every view over one table that was backfilled from the same snapshot:
// it holds the union of the columns those views read, once per row. Its key layout is
// "r" store_id:u32be pk_key -> EncodeRow(columns) (store/kv.h). Writes stay in an overlay
// until Flush puts them into the batch, so they become durable with the views' states; rows
// written or read stay cached after that, up to a byte budget (CLOCK eviction).
// The batch may reach the store well after Flush (the apply worker adds the views' part
// first) while the next changes already look rows up: until Release says it is there, the
// rows it holds stay cached (deleted ones as known absent), so no lookup reads the store
// from before it.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/core/status.h"
#include "tally/engine/cache_budget.h"
#include "tally/engine/node_map.h"
#include "tally/engine/view_maintainer.h"
#include "tally/store/kv.h"

namespace tally::engine {

class RowStore {
 public:
  RowStore(uint32_t id, std::vector<std::string> columns) : id_(id), columns_(std::move(columns)) {}
  ~RowStore() { budget_->Unregister(&cache_bytes_); }
  RowStore(const RowStore&) = delete;
  RowStore& operator=(const RowStore&) = delete;

  uint32_t id() const { return id_; }
  // The stored columns, by name, in stored order.
  const std::vector<std::string>& columns() const { return columns_; }
  std::string Prefix() const;

  // The stored row of `pk_key`, if any: a view into this store's cache, valid until the next
  // call that changes or reads this store.
  Result<std::optional<std::string_view>> Lookup(std::string_view pk_key, store::KvStore& store);
  void Put(std::string_view pk_key, std::string_view encoded_row);
  void Erase(std::string_view pk_key);
  // TRUNCATE: every stored row is gone.
  void Truncate();
  // Adds the rows changed since the last flush to `batch`; they stay cached, deleted ones
  // too, until Release.
  Status Flush(store::KvStore& store, store::KvBatch& batch);
  // The last Flush's batch is in the store (or in its in-flight batch, which reads see):
  // deleted rows are forgotten and the cache shrinks to its budget.
  void Release();
  // Drops the overlay and the cache (after an error or a discarded batch).
  void Reset();

  // The memory limit this cache shares with others (by default one of its own, 64 MB).
  void set_cache_budget(std::shared_ptr<CacheBudget> budget) {
    budget_->Unregister(&cache_bytes_);
    budget_ = std::move(budget);
    budget_->Register(&cache_bytes_);
  }
  size_t cache_bytes() const { return cache_bytes_.get(); }
  // Rows cached by reads ahead so far.
  uint64_t read_ahead_rows() const { return read_ahead_rows_; }

 private:
  struct Entry {
    std::optional<std::string> row;  // nullopt: deleted since the last flush
    bool dirty = false;
    bool recent = true;
    // Cached by a read-ahead and not looked up since: that read-ahead's window (1-255), else 0.
    uint8_t read_ahead_window = 0;
  };
  using EntryMap = NodeMap<Entry>;
  EntryMap::value_type* Touch(std::string_view pk_key);
  // Caches the stored rows around `key` (a store key, starting with this store's `prefix`)
  // that are not cached yet; the row of `key` itself, if the store gave it, goes to `*found`.
  Status ReadAhead(std::string_view key, std::string_view prefix, store::KvStore& store,
                   std::optional<std::string>* found);
  static size_t BytesOf(const EntryMap::value_type& e);
  void EvictToBudget();

  uint32_t id_;
  std::vector<std::string> columns_;
  EntryMap entries_;
  std::vector<EntryMap::value_type*> dirty_;
  EntryMap::value_type* last_ = nullptr;  // the entry the last Lookup found (until a flush)
  bool truncated_ = false;
  // Since the last Flush, not yet Released: the rows it deleted, and whether it truncated.
  std::vector<std::string> held_deletes_;
  bool truncate_held_ = false;
  // Read-ahead pays off when the rows a transaction changes lie close together in key order
  // (ranges, recent rows): one seek and a walk replace many point reads. It stays on while
  // at least a quarter of the rows it caches are looked up, counted over windows of
  // kReadAheadWindow rows; when off, every kReadAheadProbe-th read from the store reads
  // ahead, and a quarter of kReadAheadProbeWindow rows looked up turn it on again.
  static constexpr size_t kReadAheadRows = 48;  // on each side of the key
  static constexpr size_t kReadAheadWindow = 4096;
  static constexpr size_t kReadAheadProbe = 1024;
  static constexpr size_t kReadAheadProbeWindow = 4 * 2 * kReadAheadRows;
  bool read_ahead_ = true;
  uint8_t window_ = 1;            // this window's number, 1-255
  size_t read_ahead_cached_ = 0;  // in this window
  size_t read_ahead_used_ = 0;    // rows of this window looked up
  size_t reads_since_probe_ = 0;
  uint64_t read_ahead_rows_ = 0;
  size_t read_ahead_bytes_ = 0;  // cached by reads ahead since the last Release
  CacheBytes cache_bytes_;
  std::shared_ptr<CacheBudget> budget_ = [this] {
    auto b = std::make_shared<CacheBudget>(size_t{64} << 20);
    b->Register(&cache_bytes_);
    return b;
  }();
};

}  // namespace tally::engine
