// NodeMap: a hash map from strings to T for the engine's caches (group states, stored rows),
// where a lookup is mostly cache misses. Entries live in nodes of their own (their addresses
// stay valid until they are erased, as the caches' dirty lists need), found through one
// open-addressing array of (hash, node) slots with linear probing: a lookup reads one slot
// (usually one cache line) and the node, where std::unordered_map reads a bucket, the node
// before the sought one in its list, and then the node.
//
// The subset of std::unordered_map's interface the engine uses; an insert invalidates
// iterators (not nodes), erase(it) returns the iterator to continue a scan with (an entry
// moved back over the erased one by the probing order can be visited again; none is
// skipped). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tally::engine {

template <class T>
class NodeMap {
 public:
  struct value_type {
    std::string first;
    T second;
    uint64_t hash = 0;
  };

  class iterator {
   public:
    iterator() = default;
    value_type& operator*() const { return *map_->slots_[index_].node; }
    value_type* operator->() const { return map_->slots_[index_].node; }
    iterator& operator++() {
      index_ = map_->NextOccupied(index_ + 1);
      return *this;
    }
    bool operator==(const iterator& o) const { return index_ == o.index_; }
    bool operator!=(const iterator& o) const { return index_ != o.index_; }

   private:
    friend class NodeMap;
    iterator(NodeMap* map, size_t index) : map_(map), index_(index) {}
    NodeMap* map_ = nullptr;
    size_t index_ = 0;
  };

  NodeMap() = default;
  NodeMap(const NodeMap&) = delete;
  NodeMap& operator=(const NodeMap&) = delete;
  ~NodeMap() { clear(); }

  static uint64_t Hash(std::string_view key) { return std::hash<std::string_view>()(key); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  iterator begin() { return iterator(this, NextOccupied(0)); }
  iterator end() { return iterator(this, slots_.size()); }

  // Starts loading the slot where the lookup of a key with `hash` begins, so that a find a
  // little later does not wait for it.
  void Prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Home(hash)]);
  }

  iterator find(std::string_view key) { return find(key, Hash(key)); }
  // With the key's Hash, computed before.
  iterator find(std::string_view key, uint64_t hash) {
    if (size_ == 0) return end();
    for (size_t i = Home(hash);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.node == nullptr) return end();
      if (s.hash == hash && s.node->first == key) return iterator(this, i);
    }
  }

  // Inserts a default T under `key` unless one is there.
  std::pair<iterator, bool> try_emplace(std::string_view key) {
    return Insert(key, Hash(key), nullptr);
  }
  std::pair<iterator, bool> emplace(std::string_view key, T value) {
    return Insert(key, Hash(key), &value);
  }
  std::pair<iterator, bool> emplace(std::string_view key, uint64_t hash, T value) {
    return Insert(key, hash, &value);
  }

  iterator erase(iterator it) {
    size_t i = it.index_;
    delete slots_[i].node;
    --size_;
    // Backward-shift deletion: later entries of the probe sequence move up into the hole, so
    // that lookups never stop early at it.
    for (size_t j = (i + 1) & mask_; slots_[j].node != nullptr; j = (j + 1) & mask_) {
      const size_t home = Home(slots_[j].hash);
      // Whether `home` lies cyclically in (i, j]: then the entry at j must stay.
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i] = Slot();
    return slots_[it.index_].node != nullptr ? it : iterator(this, NextOccupied(it.index_));
  }

  void clear() {
    for (Slot& s : slots_) delete s.node;
    slots_.clear();
    mask_ = 0;
    size_ = 0;
  }

  // The slot array's bytes, for memory accounting.
  size_t slot_bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  struct Slot {
    uint64_t hash = 0;
    value_type* node = nullptr;  // nullptr: empty
  };

  size_t Home(uint64_t hash) const {
    // Fibonacci hashing: the multiply spreads every bit of the hash over the index.
    return static_cast<size_t>((hash * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }
  size_t NextOccupied(size_t i) const {
    while (i < slots_.size() && slots_[i].node == nullptr) ++i;
    return i;
  }

  std::pair<iterator, bool> Insert(std::string_view key, uint64_t hash, T* value) {
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow();
    size_t i = Home(hash);
    for (;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.node == nullptr) break;
      if (s.hash == hash && s.node->first == key) return {iterator(this, i), false};
    }
    auto node = std::make_unique<value_type>();
    node->first.assign(key);
    if (value != nullptr) node->second = std::move(*value);
    node->hash = hash;
    slots_[i] = Slot{hash, node.release()};
    ++size_;
    return {iterator(this, i), true};
  }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    const size_t capacity = old.empty() ? 16 : old.size() * 2;
    slots_.assign(capacity, Slot());
    mask_ = capacity - 1;
    shift_ = 64;
    for (size_t c = capacity; c > 1; c >>= 1) --shift_;
    for (const Slot& s : old) {
      if (s.node == nullptr) continue;
      size_t i = Home(s.hash);
      while (slots_[i].node != nullptr) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;  // a power of two in size
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

}  // namespace tally::engine
