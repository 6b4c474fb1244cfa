// CacheBudget: one memory limit shared by the engine's caches (the group states of every
// view, the rows of every row store), so the space goes to whichever cache uses it. Each
// cache registers its byte counter; one that flushes while the total is over the limit
// shrinks to its share of three quarters of the limit, in proportion to its size.
// Not thread-safe (the caches live on the stream's thread).
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace tally::engine {

class CacheBudget {
 public:
  explicit CacheBudget(size_t limit) : limit_(limit) {}
  CacheBudget(const CacheBudget&) = delete;
  CacheBudget& operator=(const CacheBudget&) = delete;

  void Register(const size_t* bytes) { counters_.push_back(bytes); }
  void Unregister(const size_t* bytes) {
    counters_.erase(std::remove(counters_.begin(), counters_.end(), bytes), counters_.end());
  }
  size_t limit() const { return limit_; }
  size_t Used() const {
    size_t used = 0;
    for (const size_t* c : counters_) used += *c;
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
  std::vector<const size_t*> counters_;
};

// Shrinks a cache to its budget's target by CLOCK: an entry used since the last look (its
// `recent` set) gets another round. `map` holds entries whose mapped value has `recent`;
// `*bytes` is the cache's counter; `size_of(entry)` what one entry counts in it.
template <class Map, class SizeOf>
void EvictToTarget(const CacheBudget& budget, Map& map, size_t* bytes, SizeOf size_of) {
  const size_t target = budget.TargetFor(*bytes);
  for (int round = 0; round < 2 && *bytes > target; ++round) {
    for (auto it = map.begin(); it != map.end() && *bytes > target;) {
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
