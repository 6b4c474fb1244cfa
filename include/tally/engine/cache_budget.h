// CacheBudget: one memory limit shared by the engine's caches (the group states of every
// view, the rows of every row store), so the space goes to whichever cache uses it. Each
// cache registers its byte counter; one that flushes while the total is over the limit
// shrinks to its share of three quarters of the limit, in proportion to its size.
// Registering is not thread-safe. The caches may live on different threads (the views' on
// the apply worker's, the row stores' on the stream's): each changes only its own counter,
// and reads the others'.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <vector>

namespace tally::engine {

// One cache's byte count. Its owner's thread is the only writer, so a plain load and store
// (no locked read-modify-write on the hot path) keep it exact; other threads read it.
class CacheBytes {
 public:
  size_t get() const { return v_.load(std::memory_order_relaxed); }
  CacheBytes& operator=(size_t n) {
    v_.store(n, std::memory_order_relaxed);
    return *this;
  }
  CacheBytes& operator+=(size_t n) { return *this = get() + n; }
  CacheBytes& operator-=(size_t n) { return *this = get() - n; }

 private:
  std::atomic<size_t> v_{0};
};

class CacheBudget {
 public:
  explicit CacheBudget(size_t limit) : limit_(limit) {}
  CacheBudget(const CacheBudget&) = delete;
  CacheBudget& operator=(const CacheBudget&) = delete;

  void Register(const CacheBytes* bytes) { counters_.push_back(bytes); }
  void Unregister(const CacheBytes* bytes) {
    counters_.erase(std::remove(counters_.begin(), counters_.end(), bytes), counters_.end());
  }
  size_t limit() const { return limit_; }
  size_t Used() const {
    size_t used = 0;
    for (const CacheBytes* c : counters_) used += c->get();
    return used;
  }
  // What a cache holding `own` bytes should shrink to now: `own` while within the limit.
  size_t TargetFor(size_t own) const {
    const size_t used = Used();
    if (used <= limit_ || used == 0) return own;
    return static_cast<size_t>(static_cast<double>(own) * 0.75 * static_cast<double>(limit_) /
                               static_cast<double>(used));
  }

 private:
  size_t limit_;
  std::vector<const CacheBytes*> counters_;
};

// Shrinks a cache to its budget's target by CLOCK: an entry used since the last look (its
// `recent` set) gets another round; a `dirty` one (not yet written) stays. `map` holds
// entries whose mapped value has `recent` and `dirty`; `*bytes` is the cache's counter;
// `size_of(entry)` what one entry counts in it.
template <class Map, class SizeOf>
void EvictToTarget(const CacheBudget& budget, Map& map, CacheBytes* bytes, SizeOf size_of) {
  const size_t target = budget.TargetFor(bytes->get());
  for (int round = 0; round < 2 && bytes->get() > target; ++round) {
    for (auto it = map.begin(); it != map.end() && bytes->get() > target;) {
      if (it->second.dirty) {
        ++it;
        continue;
      }
      if (it->second.recent) {
        it->second.recent = false;
        ++it;
        continue;
      }
      *bytes -= size_of(*it);
      it = map.erase(it);
    }
  }
}

}  // namespace tally::engine
