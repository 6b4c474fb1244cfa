#include "tally/engine/view_maintainer.h"

#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "../test_catalog.h"
#include "tally/compiler/catalog.h"
#include "tally/compiler/plan.h"

using namespace tally;
using engine::SinkRow;
using engine::ViewMaintainer;

namespace {

compiler::StaticCatalog Catalog() {
  return testing::TableTCatalog({{"id", pgtype::kInt4, -1, 1, true},
                                 {"g", pgtype::kText, -1, 2, false},
                                 {"x", pgtype::kNumeric, compiler::NumericTypmod(12, 2), 3, false},
                                 {"y", pgtype::kInt4, -1, 4, false}});
}

struct Harness {
  explicit Harness(const std::string& sql) : store(store::NewMemoryStore()) {
    auto plan = compiler::CompileView("v", sql, Catalog());
    INFO(plan.status().ToString());
    REQUIRE(plan.ok());
    collation = std::make_unique<Collation>(Collation::Open("C").value());
    m = std::make_unique<ViewMaintainer>(7, std::move(plan).value(),
                                         engine::EvalSettings{nullptr, collation.get()});
  }

  // Row given as the table's columns (id, g, x, y); the plan reads a projection.
  void Apply(std::vector<std::optional<std::string>> table_row, int64_t weight) {
    std::vector<std::optional<std::string_view>> fields;
    for (int c : m->plan().input_columns) {
      fields.emplace_back(table_row[c] ? std::optional<std::string_view>(*table_row[c])
                                       : std::nullopt);
    }
    Status s = m->ApplyRow(fields, weight, *store);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }

  // Flushes and applies the sink rows to an in-memory "summary" keyed by the key outputs.
  void Flush() {
    store::KvBatch batch;
    std::vector<SinkRow> rows;
    bool rewrite = false;
    Status s = m->Flush(*store, batch, &rows, &rewrite);
    INFO(s.ToString());
    REQUIRE(s.ok());
    REQUIRE(store->Write(batch, true).ok());
    if (rewrite) summary.clear();
    for (const auto& r : rows) {
      std::string key;
      for (int k : m->key_outputs()) key += (r.columns[k] ? *r.columns[k] : "<null>") + "|";
      if (r.is_delete) {
        summary.erase(key);
      } else {
        std::string line;
        for (const auto& c : r.columns) line += (c ? *c : "NULL") + " ";
        summary[key] = line;
      }
    }
  }

  std::unique_ptr<store::KvStore> store;
  std::unique_ptr<Collation> collation;
  std::unique_ptr<ViewMaintainer> m;
  std::map<std::string, std::string> summary;
};

using Row = std::vector<std::optional<std::string>>;

}  // namespace

TEST_CASE("count, sum, avg, min and max follow inserts and deletes") {
  Harness h(
      "SELECT g, count(*) AS n, sum(x) AS s, avg(x) AS a, min(x) AS lo, max(x) AS hi "
      "FROM t GROUP BY g");
  h.Apply(Row{"1", "a", "1.50", "1"}, 1);
  h.Apply(Row{"2", "a", "2.25", "2"}, 1);
  h.Apply(Row{"3", "b", std::nullopt, "3"}, 1);
  h.Flush();
  CHECK(h.summary["a|"] == "a 2 3.75 1.8750000000000000 1.50 2.25 ");
  CHECK(h.summary["b|"] == "b 1 NULL NULL NULL NULL ");
  // Deleting the current max gives the next one; the group keeps existing.
  h.Apply(Row{"2", "a", "2.25", "2"}, -1);
  h.Flush();
  CHECK(h.summary["a|"] == "a 1 1.50 1.50000000000000000000 1.50 1.50 ");
  // The last row of a group leaves: the group disappears.
  h.Apply(Row{"3", "b", std::nullopt, "3"}, -1);
  h.Flush();
  CHECK(h.summary.count("b|") == 0);
  CHECK(h.summary.size() == 1);
}

TEST_CASE("a NULL group key is a group of its own") {
  Harness h("SELECT g, count(*) FROM t GROUP BY g");
  h.Apply(Row{"1", std::nullopt, "1", "1"}, 1);
  h.Apply(Row{"2", std::nullopt, "1", "1"}, 1);
  h.Apply(Row{"3", "", "1", "1"}, 1);
  h.Flush();
  CHECK(h.summary["<null>|"] == "NULL 2 ");
  CHECK(h.summary["|"] == " 1 ");
}

TEST_CASE("count(DISTINCT) after deletes") {
  Harness h("SELECT g, count(DISTINCT y) AS d FROM t GROUP BY g");
  h.Apply(Row{"1", "a", "1", "5"}, 1);
  h.Apply(Row{"2", "a", "1", "5"}, 1);
  h.Apply(Row{"3", "a", "1", "6"}, 1);
  h.Flush();
  CHECK(h.summary["a|"] == "a 2 ");
  h.Apply(Row{"1", "a", "1", "5"}, -1);
  h.Flush();
  CHECK(h.summary["a|"] == "a 2 ");
  h.Apply(Row{"2", "a", "1", "5"}, -1);
  h.Flush();
  CHECK(h.summary["a|"] == "a 1 ");
}

TEST_CASE("a view without GROUP BY has one row, also when empty and after TRUNCATE") {
  Harness h("SELECT count(*) AS n, sum(y) AS s FROM t");
  h.Flush();
  CHECK(h.summary[""] == "0 NULL ");
  h.Apply(Row{"1", "a", "1", "5"}, 1);
  h.Flush();
  CHECK(h.summary[""] == "1 5 ");
  h.m->Truncate();
  h.Flush();
  CHECK(h.summary[""] == "0 NULL ");
}

TEST_CASE("changes within one batch and across batches give the same summary") {
  // Random inserts and deletes; flushing after every change or once must agree, and
  // retracting everything leaves no group.
  std::mt19937 rng(42);
  std::vector<Row> live;
  std::vector<std::pair<Row, int>> changes;
  for (int i = 0; i < 400; ++i) {
    if (!live.empty() && rng() % 3 == 0) {
      size_t k = rng() % live.size();
      changes.emplace_back(live[k], -1);
      live.erase(live.begin() + static_cast<long>(k));
    } else {
      Row r{std::to_string(i), std::string(1, static_cast<char>('a' + rng() % 4)),
            rng() % 5 == 0 ? std::optional<std::string>() : std::to_string(rng() % 100) + ".5",
            std::to_string(rng() % 7)};
      changes.emplace_back(r, 1);
      live.push_back(r);
    }
  }
  const char* sql =
      "SELECT g, count(*) AS n, sum(x), min(x), max(y), count(DISTINCT y) AS d FROM t "
      "WHERE y <> 3 GROUP BY g";
  Harness each(sql), once(sql);
  for (const auto& [row, w] : changes) {
    each.Apply(row, w);
    each.Flush();
    once.Apply(row, w);
  }
  once.Flush();
  CHECK(each.summary == once.summary);
  CHECK(!once.summary.empty());
  for (const auto& row : live) once.Apply(row, -1);
  once.Flush();
  CHECK(once.summary.empty());
}

TEST_CASE("a retraction the state never saw is reported, not ignored") {
  Harness h("SELECT g, count(*) FROM t GROUP BY g");
  h.Apply(Row{"1", "a", "1", "5"}, -1);
  store::KvBatch batch;
  std::vector<SinkRow> rows;
  bool rewrite = false;
  Status s = h.m->Flush(*h.store, batch, &rows, &rewrite);
  CHECK(s.code() == StatusCode::kCorruption);
}

TEST_CASE("min, max and count(DISTINCT) stay exact over value counts split into many runs") {
  // Two groups with up to ~1000 distinct values each, so their value counts span many stored
  // runs; random inserts and deletes (often of the current extremes), flushed at random
  // points, checked against a brute-force multiset after every flush.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  Harness h("SELECT g, min(y) AS lo, max(y) AS hi, count(DISTINCT y) AS d FROM t GROUP BY g");
  // Group states cached across flushes, or evicted after every flush.
  const size_t budget = GENERATE(size_t{0}, size_t{64} << 20);
  INFO("cache budget " << budget);
  h.m->set_cache_budget(std::make_shared<engine::CacheBudget>(budget));
  std::map<std::string, std::multiset<int>> live;  // group -> values
  std::vector<std::pair<std::string, int>> rows;   // live rows: group, value
  auto row = [](const std::string& g, int y) { return Row{"1", g, "1", std::to_string(y)}; };
  size_t max_runs = 0;
  for (int step = 0; step < 6000; ++step) {
    const bool remove = !rows.empty() && rng() % 100 < (step < 3000 ? 30 : 70);
    if (remove) {
      size_t k = rng() % rows.size();
      auto& group = live[rows[k].first];
      if (rng() % 4 == 0) {  // delete a current extreme
        int extreme = rng() % 2 ? *group.begin() : *group.rbegin();
        for (size_t j = 0; j < rows.size(); ++j) {
          if (rows[j].first == rows[k].first && rows[j].second == extreme) k = j;
        }
      }
      h.Apply(row(rows[k].first, rows[k].second), -1);
      group.erase(group.find(rows[k].second));
      rows.erase(rows.begin() + static_cast<long>(k));
    } else {
      std::string g = rng() % 2 ? "a" : "b";
      int y = static_cast<int>(rng() % 1000) - 500;
      h.Apply(row(g, y), 1);
      live[g].insert(y);
      rows.emplace_back(g, y);
    }
    if (rng() % 40 != 0) continue;
    h.Flush();
    std::map<std::string, std::string> expected;
    for (const auto& [g, values] : live) {
      if (values.empty()) continue;
      std::set<int> distinct(values.begin(), values.end());
      expected[g + "|"] = g + " " + std::to_string(*values.begin()) + " " +
                          std::to_string(*values.rbegin()) + " " + std::to_string(distinct.size()) +
                          " ";
    }
    REQUIRE(h.summary == expected);
    size_t runs = 0;
    auto it = h.store->NewIterator();
    for (it->Seek("x"); it->Valid() && it->key()[0] == 'x'; it->Next()) ++runs;
    max_runs = std::max(max_runs, runs);
  }
  CHECK(max_runs > 10);  // the values really were spread over many runs
  if (budget == 0) CHECK(h.m->cache_bytes() == 0);
  for (const auto& [g, y] : rows) h.Apply(row(g, y), -1);
  h.Flush();
  CHECK(h.summary.empty());
  auto it = h.store->NewIterator();
  it->Seek("x");
  CHECK(!(it->Valid() && it->key()[0] == 'x'));  // emptied runs are deleted
}

TEST_CASE("an update applied as one gives the summary of its delete and insert") {
  // Random updates (some leave the group, some change nothing a view reads) through
  // ApplyUpdate in one maintainer and as ApplyRow(-1) then ApplyRow(+1) in another.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  const char* sql =
      "SELECT g, count(*) AS n, sum(x) AS sx, min(x) AS lo, max(y) AS hi, "
      "count(DISTINCT y) AS dy, count(*) FILTER (WHERE y > 3) AS big FROM t WHERE y <> 6 "
      "GROUP BY g";
  Harness as_one(sql), as_two(sql);
  std::vector<Row> live;
  auto random_row = [&](int id) {
    return Row{std::to_string(id), std::string(1, static_cast<char>('a' + rng() % 3)),
               rng() % 6 == 0 ? std::optional<std::string>() : std::to_string(rng() % 20) + ".5",
               std::to_string(rng() % 8)};
  };
  for (int i = 0; i < 300; ++i) {
    live.push_back(random_row(i));
    as_one.Apply(live.back(), 1);
    as_two.Apply(live.back(), 1);
  }
  as_one.Flush();
  as_two.Flush();
  for (int step = 0; step < 3000; ++step) {
    Row& old_row = live[rng() % live.size()];
    Row new_row = old_row;
    switch (rng() % 4) {
      case 0:
        new_row = random_row(std::stoi(*old_row[0]));
        break;
      case 1:
        new_row[2] = std::to_string(rng() % 20) + ".5";
        break;  // x only
      case 2:
        new_row[3] = std::to_string(rng() % 8);
        break;  // y only
      default:
        break;  // nothing
    }
    auto fields = [&](const Harness& h, const Row& r) {
      std::vector<std::optional<std::string_view>> f;
      for (int c : h.m->plan().input_columns) {
        f.emplace_back(r[c] ? std::optional<std::string_view>(*r[c]) : std::nullopt);
      }
      return f;
    };
    auto o = fields(as_one, old_row), n = fields(as_one, new_row);
    Status s = as_one.m->ApplyUpdate(o, n, *as_one.store);
    INFO(s.ToString());
    REQUIRE(s.ok());
    as_two.Apply(old_row, -1);
    as_two.Apply(new_row, 1);
    old_row = new_row;
    if (rng() % 30 == 0) {
      as_one.Flush();
      as_two.Flush();
      REQUIRE(as_one.summary == as_two.summary);
    }
  }
  as_one.Flush();
  as_two.Flush();
  CHECK(as_one.summary == as_two.summary);
  CHECK(!as_one.summary.empty());
}

TEST_CASE("rows parsed once, read through a column map, give the same summary as text rows") {
  // The daemon parses a table group's row once (here: all four columns of t, in an order of
  // its own) and each view reads its columns through its map.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  const char* sql = "SELECT g, count(*) AS n, sum(x) AS sx, max(y) AS hi FROM t GROUP BY g";
  Harness text(sql), parsed(sql);
  // The group's row: (y, x, g, id); the plan reads its input columns in its own order.
  const std::vector<int> group_of_table = {3, 2, 1, 0};  // table column -> group position
  std::vector<int> map;
  for (int c : parsed.m->plan().input_columns) map.push_back(group_of_table[c]);
  const Oid types[] = {pgtype::kInt4, pgtype::kText, pgtype::kNumeric, pgtype::kInt4};
  auto group_row = [&](const Row& r) {
    std::vector<Value> out(4);
    for (int c = 0; c < 4; ++c) {
      out[group_of_table[c]] =
          r[c] ? Value::ParseText(types[c], *r[c]).value() : Value::Null(types[c]);
    }
    return out;
  };
  std::vector<Row> live;
  for (int step = 0; step < 2000; ++step) {
    Row r{std::to_string(step), std::string(1, static_cast<char>('a' + rng() % 3)),
          rng() % 5 == 0 ? std::optional<std::string>() : std::to_string(rng() % 50) + ".25",
          std::to_string(rng() % 9)};
    if (!live.empty() && rng() % 3 == 0) {
      Row& old_row = live[rng() % live.size()];
      r[0] = old_row[0];
      REQUIRE(
          parsed.m->ApplyUpdateValues(group_row(old_row), group_row(r), map, *parsed.store).ok());
      text.Apply(old_row, -1);
      text.Apply(r, 1);
      old_row = r;
    } else {
      REQUIRE(parsed.m->ApplyValues(group_row(r), map, 1, *parsed.store).ok());
      text.Apply(r, 1);
      live.push_back(r);
    }
    if (rng() % 50 == 0) {
      text.Flush();
      parsed.Flush();
      REQUIRE(text.summary == parsed.summary);
    }
  }
  text.Flush();
  parsed.Flush();
  CHECK(text.summary == parsed.summary);
  CHECK(!text.summary.empty());
}

TEST_CASE("min, max and count(DISTINCT) stay exact over values whose first 8 bytes are equal") {
  // A run's lookup compares 8-byte sort-key heads first; here most values share theirs (a
  // long common prefix, and prefixes of it), so the full sort keys decide, in runs that split
  // and empty, with the extremes deleted often.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  Harness h("SELECT y, min(g) AS lo, max(g) AS hi, count(DISTINCT g) AS d FROM t GROUP BY y");
  const size_t budget = GENERATE(size_t{0}, size_t{64} << 20);
  INFO("cache budget " << budget);
  h.m->set_cache_budget(std::make_shared<engine::CacheBudget>(budget));
  auto random_value = [&] {
    switch (rng() % 8) {
      case 0:
        return std::string("common-p").substr(0, rng() % 9);  // "" .. "common-p"
      case 1:
        return "common-prefix-" + std::string(rng() % 3, 'z');
      default:
        return "common-prefix-" + std::to_string(rng() % 400);
    }
  };
  std::map<std::string, std::multiset<std::string>> live;  // group -> values
  std::vector<std::pair<std::string, std::string>> rows;   // live rows: group, value
  auto row = [](const std::string& y, const std::string& g) { return Row{"1", g, "1", y}; };
  for (int step = 0; step < 5000; ++step) {
    const bool remove = !rows.empty() && rng() % 100 < (step < 2500 ? 30 : 70);
    if (remove) {
      size_t k = rng() % rows.size();
      auto& group = live[rows[k].first];
      if (rng() % 3 == 0) {  // delete a current extreme
        std::string extreme = rng() % 2 ? *group.begin() : *group.rbegin();
        for (size_t j = 0; j < rows.size(); ++j) {
          if (rows[j].first == rows[k].first && rows[j].second == extreme) k = j;
        }
      }
      h.Apply(row(rows[k].first, rows[k].second), -1);
      group.erase(group.find(rows[k].second));
      rows.erase(rows.begin() + static_cast<long>(k));
    } else {
      std::string y = rng() % 2 ? "1" : "2";
      std::string g = random_value();
      h.Apply(row(y, g), 1);
      live[y].insert(g);
      rows.emplace_back(y, g);
    }
    if (rng() % 40 != 0) continue;
    h.Flush();
    std::map<std::string, std::string> expected;
    for (const auto& [y, values] : live) {
      if (values.empty()) continue;
      std::set<std::string> distinct(values.begin(), values.end());
      expected[y + "|"] = y + " " + *values.begin() + " " + *values.rbegin() + " " +
                          std::to_string(distinct.size()) + " ";
    }
    REQUIRE(h.summary == expected);
  }
  for (const auto& [y, g] : rows) h.Apply(row(y, g), -1);
  h.Flush();
  CHECK(h.summary.empty());
}

TEST_CASE("a settle split over two threads gives the summary and state of one on one thread") {
  // Thousands of groups with value counts (so that a flush's settle splits), random inserts
  // and deletes (often of the current extremes) applied to two maintainers alike, one allowed
  // to split its settles; after every flush both summaries equal a brute-force multiset and
  // both stores hold the same keys and values.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  const char* sql =
      "SELECT y, min(x) AS lo, max(x) AS hi, count(DISTINCT g) AS d FROM t GROUP BY y";
  Harness serial(sql), split(sql);
  // Cached across flushes, or evicted after each (then runs are read back on both threads).
  const size_t budget = GENERATE(size_t{0}, size_t{64} << 20);
  INFO("cache budget " << budget);
  for (Harness* h : {&serial, &split}) {
    h->m->set_cache_budget(std::make_shared<engine::CacheBudget>(budget));
  }
  split.m->set_parallel_settle(true);
  constexpr int kGroups = 3000;
  struct Live {
    std::multiset<int> x;
    std::multiset<std::string> g;
  };
  std::map<int, Live> live;
  std::vector<std::tuple<int, int, std::string>> rows;  // y, x (cents), g
  auto row = [](int y, int x, const std::string& g) {
    return Row{
        "1", g,
        std::to_string(x / 100) + "." + std::to_string(x % 100 / 10) + std::to_string(x % 10),
        std::to_string(y)};
  };
  auto apply = [&](const Row& r, int64_t weight) {
    serial.Apply(r, weight);
    split.Apply(r, weight);
  };
  for (int round = 0; round < 6; ++round) {
    const int changes = 6000 + static_cast<int>(rng() % 6000);
    for (int i = 0; i < changes; ++i) {
      const bool remove = !rows.empty() && rng() % 100 < (round < 3 ? 25 : 60);
      if (remove) {
        size_t k = rng() % rows.size();
        const int y = std::get<0>(rows[k]);
        if (rng() % 4 == 0) {  // delete a current extreme of its group
          const int extreme = rng() % 2 ? *live[y].x.begin() : *live[y].x.rbegin();
          for (size_t j = 0; j < rows.size(); ++j) {
            if (std::get<0>(rows[j]) == y && std::get<1>(rows[j]) == extreme) k = j;
          }
        }
        const auto [ry, rx, rg] = rows[k];
        apply(row(ry, rx, rg), -1);
        live[ry].x.erase(live[ry].x.find(rx));
        live[ry].g.erase(live[ry].g.find(rg));
        rows.erase(rows.begin() + static_cast<long>(k));
      } else {
        const int y = static_cast<int>(rng() % kGroups);
        const int x = static_cast<int>(rng() % 100000);
        const std::string g = "g" + std::to_string(rng() % 50);
        apply(row(y, x, g), 1);
        live[y].x.insert(x);
        live[y].g.insert(g);
        rows.emplace_back(y, x, g);
      }
    }
    serial.Flush();
    split.Flush();
    std::map<std::string, std::string> expected;
    for (const auto& [y, l] : live) {
      if (l.x.empty()) continue;
      std::set<std::string> distinct(l.g.begin(), l.g.end());
      auto money = [](int x) {
        return std::to_string(x / 100) + "." + std::to_string(x % 100 / 10) +
               std::to_string(x % 10);
      };
      expected[std::to_string(y) + "|"] = std::to_string(y) + " " + money(*l.x.begin()) + " " +
                                          money(*l.x.rbegin()) + " " +
                                          std::to_string(distinct.size()) + " ";
    }
    REQUIRE(serial.summary == expected);
    REQUIRE(split.summary == expected);
    auto a = serial.store->NewIterator();
    auto b = split.store->NewIterator();
    a->Seek("");
    b->Seek("");
    size_t keys = 0;
    for (; a->Valid() && b->Valid(); a->Next(), b->Next(), ++keys) {
      REQUIRE(a->key() == b->key());
      REQUIRE(a->value() == b->value());
    }
    CHECK(a->Valid() == b->Valid());
    CHECK(keys > 0);
  }
  CHECK(serial.m->split_settles() == 0);
  CHECK(split.m->split_settles() > 0);  // the split path really ran
}
