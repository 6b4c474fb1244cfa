#include "apply_worker.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "../test_catalog.h"
#include "tally/compiler/catalog.h"
#include "tally/compiler/plan.h"

using namespace tally;
using daemon::ApplyWorker;

namespace {

compiler::StaticCatalog Catalog() {
  return testing::TableTCatalog(
      {{"id", pgtype::kInt4, -1, 1, true},
       {"g", pgtype::kText, -1, 2, false},
       {"x", pgtype::kNumeric, compiler::NumericTypmod(12, 2), 3, false}});
}

const Oid kTypes[] = {pgtype::kInt4, pgtype::kText, pgtype::kNumeric};

// One view, its maintainer and its store, and the summary its flushes give.
struct View {
  explicit View(
      const char* query =
          "SELECT g, count(*) AS n, sum(x) AS s, min(x) AS lo, max(x) AS hi FROM t GROUP BY g")
      : store(store::NewMemoryStore()), name("v") {
    auto plan = compiler::CompileView("v", query, Catalog());
    REQUIRE(plan.ok());
    collation = std::make_unique<Collation>(Collation::Open("C").value());
    m = std::make_unique<engine::ViewMaintainer>(7, std::move(plan).value(),
                                                 engine::EvalSettings{nullptr, collation.get()});
    // The plan reads (g, x): columns 1 and 2 of the table's row.
    for (int c : m->plan().input_columns) row_map.push_back(c);
  }
  // An op of this view for a change committing at `lsn`, rows to be set.
  ApplyWorker::Op OpAt(Lsn lsn, int32_t old_row = -1, int32_t new_row = -1) {
    return {m.get(), &row_map, &name, store.get(), lsn, old_row, new_row};
  }
  // The op that settles this view's value counts, as the daemon adds before a flush.
  ApplyWorker::Op SettleOp() { return {m.get(), nullptr, &name, store.get(), Lsn(), -1, -1}; }

  // Flushes into the store and the summary; no Catch assertions, so a worker's task can call it.
  Status TryFlush() {
    store::KvBatch batch;
    std::vector<engine::SinkRow> rows;
    bool rewrite = false;
    TALLY_RETURN_IF_ERROR(m->Flush(*store, batch, &rows, &rewrite));
    TALLY_RETURN_IF_ERROR(store->Write(batch, true));
    for (const auto& r : rows) {
      const std::string key = r.columns[0].value_or("<null>");
      if (r.is_delete) {
        summary.erase(key);
        continue;
      }
      std::string line;
      for (const auto& c : r.columns) line += c.value_or("NULL") + " ";
      summary[key] = line;
    }
    return Status::Ok();
  }
  std::map<std::string, std::string> Flush() {
    Status s = TryFlush();
    INFO(s.ToString());
    REQUIRE(s.ok());
    return summary;
  }

  std::unique_ptr<store::KvStore> store;
  std::unique_ptr<Collation> collation;
  std::unique_ptr<engine::ViewMaintainer> m;
  std::vector<int> row_map;
  std::string name;
  std::map<std::string, std::string> summary;
};

std::vector<Value> Parse(const std::vector<std::string>& text) {
  std::vector<Value> row;
  for (size_t i = 0; i < text.size(); ++i)
    row.push_back(Value::ParseText(kTypes[i], text[i]).value());
  return row;
}

int32_t AddRow(ApplyWorker& w, const std::vector<std::string>& text) {
  std::vector<Value>* row = nullptr;
  const int32_t index = w.AddRow(&row);
  *row = Parse(text);
  return index;
}

const std::vector<std::string> kColumns = {"id", "g", "x"};
const std::vector<Oid> kTypeList(std::begin(kTypes), std::end(kTypes));
const ApplyWorker::TextLayout kLayout{"public.t", &kColumns, &kTypeList};

// The same row as text, for the worker to parse; "NULL" is a NULL.
int32_t AddTextRow(ApplyWorker& w, const std::vector<std::string>& text) {
  std::vector<std::optional<std::string_view>> fields;
  for (const auto& f : text) {
    fields.emplace_back(f == "NULL" ? std::nullopt : std::optional<std::string_view>(f));
  }
  return w.AddTextRow(kLayout, fields);
}

}  // namespace

TEST_CASE("the apply worker gives what applying on the caller's thread gives") {
  const unsigned seed = std::random_device()();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  // A small limit: the value counts also settle between flushes, as they do for big batches.
  const size_t delta_limit = GENERATE(size_t{4} << 20, size_t{2000});
  INFO("value-count delta limit " << delta_limit);
  View direct, via_worker;
  via_worker.m->set_value_count_delta_limit(delta_limit);
  ApplyWorker worker;
  std::map<int, std::vector<std::string>> table;  // id -> (id, g, x)
  uint64_t flush_task = 0;
  std::map<std::string, std::string> flushed_via_worker, expected_at_flush;
  for (int step = 0; step < 20000; ++step) {
    const int id = static_cast<int>(rng() % 300);
    std::vector<std::string> row = {
        std::to_string(id), std::string(1, "abcde"[rng() % 5]),
        std::to_string(rng() % 1000) + "." + std::to_string(10 + rng() % 90)};
    auto old = table.find(id);
    // Parsed here, or as text by the worker.
    auto add = rng() % 2 == 0 ? AddRow : AddTextRow;
    ApplyWorker::Op op = via_worker.OpAt(Lsn(static_cast<uint64_t>(step + 1)));
    Status s;
    if (old == table.end()) {
      op.new_row = add(worker, row);
      s = direct.m->ApplyValues(Parse(row), direct.row_map, 1, *direct.store);
      table[id] = row;
    } else if (rng() % 3 == 0) {
      op.old_row = add(worker, old->second);
      s = direct.m->ApplyValues(Parse(old->second), direct.row_map, -1, *direct.store);
      table.erase(old);
    } else {
      op.old_row = add(worker, old->second);
      op.new_row = add(worker, row);
      s = direct.m->ApplyUpdateValues(Parse(old->second), Parse(row), direct.row_map,
                                      *direct.store);
      old->second = row;
    }
    REQUIRE(s.ok());
    worker.AddOp(op);
    REQUIRE(worker.EndChange().ok());
    if (step % 3000 == 2999) {
      // As the daemon flushes: the worker settles the value counts, then flushes in a task
      // while the changes after it are being added.
      if (flush_task != 0) {
        REQUIRE(worker.WaitForTask(flush_task).ok());
        REQUIRE(flushed_via_worker == expected_at_flush);
      }
      worker.AddOp(via_worker.SettleOp());
      flush_task = worker.AddTask([&] {
        TALLY_RETURN_IF_ERROR(via_worker.TryFlush());
        flushed_via_worker = via_worker.summary;
        return Status::Ok();
      });
      worker.HandOverNow();
      expected_at_flush = direct.Flush();
    }
  }
  REQUIRE(worker.Drain().ok());
  CHECK(worker.TaskDone(flush_task));
  CHECK(flushed_via_worker == expected_at_flush);
  const auto expected = direct.Flush();
  CHECK(via_worker.Flush() == expected);
  CHECK(expected.size() == 5);
}

TEST_CASE("an apply worker error names the view and the transaction, once, and stops it") {
  View v(
      "SELECT g, count(*) AS n, sum(x) AS s, min(x) AS lo, max(x) AS hi FROM t "
      "WHERE 1 / x > 0 GROUP BY g");
  ApplyWorker worker;
  // x = 0: the WHERE clause divides by zero.
  worker.AddOp(v.OpAt(Lsn(0x10), -1, AddRow(worker, {"1", "a", "0.00"})));
  REQUIRE(worker.EndChange().ok());  // not handed over yet
  // Changes after the error are not applied.
  for (int i = 0; i < 2000; ++i) {
    worker.AddOp(v.OpAt(Lsn(0x20), -1, AddRow(worker, {"2", "b", "1.00"})));
    worker.EndChange().IgnoreError();
  }
  Status s = worker.Drain();
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("in transaction committing at 0/10") != std::string::npos);
  CHECK(s.message().find("view v") != std::string::npos);
  CHECK(s.message().find("division by zero") != std::string::npos);
  CHECK(worker.Drain().ok());  // reported once
  v.m->Reset();
  CHECK(v.Flush().empty());
  // It works again after the error was taken.
  worker.AddOp(v.OpAt(Lsn(0x30), -1, AddRow(worker, {"3", "c", "2.50"})));
  REQUIRE(worker.EndChange().ok());
  REQUIRE(worker.Drain().ok());
  CHECK(v.Flush() == std::map<std::string, std::string>{{"c", "c 1 2.50 2.50 2.50 "}});
}

TEST_CASE("a value count gone negative surfaces when the worker settles the view") {
  View v;
  ApplyWorker worker;
  // Deleting a row that was never there.
  worker.AddOp(v.OpAt(Lsn(0x10), AddRow(worker, {"1", "a", "5.00"})));
  REQUIRE(worker.EndChange().ok());
  worker.AddOp(v.SettleOp());
  Status s = worker.Drain();
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("view v") != std::string::npos);
  CHECK(s.message().find("value count went negative") != std::string::npos);
}

TEST_CASE("the apply worker parses text rows, naming the table, column and transaction") {
  View v;
  ApplyWorker worker;
  worker.AddOp(v.OpAt(Lsn(0x10), -1, AddTextRow(worker, {"1", "a", "NULL"})));
  worker.AddOp(v.OpAt(Lsn(0x20), -1, AddTextRow(worker, {"2", "b", "12x"})));
  REQUIRE(worker.EndChange().ok());
  Status s = worker.Drain();
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("table public.t, column x") != std::string::npos);
  CHECK(s.message().find("in transaction committing at 0/20") != std::string::npos);
  v.m->Reset();
  // A NULL field is a NULL.
  worker.AddOp(v.OpAt(Lsn(0x30), -1, AddTextRow(worker, {"1", "a", "NULL"})));
  REQUIRE(worker.Drain().ok());
  CHECK(v.Flush() == std::map<std::string, std::string>{{"a", "a 1 NULL NULL NULL "}});
}

TEST_CASE("apply worker tasks run in order with the ops; after an error they count as done") {
  View v;
  ApplyWorker worker;
  std::vector<std::map<std::string, std::string>> seen;
  worker.AddOp(v.OpAt(Lsn(0x10), -1, AddRow(worker, {"1", "a", "1.00"})));
  const uint64_t first = worker.AddTask([&] {
    TALLY_RETURN_IF_ERROR(v.TryFlush());  // between the two ops: only the first is in
    seen.push_back(v.summary);
    return Status::Ok();
  });
  CHECK(first == 1);
  CHECK_FALSE(worker.TaskDone(first));  // not handed over yet
  worker.AddOp(v.OpAt(Lsn(0x20), -1, AddRow(worker, {"2", "b", "2.00"})));
  REQUIRE(worker.WaitForTask(first).ok());  // hands over what is queued
  CHECK(worker.TaskDone(first));
  REQUIRE(worker.Drain().ok());
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].size() == 1);
  CHECK(seen[0].count("a") == 1);
  CHECK(v.Flush().size() == 2);

  // A failing task stops what follows; a task after the failure is not run but is over.
  const uint64_t failing = worker.AddTask([] { return Status::Internal("flush failed"); });
  worker.AddOp(v.OpAt(Lsn(0x30), -1, AddRow(worker, {"3", "c", "3.00"})));
  bool ran = false;
  const uint64_t skipped = worker.AddTask([&] {
    ran = true;
    return Status::Ok();
  });
  CHECK(skipped == failing + 1);
  Status s = worker.WaitForTask(skipped);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find("flush failed") != std::string::npos);
  CHECK_FALSE(ran);
  CHECK(worker.TaskDone(skipped));
  CHECK_FALSE(worker.Drain().ok());  // the error is still Drain's to take, once
  CHECK(worker.Drain().ok());
  CHECK(v.Flush().count("c") == 0);  // the op after the failing task was not applied
}

TEST_CASE("the apply worker's queue is bounded by the bytes its rows hold") {
  View v;
  ApplyWorker worker;
  // The worker waits in a task until released: whatever comes after queues up.
  std::atomic<bool> release = false;
  worker.AddTask([&] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Status::Ok();
  });
  const std::string wide(100 << 10, 'w');  // 100 kB group key
  constexpr int kRows = 1000;              // 100 MB in all, more than the bound
  std::atomic<int> added = 0;
  std::atomic<bool> failed = false;  // Catch's assertions are for the test's thread only
  std::thread producer([&] {
    for (int i = 0; i < kRows; ++i) {
      worker.AddOp(v.OpAt(Lsn(0x10), -1, AddTextRow(worker, {std::to_string(i), wide, "1.00"})));
      if (!worker.EndChange().ok()) failed.store(true);
      added.store(i + 1);
    }
  });
  // Until the count stops moving: the producer waits for the worker.
  int last = -1;
  while (added.load() != last) {
    last = added.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  const size_t queued = static_cast<size_t>(last) * wide.size();
  INFO("rows added while the worker was held: " << last);
  CHECK(last < kRows);
  CHECK(queued <= ApplyWorker::kMaxQueuedBytes + (size_t{2} << 20));
  CHECK(queued >= ApplyWorker::kMaxQueuedBytes / 2);
  release.store(true);
  producer.join();
  CHECK_FALSE(failed.load());
  REQUIRE(worker.Drain().ok());
  const auto summary = v.Flush();
  REQUIRE(summary.size() == 1);
  CHECK(summary.begin()->second.find(" 1000 1000.00 1.00 1.00 ") != std::string::npos);
}
