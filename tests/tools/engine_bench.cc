// engine_bench: the engine's CPU per row change on bench/core's workload and views, without
// PostgreSQL or RocksDB (an in-memory store): a table t (id, k ~10k groups, g ~100 groups,
// amount numeric(12,2), ts timestamptz) loaded with 200k rows, then CHANGES row changes in
// bench_step's mix (40% updates of runs of consecutive rows, 20% deletes of runs, 40%
// inserts), flushed every 50k changes. Prints the thread's CPU seconds for the changes.
// Usage: engine_bench [changes] [seed]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../test_catalog.h"
#include "tally/compiler/catalog.h"
#include "tally/compiler/eval.h"
#include "tally/compiler/plan.h"
#include "tally/engine/row_store.h"
#include "tally/engine/view_maintainer.h"

using namespace tally;

namespace {

double ThreadCpu() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void Check(const Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::exit(1);
  }
}

struct Row {
  int64_t id;
  int k;
  int g;
  int amount_cents;  // < 0: NULL
  int64_t ts_seconds;
};

}  // namespace

int main(int argc, char** argv) {
  const long changes = argc > 1 ? std::atol(argv[1]) : 1000000;
  std::mt19937_64 rng(argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1);
  compiler::StaticCatalog cat = testing::TableTCatalog(
      {{"id", pgtype::kInt8, -1, 1, true},
       {"k", pgtype::kInt4, -1, 2, true},
       {"g", pgtype::kText, -1, 3, true},
       {"amount", pgtype::kNumeric, compiler::NumericTypmod(12, 2), 4, false},
       {"ts", pgtype::kTimestampTz, -1, 5, true}});
  const compiler::TableInfo t = *cat.LookupTable("public", "t");
  const char* queries[] = {
      "SELECT g, count(*) AS n, sum(amount) AS total, avg(amount) AS avg_amount FROM t GROUP BY g",
      "SELECT k, min(amount) AS lo, max(amount) AS hi, count(DISTINCT g) AS distinct_g, "
      "count(*) AS n FROM t GROUP BY k",
      "SELECT date_trunc('day', ts) AS day, count(*) AS n, sum(amount) AS total FROM t "
      "GROUP BY date_trunc('day', ts)"};
  auto zone = compiler::FindTimeZone("UTC");
  Check(zone.status());
  Collation collation = Collation::Open("C").value();
  std::vector<std::unique_ptr<engine::ViewMaintainer>> views;
  std::vector<std::vector<int>> maps;
  for (const char* q : queries) {
    auto plan = compiler::CompileView("v", q, cat);
    Check(plan.status());
    std::vector<int> map;
    for (int c : plan->input_columns) map.push_back(c);
    maps.push_back(map);
    views.push_back(std::make_unique<engine::ViewMaintainer>(
        static_cast<uint32_t>(views.size() + 1), std::move(plan).value(),
        engine::EvalSettings{*zone, &collation}));
  }
  auto store = store::NewMemoryStore();
  engine::RowStore rows_store(1, {"id", "k", "g", "amount", "ts"});
  auto budget = std::make_shared<engine::CacheBudget>(size_t{256} << 20);
  rows_store.set_cache_budget(budget);
  for (auto& v : views) v->set_cache_budget(budget);

  std::map<int64_t, Row> table;
  int64_t next_id = 1;
  auto random_row = [&](int64_t id) {
    Row r{id, static_cast<int>(rng() % 10000), static_cast<int>(rng() % 100),
          rng() % 100 == 0 ? -1 : static_cast<int>(rng() % 100000),
          1704067200 + static_cast<int64_t>(rng() % (60 * 86400))};
    return r;
  };
  std::vector<std::string> text(5);
  auto texts = [&](const Row& r) {
    char buf[64];
    text[0] = std::to_string(r.id);
    text[1] = std::to_string(r.k);
    std::snprintf(buf, sizeof buf, "g%02d", r.g);
    text[2] = buf;
    std::snprintf(buf, sizeof buf, "%d.%02d", r.amount_cents / 100, r.amount_cents % 100);
    text[3] = r.amount_cents < 0 ? "" : buf;
    time_t secs = static_cast<time_t>(r.ts_seconds);
    tm tm_utc;
    gmtime_r(&secs, &tm_utc);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S+00", &tm_utc);
    text[4] = buf;
  };
  std::vector<std::optional<std::string_view>> fields(5);
  std::vector<Value> parsed_old(5), parsed_new(5);
  auto parse = [&](const Row& r, std::vector<Value>* out) {
    texts(r);
    for (size_t i = 0; i < 5; ++i) {
      fields[i] =
          i == 3 && r.amount_cents < 0 ? std::nullopt : std::optional<std::string_view>(text[i]);
      if (!fields[i]) {
        (*out)[i] = Value::Null(t.columns[i].type_oid);
        continue;
      }
      auto v = Value::ParseText(t.columns[i].type_oid, *fields[i]);
      Check(v.status());
      (*out)[i] = std::move(v).value();
    }
  };
  std::string pk, encoded;
  auto pk_of = [&](int64_t id) {
    pk.clear();
    std::string s = std::to_string(id);
    std::optional<std::string_view> f[1] = {s};
    engine::EncodeRow(f, &pk);
  };
  auto flush = [&] {
    store::KvBatch batch;
    std::vector<engine::SinkRow> out;
    bool rewrite = false;
    for (auto& v : views) Check(v->Flush(*store, batch, &out, &rewrite));
    Check(rows_store.Flush(*store, batch));
    Check(store->Write(batch, false));
  };
  auto insert = [&] {
    Row r = random_row(next_id++);
    parse(r, &parsed_new);
    for (size_t v = 0; v < views.size(); ++v) {
      Check(views[v]->ApplyValues(parsed_new, maps[v], 1, *store));
    }
    pk_of(r.id);
    encoded.clear();
    engine::EncodeRow(fields, &encoded);
    rows_store.Put(pk, encoded);
    table[r.id] = r;
  };
  for (int i = 0; i < 200000; ++i) insert();
  flush();

  const double start = ThreadCpu();
  long done = 0, since_flush = 0;
  while (done < changes) {
    const long n = std::min(1000L, changes - done);
    long step = 0;
    auto at = [&] {
      auto it = table.lower_bound(
          table.begin()->first +
          static_cast<int64_t>(
              rng() % static_cast<uint64_t>(table.rbegin()->first - table.begin()->first + 1)));
      return it;
    };
    for (auto it = at(); it != table.end() && step < n * 4 / 10; ++it, ++step) {
      Row& r = it->second;
      pk_of(r.id);
      auto stored = rows_store.Lookup(pk, *store);
      Check(stored.status());
      if (!*stored) Check(Status::Internal("missing row"));
      parse(r, &parsed_old);
      Row nr = r;
      nr.amount_cents = rng() % 100 == 0 ? -1 : static_cast<int>(rng() % 100000);
      if (rng() % 2) nr.g = static_cast<int>(rng() % 100);
      if (rng() % 2) nr.k = static_cast<int>(rng() % 10000);
      if (rng() % 10 < 3) nr.ts_seconds = 1704067200 + static_cast<int64_t>(rng() % (60 * 86400));
      parse(nr, &parsed_new);
      for (size_t v = 0; v < views.size(); ++v) {
        Check(views[v]->ApplyUpdateValues(parsed_old, parsed_new, maps[v], *store));
      }
      encoded.clear();
      engine::EncodeRow(fields, &encoded);
      rows_store.Put(pk, encoded);
      r = nr;
    }
    const long updated = step;
    for (auto it = at(); it != table.end() && step < updated + n * 2 / 10; ++step) {
      pk_of(it->first);
      auto stored = rows_store.Lookup(pk, *store);
      Check(stored.status());
      if (!*stored) Check(Status::Internal("missing row"));
      parse(it->second, &parsed_old);
      for (size_t v = 0; v < views.size(); ++v) {
        Check(views[v]->ApplyValues(parsed_old, maps[v], -1, *store));
      }
      rows_store.Erase(pk);
      it = table.erase(it);
    }
    for (; step < n; ++step) insert();
    done += n;
    since_flush += n;
    if (since_flush >= 50000) {
      flush();
      since_flush = 0;
    }
  }
  flush();
  const double cpu = ThreadCpu() - start;
  std::printf("changes %ld cpu %.3f s (%.0f ns per change) rows %zu\n", changes, cpu,
              cpu * 1e9 / static_cast<double>(changes), table.size());
  return 0;
}
