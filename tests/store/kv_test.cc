#include "tally/store/kv.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

using namespace tally;

namespace {
size_t CountPrefix(store::KvStore& kv, const std::string& prefix) {
  size_t n = 0;
  auto it = kv.NewIterator();
  for (it->Seek(prefix); it->Valid() && it->key().substr(0, prefix.size()) == prefix; it->Next()) {
    ++n;
  }
  return n;
}
}  // namespace

TEST_CASE("DeletePrefixInChunks removes every matching key across chunk boundaries") {
  auto kv = store::NewMemoryStore();
  store::KvBatch b;
  for (uint64_t i = 0; i < 25003; ++i) {
    std::string key = "s";
    store::AppendU64(i, &key);
    b.Put(key, i % 3 == 0 ? "drop" : "keep");
  }
  b.Put("t", "other prefix");
  REQUIRE(kv->Write(b, true).ok());
  REQUIRE(store::DeletePrefixInChunks(*kv, "s", [](std::string_view, std::string_view v) {
            return v == "drop";
          }).ok());
  CHECK(CountPrefix(*kv, "s") == 25003 - 8335);
  REQUIRE(store::DeletePrefixInChunks(*kv, "s").ok());
  CHECK(CountPrefix(*kv, "s") == 0);
  CHECK(kv->Get("t")->has_value());
}

TEST_CASE("a batch writes the last value of a key it writes twice") {
  for (bool rocks : {false, true}) {
    std::unique_ptr<store::KvStore> kv;
    std::string dir;
    if (rocks) {
      char tmpl[] = "/tmp/tally-kv-test.XXXXXX";
      dir = mkdtemp(tmpl);
      auto opened = store::OpenRocksDb(dir);
      REQUIRE(opened.ok());
      kv = std::move(opened).value();
    } else {
      kv = store::NewMemoryStore();
    }
    store::KvBatch b;
    b.Put("b", "1");
    b.Put("a", "x");
    b.Delete("b");
    b.Put("c", "1");
    b.Put("c", "2");
    REQUIRE(kv->Write(b, true).ok());
    CHECK_FALSE(kv->Get("b")->has_value());
    CHECK(kv->Get("c")->value() == "2");
    CHECK(kv->Get("a")->value() == "x");
    kv.reset();
    if (rocks) std::system(("rm -rf " + dir).c_str());
  }
}

TEST_CASE("a sealed batch finds what it does to a key: the last write, or its deleted ranges") {
  store::KvBatch b;
  b.DeleteRange("m", "n");
  b.Put("b", "1");
  b.Put("a", "0");
  b.Delete("b");
  b.Put("mx", "2");
  b.Put("c", "3");
  b.Put("c", "4");
  b.Seal();
  const std::optional<std::optional<std::string_view>> deleted(std::in_place, std::nullopt);
  CHECK(b.Find("a") == std::optional<std::optional<std::string_view>>("0"));
  CHECK(b.Find("b") == deleted);
  CHECK(b.Find("c") == std::optional<std::optional<std::string_view>>("4"));
  CHECK(b.Find("mx") == std::optional<std::optional<std::string_view>>("2"));
  CHECK(b.Find("ma") == deleted);
  CHECK_FALSE(b.Find("d").has_value());
  CHECK_FALSE(b.Find("n").has_value());
  std::vector<std::string> keys;
  for (uint32_t i : b.order()) keys.emplace_back(b.op(i).key);
  CHECK(keys == std::vector<std::string>{"a", "b", "c", "mx"});
}

TEST_CASE("a batch put in a fresh memtable reads back with the older writes it overrides") {
  char tmpl[] = "/tmp/tally-kv-test.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    auto opened = store::OpenRocksDb(dir);
    REQUIRE(opened.ok());
    auto kv = std::move(opened).value();
    store::KvBatch first;
    for (int i = 0; i < 1000; ++i) first.Put("k" + std::to_string(i), "old");
    REQUIRE(kv->Write(first, true).ok());
    store::KvBatch second;
    second.PreferFreshMemtable();
    for (int i = 0; i < 1000; i += 2) second.Put("k" + std::to_string(i), "new");
    second.Delete("k1");
    REQUIRE(kv->Write(second, true).ok());
    CHECK(kv->Get("k0")->value() == "new");
    CHECK_FALSE(kv->Get("k1")->has_value());
    CHECK(kv->Get("k3")->value() == "old");
    CHECK(CountPrefix(*kv, "k") == 999);
  }
  // And after a reopen (the old memtable went to disk in the background, the new one to the log).
  auto reopened = store::OpenRocksDb(dir);
  REQUIRE(reopened.ok());
  CHECK((*reopened)->Get("k998")->value() == "new");
  CHECK((*reopened)->Get("k999")->value() == "old");
  CHECK_FALSE((*reopened)->Get("k1")->has_value());
  reopened->reset();
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a batch's order is its keys' byte order, one write per key, the last one") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 20; ++round) {
    store::KvBatch b;
    std::vector<std::string> keys;
    const int n = 1 + static_cast<int>(rng() % 3000);
    for (int i = 0; i < n; ++i) {
      // Shared prefixes, zero bytes and lengths around the 8- and 16-byte heads.
      static const std::string kPrefix("r\0\0\0\1\1\0\0", 8);
      std::string key = rng() % 4 == 0 ? std::string() : kPrefix.substr(0, rng() % 9);
      const size_t extra = rng() % 24;
      for (size_t j = 0; j < extra; ++j)
        key.push_back(static_cast<char>(rng() % 3 == 0 ? 0 : rng() % 256));
      if (!keys.empty() && rng() % 5 == 0) key = keys[rng() % keys.size()];  // written again
      keys.push_back(key);
      if (rng() % 4 == 0) {
        b.Delete(key);
      } else {
        b.Put(key, std::to_string(i));
      }
    }
    std::vector<uint32_t> expected(keys.size());
    for (uint32_t i = 0; i < expected.size(); ++i) expected[i] = i;
    std::stable_sort(expected.begin(), expected.end(),
                     [&](uint32_t a, uint32_t c) { return keys[a] < keys[c]; });
    std::vector<uint32_t> last_per_key;
    for (size_t i = 0; i < expected.size(); ++i) {
      if (i + 1 < expected.size() && keys[expected[i + 1]] == keys[expected[i]]) continue;
      last_per_key.push_back(expected[i]);
    }
    REQUIRE(b.ComputeOrder() == last_per_key);
  }
}

TEST_CASE("range deletes between hinted inserts of one key family leave the store whole") {
  char tmpl[] = "/tmp/tally-kv-test.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  {
    auto opened = store::OpenRocksDb(dir);
    REQUIRE(opened.ok());
    auto kv = std::move(opened).value();
    // Keys of one family ("g") under three ids; a range delete drops id 2's keys between
    // sorted batches that insert around them (the memtable's insert hint for "g" is warm).
    auto key = [](uint32_t id, int n) {
      std::string k = "g";
      store::AppendU32(id, &k);
      k += "group" + std::to_string(1000 + n);
      return k;
    };
    std::string prefix2 = "g";
    store::AppendU32(2, &prefix2);
    for (int round = 0; round < 20; ++round) {
      store::KvBatch b;
      for (uint32_t id = 1; id <= 3; ++id) {
        for (int n = round; n < 500; n += 7) b.Put(key(id, n), std::to_string(round));
      }
      REQUIRE(kv->Write(b, false).ok());
      store::KvBatch drop;
      drop.DeleteRange(prefix2, store::PrefixEnd(prefix2));
      drop.Put(key(1, 999), "after");
      drop.Put(key(3, 0), "after");
      REQUIRE(kv->Write(drop, false).ok());
    }
    CHECK(CountPrefix(*kv, prefix2) == 0);
    std::string prefix1 = "g";
    store::AppendU32(1, &prefix1);
    CHECK(CountPrefix(*kv, prefix1) == 501);
    CHECK(kv->Get(key(3, 0))->value() == "after");
    // A range from a longer key would share the keys' hint: refused, by both stores.
    store::KvBatch long_range;
    long_range.DeleteRange(key(1, 0), key(1, 5));
    Status s = kv->Write(long_range, false);
    CHECK_FALSE(s.ok());
    CHECK(s.message().find("deletes a range from a key of") != std::string::npos);
    CHECK_FALSE(store::NewMemoryStore()->Write(long_range, false).ok());
    CHECK(CountPrefix(*kv, prefix1) == 501);
  }
  std::system(("rm -rf " + dir).c_str());
}
