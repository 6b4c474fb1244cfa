#include "tally/store/kv.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/perf_level.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>

namespace tally::store {

uint32_t ReadU32(std::string_view s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}
uint64_t ReadU64(std::string_view s) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<uint8_t>(end.back()) != 0xff) {
      end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(64, '\xff');
}

Status DeletePrefix(KvStore& store, std::string_view prefix, KvBatch* batch) {
  auto it = store.NewIterator();
  for (it->Seek(prefix); it->Valid() && it->key().substr(0, prefix.size()) == prefix; it->Next()) {
    batch->Delete(it->key());
  }
  return it->status();
}

Status KvStore::ReadNeighbours(std::string_view key, std::string_view prefix, size_t count,
                               const Visitor& visit) {
  auto it = NewIterator();
  it->Seek(key);
  for (size_t n = 0; n < count && it->Valid() && it->key().starts_with(prefix); ++n, it->Next()) {
    visit(it->key(), it->value());
  }
  TALLY_RETURN_IF_ERROR(it->status());
  it->SeekForPrev(key);
  if (it->Valid() && it->key() == key) it->Prev();
  for (size_t n = 0; n < count && it->Valid() && it->key().starts_with(prefix); ++n, it->Prev()) {
    visit(it->key(), it->value());
  }
  return it->status();
}

Status DeletePrefixInChunks(
    KvStore& store, std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& should_delete) {
  constexpr int kChunk = 10000;
  std::string from(prefix);
  for (;;) {
    KvBatch batch;
    bool more = false;
    {
      // A fresh iterator per chunk: a live one would pin every memtable written meanwhile.
      auto it = store.NewIterator();
      int visited = 0;
      for (it->Seek(from); it->Valid() && it->key().substr(0, prefix.size()) == prefix;
           it->Next()) {
        if (visited++ == kChunk) {
          more = true;
          from = std::string(it->key());
          break;
        }
        if (!should_delete || should_delete(it->key(), it->value())) batch.Delete(it->key());
      }
      TALLY_RETURN_IF_ERROR(it->status());
    }
    if (!batch.empty()) TALLY_RETURN_IF_ERROR(store.Write(batch, false));
    if (!more) return Status::Ok();
  }
}

namespace {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return Status::FailedPrecondition(std::string(what) +
                                      ": the state directory is in use by another tally process (" +
                                      s.ToString() + ")");
  }
  if (s.IsCorruption()) return Status::Corruption(std::string(what) + ": " + s.ToString());
  return Status::IOError(std::string(what) + ": " + s.ToString());
}

class RocksIterator : public KvIterator {
 public:
  explicit RocksIterator(rocksdb::Iterator* it) : it_(it) {}
  void Seek(std::string_view key) override { it_->Seek(rocksdb::Slice(key.data(), key.size())); }
  void SeekForPrev(std::string_view key) override {
    it_->SeekForPrev(rocksdb::Slice(key.data(), key.size()));
  }
  bool Valid() const override { return it_->Valid(); }
  void Next() override { it_->Next(); }
  void Prev() override { it_->Prev(); }
  std::string_view key() const override { return it_->key().ToStringView(); }
  std::string_view value() const override { return it_->value().ToStringView(); }
  Status status() const override { return FromRocks(it_->status(), "reading state"); }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
};

// An error when one of the batch's ranges begins with a key longer than kMaxRangeBeginBytes;
// both stores refuse such a batch (see KeyFamilyHint).
Status RangeBeginsAllowed(const KvBatch& batch) {
  for (const auto& range : batch.ranges()) {
    if (range.first.size() > kMaxRangeBeginBytes) {
      return Status::Internal("a state write deletes a range from a key of " +
                              std::to_string(range.first.size()) + " bytes (at most " +
                              std::to_string(kMaxRangeBeginBytes) + " allowed)");
    }
  }
  return Status::Ok();
}

class RocksStore : public KvStore {
 public:
  explicit RocksStore(rocksdb::DB* db) : db_(db) {}
  // The memtables go to table files on a clean close: otherwise the next open replays the
  // write-ahead log into memory first (up to the memtables' 192 MB; 0.3-1 s of start-up).
  ~RocksStore() override {
    rocksdb::FlushOptions flush;
    flush.wait = true;
    auto s = db_->Flush(flush);
    if (!s.ok()) spdlog::warn("flushing state at close: {}", s.ToString());
  }
  Result<std::optional<std::string>> Get(std::string_view key) override {
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, "reading state");
    return std::optional<std::string>(std::move(value));
  }
  std::unique_ptr<KvIterator> NewIterator() override {
    return std::make_unique<RocksIterator>(db_->NewIterator(rocksdb::ReadOptions()));
  }
  Status Write(const KvBatch& batch, bool sync) override {
    // Reused per thread: a batch of tens of MB built in fresh memory faults in every page
    // (about 40k page faults per 1M changes on the batch-writing thread).
    TALLY_RETURN_IF_ERROR(RangeBeginsAllowed(batch));
    thread_local rocksdb::WriteBatch wb;
    wb.Clear();
    for (const auto& [b, e] : batch.ranges()) {
      wb.DeleteRange(rocksdb::Slice(b), rocksdb::Slice(e));
    }
    // In key order: the memtable's skip list remembers where the previous insert went, so
    // ascending inserts skip most of the search (tally CPU for 350k changes: 17.3 s -> 11.5 s).
    std::vector<uint32_t> computed;
    if (!batch.sealed()) computed = batch.ComputeOrder();
    for (uint32_t i : batch.sealed() ? batch.order() : computed) {
      const KvBatch::Op op = batch.op(i);
      if (op.is_delete) {
        wb.Delete(rocksdb::Slice(op.key.data(), op.key.size()));
      } else {
        wb.Put(rocksdb::Slice(op.key.data(), op.key.size()),
               rocksdb::Slice(op.value.data(), op.value.size()));
      }
    }
    if (batch.prefers_fresh_memtable()) {
      rocksdb::FlushOptions flush;
      flush.wait = false;
      flush.allow_write_stall = true;
      // Only a hint: when it cannot be taken the batch goes into the current memtable.
      auto s = db_->Flush(flush);
      if (!s.ok()) spdlog::warn("switching memtables: {}", s.ToString());
    }
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    return FromRocks(db_->Write(wo, &wb), "writing state");
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

class MemIterator : public KvIterator {
 public:
  explicit MemIterator(const std::map<std::string, std::string>* m) : m_(m), it_(m->end()) {}
  void Seek(std::string_view key) override { it_ = m_->lower_bound(std::string(key)); }
  void SeekForPrev(std::string_view key) override {
    it_ = m_->upper_bound(std::string(key));
    if (it_ == m_->begin()) {
      it_ = m_->end();
    } else {
      --it_;
    }
  }
  bool Valid() const override { return it_ != m_->end(); }
  void Next() override { ++it_; }
  void Prev() override {
    if (it_ == m_->begin()) {
      it_ = m_->end();
    } else {
      --it_;
    }
  }
  std::string_view key() const override { return it_->first; }
  std::string_view value() const override { return it_->second; }
  Status status() const override { return Status::Ok(); }

 private:
  const std::map<std::string, std::string>* m_;
  std::map<std::string, std::string>::const_iterator it_;
};

class MemStore : public KvStore {
 public:
  // Get and Write may come from two threads (PipelinedStore), as with RocksDB; an iterator
  // must not live across a write.
  Result<std::optional<std::string>> Get(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = m_.find(std::string(key));
    if (it == m_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  std::unique_ptr<KvIterator> NewIterator() override { return std::make_unique<MemIterator>(&m_); }
  // Like Get, may run while another thread writes (PipelinedStore's job): its iterator lives
  // under the lock.
  Status ReadNeighbours(std::string_view key, std::string_view prefix, size_t count,
                        const Visitor& visit) override {
    std::lock_guard lock(mu_);
    return KvStore::ReadNeighbours(key, prefix, count, visit);
  }
  Status Write(const KvBatch& batch, bool) override {
    TALLY_RETURN_IF_ERROR(RangeBeginsAllowed(batch));
    std::lock_guard lock(mu_);
    for (const auto& [b, e] : batch.ranges()) {
      m_.erase(m_.lower_bound(b), m_.lower_bound(e));
    }
    for (size_t i = 0; i < batch.op_count(); ++i) {
      const KvBatch::Op op = batch.op(i);
      if (op.is_delete) {
        m_.erase(std::string(op.key));
      } else {
        m_[std::string(op.key)] = std::string(op.value);
      }
    }
    return Status::Ok();
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> m_;
};

// The memtable's insert hint per key family (the key's first byte). RocksDB 7 keeps one hint
// map per memtable for both its skip lists, the keys' and the range deletions': a range
// deletion given a hint from the keys' list corrupts both (Debian's build asserts in
// InlineSkipList::FindSpliceForLevel). So keys no longer than any range's begin
// (kMaxRangeBeginBytes, which RangeBeginsAllowed enforces) take no hint.
class KeyFamilyHint : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "tally.KeyFamilyHint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return key.size() > kMaxRangeBeginBytes;
  }
};

}  // namespace

Result<std::unique_ptr<KvStore>> OpenRocksDb(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.OptimizeLevelStyleCompaction(64 << 20);
  // Most lookups in a batch miss (new groups, new values): a memtable bloom filter answers
  // those without walking the skip list.
  options.memtable_prefix_bloom_size_ratio = 0.05;
  options.memtable_whole_key_filtering = true;
  options.write_buffer_size = 64 << 20;
  // OptimizeLevelStyleCompaction allows 6 memtables; 3 bound them at 192 MB.
  options.max_write_buffer_number = 3;
  // A batch reaches the memtable sorted (KvBatch::Seal): each insert starts from where the last
  // one of its key family went, not from the skip list's head. Concurrent memtable writes
  // would ignore the hint, and tally has one writer anyway. State writer thread, bench
  // harness: 1.23 -> 1.05 s of CPU per 1M changes.
  options.memtable_insert_with_hint_prefix_extractor = std::make_shared<KeyFamilyHint>();
  options.allow_concurrent_memtable_write = false;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  // Debian's RocksDB is built without SSE4.2, so its crc32c is a table-driven loop; XXH3 block
  // checksums cost a fraction of that on every flush, compaction and block read from disk
  // (files written before keep their crc32c and stay readable).
  table.checksum = rocksdb::kXXH3;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Per-operation perf counters cost a thread-local lookup each; tally does not read them.
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) return FromRocks(s, "opening state directory " + dir);
  return std::unique_ptr<KvStore>(new RocksStore(db));
}

std::unique_ptr<KvStore> NewMemoryStore() { return std::make_unique<MemStore>(); }

void KvBatch::Seal() {
  if (sealed_) return;
  order_ = ComputeOrder();
  sealed_ = true;
}

std::vector<uint32_t> KvBatch::ComputeOrder() const {
  // Sorted by the keys' first 16 bytes held inline, so most comparisons do not touch the
  // batch's buffer (random reads into tens of MB): 4x faster on 250k row-store keys.
  struct Item {
    uint64_t head0, head1;
    uint32_t index;
  };
  std::vector<Item> items(ops_.size());
  for (uint32_t i = 0; i < items.size(); ++i) {
    const std::string_view key = op(i).key;
    items[i] = {KeyHead(key, 0), KeyHead(key, 8), i};
  }
  std::sort(items.begin(), items.end(), [&](const Item& a, const Item& b) {
    if (a.head0 != b.head0) return a.head0 < b.head0;
    if (a.head1 != b.head1) return a.head1 < b.head1;
    const std::string_view ka = op(a.index).key, kb = op(b.index).key;
    if (ka.size() > 16 || kb.size() > 16 || ka.size() != kb.size()) {
      const int c = ka.compare(kb);
      if (c != 0) return c < 0;
    }
    return a.index < b.index;  // writes to one key stay in their order
  });
  std::vector<uint32_t> kept;
  kept.reserve(items.size());
  for (size_t n = 0; n < items.size(); ++n) {
    // Of several writes to one key only the last one matters (it comes last).
    if (n + 1 < items.size() && items[n + 1].head0 == items[n].head0 &&
        items[n + 1].head1 == items[n].head1 &&
        op(items[n + 1].index).key == op(items[n].index).key) {
      continue;
    }
    kept.push_back(items[n].index);
  }
  return kept;
}

std::optional<std::optional<std::string_view>> KvBatch::Find(std::string_view key) const {
  auto it = std::lower_bound(order_.begin(), order_.end(), key,
                             [&](uint32_t i, std::string_view k) { return op(i).key < k; });
  if (it != order_.end() && op(*it).key == key) {
    const Op found = op(*it);
    if (found.is_delete) return std::optional<std::string_view>();
    return std::optional<std::string_view>(found.value);
  }
  for (const auto& [begin, end] : ranges_) {
    if (key >= begin && key < end) return std::optional<std::string_view>();
  }
  return std::nullopt;
}

}  // namespace tally::store
