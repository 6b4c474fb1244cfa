#include "tally/engine/node_map.h"

#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>

using tally::engine::NodeMap;

namespace {

// Every entry of `m` once, as a sorted map, checked against the scan and find().
std::map<std::string, int> Contents(NodeMap<int>& m) {
  std::map<std::string, int> seen;
  for (auto it = m.begin(); it != m.end(); ++it) {
    REQUIRE(seen.emplace(it->first, it->second).second);
    REQUIRE(m.find(it->first) == it);
  }
  REQUIRE(seen.size() == m.size());
  return seen;
}

}  // namespace

TEST_CASE("NodeMap finds, inserts and erases like a std::map, nodes staying put") {
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  NodeMap<int> m;
  std::map<std::string, int> expected;
  std::map<std::string, NodeMap<int>::value_type*> nodes;
  // Few distinct keys at first (many erases of present keys, long probe runs after them),
  // then many (the slot array grows while nodes are held).
  for (int step = 0; step < 60000; ++step) {
    const uint32_t range = step < 20000 ? 300 : 20000;
    const std::string key = "k" + std::to_string(rng() % range);
    switch (rng() % 4) {
      case 0:
      case 1: {
        auto [it, inserted] = m.emplace(key, step);
        REQUIRE(inserted == (expected.count(key) == 0));
        if (inserted) {
          expected[key] = step;
          nodes[key] = &*it;
        }
        REQUIRE(it->first == key);
        REQUIRE(it->second == expected[key]);
        break;
      }
      case 2: {
        auto it = m.find(key);
        REQUIRE((it == m.end()) == (expected.count(key) == 0));
        if (it != m.end()) {
          REQUIRE(&*it == nodes[key]);  // the node the insert made, however often it grew
          m.erase(it);
          expected.erase(key);
          nodes.erase(key);
        }
        break;
      }
      default: {
        auto [it, inserted] = m.try_emplace(key);
        REQUIRE(inserted == (expected.count(key) == 0));
        if (inserted) {
          REQUIRE(it->second == 0);
          expected[key] = 0;
          nodes[key] = &*it;
        }
        break;
      }
    }
    if (step % 5000 == 0) REQUIRE(Contents(m) == expected);
  }
  REQUIRE(Contents(m) == expected);
  for (const auto& [key, node] : nodes) REQUIRE(&*m.find(key) == node);
  m.clear();
  CHECK(m.empty());
  CHECK(m.find("k1") == m.end());
}

TEST_CASE("NodeMap's erase during a scan leaves every other entry findable, none skipped") {
  // The caches evict while scanning: erase(it) returns where to continue.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (int round = 0; round < 50; ++round) {
    NodeMap<int> m;
    std::map<std::string, int> expected;
    const int n = 1 + static_cast<int>(rng() % 3000);
    for (int i = 0; i < n; ++i) {
      m.emplace("key" + std::to_string(i), i);
      expected["key" + std::to_string(i)] = i;
    }
    std::set<std::string> visited;
    for (auto it = m.begin(); it != m.end();) {
      visited.insert(it->first);
      if (rng() % 3 == 0) {
        expected.erase(it->first);
        it = m.erase(it);
      } else {
        ++it;
      }
    }
    // An entry moved back over an erased one may be seen twice, but every one is seen.
    REQUIRE(visited.size() == static_cast<size_t>(n));
    REQUIRE(Contents(m) == expected);
  }
}
