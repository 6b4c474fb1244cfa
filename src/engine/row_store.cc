#include "tally/engine/row_store.h"

namespace tally::engine {

std::string RowStore::Prefix() const {
  std::string p = "r";
  store::AppendU32(id_, &p);
  return p;
}

size_t RowStore::BytesOf(const EntryMap::value_type& e) {
  // The node and its hash slot, the key's and the row's heap blocks with malloc's headers.
  return sizeof(EntryMap::value_type) + 64 + e.first.size() +
         (e.second.row ? e.second.row->size() + 16 : 0);
}

Result<std::optional<std::string_view>> RowStore::Lookup(std::string_view pk_key,
                                                         store::KvStore& store) {
  using Found = std::optional<std::string_view>;
  auto it = entries_.find(pk_key);
  if (it != entries_.end()) {
    it->second.recent = true;
    if (it->second.read_ahead_window != 0) {
      // Only this window's rows count: rows cached long ago (a table the cache holds whole)
      // say nothing of the pattern now.
      if (it->second.read_ahead_window == window_) ++read_ahead_used_;
      it->second.read_ahead_window = 0;
    }
    last_ = &*it;
    return it->second.row ? Found(*it->second.row) : Found();
  }
  last_ = nullptr;
  if (truncated_ || truncate_held_) return Found();
  const std::string prefix = Prefix();
  std::string key = prefix;
  key.append(pk_key);
  std::optional<std::string> stored;
  // Reads ahead cache rows an eviction drops first; still, between two releases they may add
  // at most an eighth of the budget (within one batch nothing is evicted).
  if ((read_ahead_ || ++reads_since_probe_ >= kReadAheadProbe) &&
      read_ahead_bytes_ < budget_->limit() / 8) {
    reads_since_probe_ = 0;
    TALLY_RETURN_IF_ERROR(ReadAhead(key, prefix, store, &stored));
  }
  // Not seen by a read-ahead (none, or the batch in flight may hold it): a point read.
  if (!stored) {
    TALLY_ASSIGN_OR_RETURN(stored, store.Get(key));
  }
  if (!stored) return Found();
  // Read once, likely changed again: keep it (and answer from the kept copy).
  auto& e = *entries_.emplace(pk_key, Entry{std::move(stored), false, true}).first;
  cache_bytes_ += BytesOf(e);
  last_ = &e;
  return Found(*e.second.row);
}

Status RowStore::ReadAhead(std::string_view key, std::string_view prefix, store::KvStore& store,
                           std::optional<std::string>* found) {
  TALLY_RETURN_IF_ERROR(store.ReadNeighbours(
      key, prefix, kReadAheadRows, [&](std::string_view k, std::string_view row) {
        if (k == key) {
          found->emplace(row);
          return;
        }
        // A cached row is newer than (or as new as) the store's.
        auto [it, inserted] = entries_.try_emplace(k.substr(prefix.size()));
        if (!inserted) return;
        it->second.row.emplace(row);
        it->second.recent = false;  // the first to go unless looked up
        it->second.read_ahead_window = window_;
        cache_bytes_ += BytesOf(*it);
        read_ahead_bytes_ += BytesOf(*it);
        ++read_ahead_cached_;
        ++read_ahead_rows_;
      }));
  if (read_ahead_cached_ >= (read_ahead_ ? kReadAheadWindow : kReadAheadProbeWindow)) {
    read_ahead_ = read_ahead_used_ * 4 >= read_ahead_cached_;
    read_ahead_cached_ = 0;
    read_ahead_used_ = 0;
    window_ = window_ == 255 ? 1 : window_ + 1;
  }
  return Status::Ok();
}

RowStore::EntryMap::value_type* RowStore::Touch(std::string_view pk_key) {
  EntryMap::value_type* e = last_;
  // An UPDATE or DELETE looked its row up just before: no second search.
  if (e == nullptr || e->first != pk_key) {
    auto [it, inserted] = entries_.try_emplace(pk_key);
    e = &*it;
    if (inserted) cache_bytes_ += BytesOf(*e);
  }
  cache_bytes_ -= BytesOf(*e);
  e->second.recent = true;
  if (!e->second.dirty) {
    e->second.dirty = true;
    dirty_.push_back(e);
  }
  return e;
}

void RowStore::Put(std::string_view pk_key, std::string_view encoded_row) {
  auto* e = Touch(pk_key);
  // An updated row reuses its string's buffer when the new one fits.
  if (e->second.row) {
    e->second.row->assign(encoded_row);
  } else {
    e->second.row.emplace(encoded_row);
  }
  cache_bytes_ += BytesOf(*e);
}

void RowStore::Erase(std::string_view pk_key) {
  auto* e = Touch(pk_key);
  e->second.row.reset();
  cache_bytes_ += BytesOf(*e);
}

void RowStore::Truncate() {
  Reset();
  truncated_ = true;
}

void RowStore::Reset() {
  last_ = nullptr;
  entries_.clear();
  dirty_.clear();
  held_deletes_.clear();
  cache_bytes_ = 0;
  read_ahead_bytes_ = 0;
  truncated_ = false;
  truncate_held_ = false;
}

Status RowStore::Flush(store::KvStore& store, store::KvBatch& batch) {
  last_ = nullptr;
  const std::string prefix = Prefix();
  if (truncated_) TALLY_RETURN_IF_ERROR(store::DeletePrefix(store, prefix, &batch));
  std::string key = prefix;
  for (auto* e : dirty_) {
    key.resize(prefix.size());
    key.append(e->first);
    e->second.dirty = false;
    if (e->second.row) {
      batch.Put(key, *e->second.row);
    } else {
      if (!truncated_) batch.Delete(key);
      held_deletes_.push_back(e->first);
    }
  }
  dirty_.clear();
  truncate_held_ = truncate_held_ || truncated_;
  truncated_ = false;
  return Status::Ok();
}

void RowStore::Release() {
  last_ = nullptr;
  // A deleted row is gone from the store now too: no need to remember it (unless it came
  // back since).
  for (const std::string& pk : held_deletes_) {
    auto it = entries_.find(pk);
    if (it == entries_.end() || it->second.row || it->second.dirty) continue;
    cache_bytes_ -= BytesOf(*it);
    entries_.erase(it);
  }
  held_deletes_.clear();
  truncate_held_ = false;
  read_ahead_bytes_ = 0;
  EvictToBudget();
}

void RowStore::EvictToBudget() { EvictToTarget(*budget_, entries_, &cache_bytes_, BytesOf); }

}  // namespace tally::engine
