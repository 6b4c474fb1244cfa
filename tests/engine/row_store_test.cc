#include "tally/engine/row_store.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "tally/store/pipelined_store.h"

using namespace tally;

namespace {
std::string Row(std::vector<std::optional<std::string_view>> fields) {
  std::string out;
  engine::EncodeRow(fields, &out);
  return out;
}
}  // namespace

TEST_CASE("the row store reads its own writes before and after a flush") {
  auto kv = store::NewMemoryStore();
  engine::RowStore rows(3, {"a", "b"});
  rows.Put("k1", Row({"1", std::nullopt}));
  auto got = rows.Lookup("k1", *kv);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  std::vector<std::optional<std::string>> fields;
  REQUIRE(engine::DecodeRow(**got, &fields).ok());
  CHECK(fields == std::vector<std::optional<std::string>>{"1", std::nullopt});

  store::KvBatch batch;
  REQUIRE(rows.Flush(*kv, batch).ok());
  REQUIRE(kv->Write(batch, true).ok());
  CHECK(rows.Lookup("k1", *kv)->has_value());
  CHECK_FALSE(rows.Lookup("k2", *kv)->has_value());

  rows.Erase("k1");  // deleted in the overlay, still stored until the flush
  CHECK_FALSE(rows.Lookup("k1", *kv)->has_value());
  batch.Clear();
  REQUIRE(rows.Flush(*kv, batch).ok());
  REQUIRE(kv->Write(batch, true).ok());
  CHECK_FALSE(kv->Get(rows.Prefix() + "k1")->has_value());
}

TEST_CASE("TRUNCATE empties the stored rows of one store only") {
  auto kv = store::NewMemoryStore();
  engine::RowStore a(1, {"x"}), b(2, {"x"});
  a.Put("k", Row({"1"}));
  b.Put("k", Row({"2"}));
  store::KvBatch batch;
  REQUIRE(a.Flush(*kv, batch).ok());
  REQUIRE(b.Flush(*kv, batch).ok());
  REQUIRE(kv->Write(batch, true).ok());
  a.Truncate();
  CHECK_FALSE(a.Lookup("k", *kv)->has_value());  // gone at once for readers of the overlay
  a.Put("n", Row({"3"}));
  batch.Clear();
  REQUIRE(a.Flush(*kv, batch).ok());
  REQUIRE(kv->Write(batch, true).ok());
  CHECK_FALSE(kv->Get(a.Prefix() + "k")->has_value());
  CHECK(kv->Get(a.Prefix() + "n")->has_value());
  CHECK(kv->Get(b.Prefix() + "k")->has_value());
}

TEST_CASE("cached rows read the same as stored ones, whatever the cache budget") {
  // The same random puts, erases and truncations, flushed at the same points, into a store
  // with an ample cache and one that keeps nothing: every lookup must agree with a plain map.
  // As in the daemon, a flushed batch often reaches the store only later, while the next
  // changes already look rows up; the row stores let go of it at Release.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto kv_big = store::NewMemoryStore(), kv_none = store::NewMemoryStore();
  engine::RowStore big(1, {"x"}), none(1, {"x"});
  none.set_cache_budget(std::make_shared<engine::CacheBudget>(0));
  // As in the daemon: each flush's batch goes to a pipelined store at once and its rows are
  // released while it may still be in flight (its job sleeps a little), and a small cache
  // makes reads ahead and evictions meet.
  store::PipelinedStore pipe(store::NewMemoryStore());
  engine::RowStore piped(1, {"x"});
  piped.set_cache_budget(std::make_shared<engine::CacheBudget>(6000));
  bool piped_held = false;
  std::map<std::string, std::string> truth;
  std::string looked_up;  // as in the daemon, a put or erase often follows a lookup of its key
  struct Side {
    engine::RowStore* rows;
    store::KvStore* kv;
    std::optional<store::KvBatch> unwritten;
  };
  std::vector<Side> sides = {{&big, kv_big.get(), {}}, {&none, kv_none.get(), {}}};
  auto land = [&] {
    for (Side& side : sides) {
      if (!side.unwritten) continue;
      REQUIRE(side.kv->Write(*side.unwritten, true).ok());
      side.unwritten.reset();
      side.rows->Release();
    }
    if (piped_held) piped.Release();
    piped_held = false;
  };
  int held_lookups = 0;
  for (int step = 0; step < 5000; ++step) {
    std::string pk =
        !looked_up.empty() && rng() % 2 == 0 ? looked_up : "k" + std::to_string(rng() % 300);
    looked_up.clear();
    switch (rng() % 4) {
      case 0:
        if (rng() % 40 == 0) {
          big.Truncate();
          none.Truncate();
          piped.Truncate();
          truth.clear();
          break;
        }
        big.Erase(pk);
        none.Erase(pk);
        piped.Erase(pk);
        truth.erase(pk);
        break;
      case 1: {
        std::string row = Row({std::to_string(step)});
        big.Put(pk, row);
        none.Put(pk, row);
        piped.Put(pk, row);
        truth[pk] = row;
        break;
      }
      default: {
        auto want = truth.count(pk) ? std::optional<std::string_view>(truth[pk]) : std::nullopt;
        REQUIRE(*big.Lookup(pk, *kv_big) == want);
        REQUIRE(*none.Lookup(pk, *kv_none) == want);
        REQUIRE(*piped.Lookup(pk, pipe) == want);
        if (sides[0].unwritten) ++held_lookups;
        looked_up = pk;
      }
    }
    if (rng() % 50 == 0) {
      land();  // the last flush's batch, before the next flush (the daemon waits for it)
      for (Side& side : sides) {
        side.unwritten.emplace();
        REQUIRE(side.rows->Flush(*side.kv, *side.unwritten).ok());
      }
      store::KvBatch batch;
      REQUIRE(piped.Flush(pipe, batch).ok());
      const int sleep_us = static_cast<int>(rng() % 300);
      REQUIRE(pipe.Submit(std::move(batch), true,
                          [sleep_us] {
                            std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
                            return Status::Ok();
                          })
                  .ok());
      piped_held = true;
      if (rng() % 2 == 0) {
        land();
        CHECK(none.cache_bytes() == 0);
      }
    }
  }
  REQUIRE(pipe.Wait().ok());
  CHECK(big.cache_bytes() > 0);
  INFO("rows read ahead: " << piped.read_ahead_rows());
  CHECK(piped.read_ahead_rows() > 200);  // reads ahead ran, with batches in flight and not
  CHECK(held_lookups > 500);             // the window between a flush and its write was exercised
}

namespace {
// A memory store that counts point reads.
class CountingStore : public store::KvStore {
 public:
  Result<std::optional<std::string>> Get(std::string_view key) override {
    ++gets;
    return base_->Get(key);
  }
  std::unique_ptr<store::KvIterator> NewIterator() override { return base_->NewIterator(); }
  Status Write(const store::KvBatch& batch, bool sync) override {
    return base_->Write(batch, sync);
  }
  size_t gets = 0;

 private:
  std::unique_ptr<store::KvStore> base_ = store::NewMemoryStore();
};

std::string Pk(int n) {
  std::string pk;
  store::AppendU32(static_cast<uint32_t>(n), &pk);
  return pk;
}
}  // namespace

TEST_CASE("the row store reads ahead while the rows it changes lie together, not otherwise") {
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  constexpr int kRows = 200000;
  auto fill = [&](CountingStore& kv) {
    engine::RowStore writer(1, {"x"});
    for (int n = 0; n < kRows; ++n) writer.Put(Pk(n), Row({std::to_string(n)}));
    store::KvBatch batch;
    REQUIRE(writer.Flush(kv, batch).ok());
    REQUIRE(kv.Write(batch, true).ok());
  };
  auto check = [&](engine::RowStore& rows, CountingStore& kv, int n) {
    auto got = rows.Lookup(Pk(n), kv);
    REQUIRE(got.ok());
    REQUIRE(*got == std::optional<std::string_view>(Row({std::to_string(n)})));
  };
  constexpr int kLookups = 20000;
  SECTION("runs of rows in random order within each run: a few reads from the store") {
    CountingStore kv;
    fill(kv);
    engine::RowStore rows(1, {"x"});
    for (int done = 0; done < kLookups;) {
      const int start = static_cast<int>(rng() % (kRows - 400));
      std::vector<int> run(400);
      for (int i = 0; i < 400; ++i) run[i] = start + i;
      std::shuffle(run.begin(), run.end(), rng);
      for (int n : run) check(rows, kv, n);
      done += 400;
      rows.Release();
    }
    INFO("point reads: " << kv.gets << ", rows read ahead: " << rows.read_ahead_rows());
    CHECK(kv.gets == 0);
    CHECK(rows.read_ahead_rows() > kLookups / 2);
  }
  SECTION("scattered rows: reads ahead stop after a window, then only probe") {
    CountingStore kv;
    fill(kv);
    engine::RowStore rows(1, {"x"});
    for (int i = 0; i < kLookups; ++i) {
      check(rows, kv, static_cast<int>(rng() % kRows));
      if (i % 400 == 399) rows.Release();
    }
    INFO("point reads: " << kv.gets << ", rows read ahead: " << rows.read_ahead_rows());
    CHECK(rows.read_ahead_rows() < 3 * 4096);
    CHECK(kv.gets > kLookups * 9 / 10);
  }
}
