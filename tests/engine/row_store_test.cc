#include "tally/engine/row_store.h"

#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <random>

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
          truth.clear();
          break;
        }
        big.Erase(pk);
        none.Erase(pk);
        truth.erase(pk);
        break;
      case 1: {
        std::string row = Row({std::to_string(step)});
        big.Put(pk, row);
        none.Put(pk, row);
        truth[pk] = row;
        break;
      }
      default: {
        auto want = truth.count(pk) ? std::optional<std::string_view>(truth[pk]) : std::nullopt;
        REQUIRE(*big.Lookup(pk, *kv_big) == want);
        REQUIRE(*none.Lookup(pk, *kv_none) == want);
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
      if (rng() % 2 == 0) {
        land();
        CHECK(none.cache_bytes() == 0);
      }
    }
  }
  CHECK(big.cache_bytes() > 0);
  CHECK(held_lookups > 500);  // the window between a flush and its write was exercised
}
