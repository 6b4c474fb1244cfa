// The key-value interface the engine keeps its state in, and its RocksDB implementation.
//
// Key layout (DO NOT renumber prefixes; bump kStateFormatVersion when a layout changes):
//   "M" name                          -> meta value (system id, db oid, slot, positions, ...)
//   "V" view_id:u32be                 -> view meta (engine/view_state.h)
//   "g" view_id:u32be group_key       -> group state: key values + accumulators
//   "x" view_id:u32be group_key_len:u32be group_key agg:u8 sort_key -> a run of value counts
//       (value, count varint)... from sort_key up to the next run (engine/view_maintainer)
//   "r" view_id:u32be pk_key          -> the row's input columns (per primary key)
//   "p" view_id:u32be ('c' run:u32be | 'k' group_key) -> pending sink rows (framed)
//   "s" top_xid:u32be seq:u64be       -> a streamed transaction's staged change (never synced)
// Thread safety: a KvStore may be read from several threads; writes come from one.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tally/core/status.h"

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace tally::store {

// 4: value counts stored in runs; 5: runs hold values and varint counts, no sort keys
inline constexpr uint32_t kStateFormatVersion = 5;

class KvIterator {
 public:
  virtual ~KvIterator() = default;
  virtual void Seek(std::string_view key) = 0;
  virtual void SeekForPrev(std::string_view key) = 0;
  virtual bool Valid() const = 0;
  virtual void Next() = 0;
  virtual void Prev() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  virtual Status status() const = 0;
};

// The longest begin key a batch's DeleteRange may have.
inline constexpr size_t kMaxRangeBeginBytes = 5;

// A set of writes applied atomically.
class KvBatch {
 public:
  // Keys and values are copied into one buffer: no allocation per write.
  void Put(std::string_view key, std::string_view value) { Add(key, value, false); }
  void Delete(std::string_view key) { Add(key, {}, true); }
  // `begin` is at most kMaxRangeBeginBytes long (a tag and an id: a whole view's or row
  // store's keys); a store refuses a batch with a longer one (see OpenRocksDb).
  void DeleteRange(std::string_view begin, std::string_view end) {
    ranges_.push_back({std::string(begin), std::string(end)});
  }
  size_t size() const { return ops_.size() + ranges_.size(); }

  // Orders the writes by key, keeping only the last write to each key: RocksDB's memtable
  // inserts ascending keys fastest, and a sealed batch can be searched (Find). No writes
  // after this.
  void Seal();
  bool sealed() const { return sealed_; }
  // What a sealed batch does to `key`: nullopt when it does not touch it; else the value it
  // puts, or nullopt inside when it deletes it.
  std::optional<std::optional<std::string_view>> Find(std::string_view key) const;
  // A sealed batch's surviving writes, in key order.
  const std::vector<uint32_t>& order() const { return order_; }
  // The order Seal would give, for an unsealed batch.
  std::vector<uint32_t> ComputeOrder() const;
  bool empty() const { return ops_.empty() && ranges_.empty(); }
  // Asks the store to put this batch in a fresh in-memory table, the current one going to
  // disk in the background: sorted keys go into an empty RocksDB skip list without searching
  // it. For a large batch nothing else overlaps (the one that ends a catch-up).
  void PreferFreshMemtable() { fresh_memtable_ = true; }
  bool prefers_fresh_memtable() const { return fresh_memtable_; }
  void Clear() {
    ops_.clear();
    data_.clear();
    ranges_.clear();
    order_.clear();
    sealed_ = false;
    fresh_memtable_ = false;
  }

  // One write, as views into the batch (valid while the batch is not written to).
  struct Op {
    std::string_view key, value;
    bool is_delete;
  };
  size_t op_count() const { return ops_.size(); }
  size_t data_bytes() const { return data_.size(); }
  // Room for `ops` writes of `bytes` keys and values in all: a batch built to the size of
  // the previous one grows without copying itself over and over.
  void Reserve(size_t ops, size_t bytes) {
    ops_.reserve(ops);
    data_.reserve(bytes);
  }
  Op op(size_t i) const {
    const Entry& e = ops_[i];
    std::string_view d(data_);
    return {d.substr(e.offset, e.key_size), d.substr(e.offset + e.key_size, e.value_size),
            e.is_delete};
  }
  const std::vector<std::pair<std::string, std::string>>& ranges() const { return ranges_; }

 private:
  struct Entry {
    uint64_t offset;
    uint32_t key_size, value_size;
    bool is_delete;
  };
  void Add(std::string_view key, std::string_view value, bool is_delete) {
    ops_.push_back({data_.size(), static_cast<uint32_t>(key.size()),
                    static_cast<uint32_t>(value.size()), is_delete});
    data_.append(key);
    data_.append(value);
  }

  std::vector<Entry> ops_;
  std::string data_;
  std::vector<std::pair<std::string, std::string>> ranges_;
  std::vector<uint32_t> order_;  // after Seal
  bool sealed_ = false;
  bool fresh_memtable_ = false;
};

class KvStore {
 public:
  virtual ~KvStore() = default;
  virtual Result<std::optional<std::string>> Get(std::string_view key) = 0;
  virtual std::unique_ptr<KvIterator> NewIterator() = 0;
  // Ranges are deleted first, then ops in order. `sync` makes the write durable.
  virtual Status Write(const KvBatch& batch, bool sync) = 0;

  // For a cache that reads ahead: `visit` gets the keys next to `key` (from `key` on, up to
  // `count`, and up to `count` before it) that start with `prefix`, with their values as
  // the store holds them now. Keys a write still in flight may change are left out
  // (PipelinedStore), so the caller must still Get a key it did not see.
  using Visitor = std::function<void(std::string_view key, std::string_view value)>;
  virtual Status ReadNeighbours(std::string_view key, std::string_view prefix, size_t count,
                                const Visitor& visit);
};

// RocksDB in `dir`. Only one process may open it; a second gets FailedPrecondition.
Result<std::unique_ptr<KvStore>> OpenRocksDb(const std::string& dir);
// An in-memory store for unit tests.
std::unique_ptr<KvStore> NewMemoryStore();

// Adds a point delete for every key starting with `prefix`. Preferred to DeleteRange on hot
// paths: RocksDB 7's range tombstones in the memtable slow down every later read.
Status DeletePrefix(KvStore& store, std::string_view prefix, KvBatch* batch);

// Deletes the keys starting with `prefix` for which `should_delete` (null: all) holds, in
// unsynced writes of at most 10,000 keys, so memory stays bounded however many there are.
// Not atomic: for keys whose partial removal is harmless (staged changes, cleared rows).
Status DeletePrefixInChunks(
    KvStore& store, std::string_view prefix,
    const std::function<bool(std::string_view key, std::string_view value)>& should_delete = {});

// Big-endian helpers for keys.
// Inline, appending all bytes at once: the engine's flush calls these for every value it
// writes.
inline void AppendU32(uint32_t v, std::string* out) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}
inline void AppendU64(uint64_t v, std::string* out) {
  AppendU32(static_cast<uint32_t>(v >> 32), out);
  AppendU32(static_cast<uint32_t>(v), out);
}
uint32_t ReadU32(std::string_view s);
uint64_t ReadU64(std::string_view s);
// The 8 bytes of `bytes` from `from` on, big-endian, zero-padded past its end: comparing
// heads orders byte strings as comparing them does, up to ties.
inline uint64_t KeyHead(std::string_view bytes, size_t from = 0) {
  uint64_t h = 0;
  for (size_t i = 0; i < 8; ++i) {
    const size_t at = from + i;
    h = (h << 8) | (at < bytes.size() ? static_cast<uint8_t>(bytes[at]) : 0);
  }
  return h;
}
// The smallest key greater than every key starting with `prefix`.
std::string PrefixEnd(std::string_view prefix);

}  // namespace tally::store
