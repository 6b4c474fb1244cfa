#include "tally/store/pipelined_store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <thread>

using namespace tally;

TEST_CASE("reads see the batch in flight, then the store; writes wait for it") {
  store::PipelinedStore s(store::NewMemoryStore());
  store::KvBatch first;
  first.Put("a", "1");
  first.Put("b", "2");
  REQUIRE(s.Write(first, true).ok());

  std::atomic<bool> release{false}, after_ran{false};
  store::KvBatch second;
  second.Put("a", "10");
  second.Delete("b");
  REQUIRE(s.Submit(std::move(second), true, [&]() -> Status {
             while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
             after_ran = true;
             return Status::Ok();
           }).ok());
  // The job is held in its after-write step: the batch is written, the job is not done.
  CHECK(s.busy());
  CHECK(*s.Get("a") == std::optional<std::string>("10"));
  CHECK(*s.Get("b") == std::optional<std::string>());
  CHECK(*s.Get("c") == std::optional<std::string>());
  release = true;
  REQUIRE(s.Wait().ok());
  CHECK(after_ran.load());
  CHECK(!s.busy());
  CHECK(*s.Get("a") == std::optional<std::string>("10"));
  auto it = s.NewIterator();
  it->Seek("");
  REQUIRE(it->Valid());
  CHECK(it->key() == "a");
  it->Next();
  CHECK(!it->Valid());  // b was deleted
}

TEST_CASE("a failed job's error comes back once, and the next job does not start") {
  store::PipelinedStore s(store::NewMemoryStore());
  store::KvBatch b;
  b.Put("k", "v");
  REQUIRE(s.Submit(std::move(b), false, [] { return Status::IOError("sink gone"); }).ok());
  bool ran = false;
  store::KvBatch next;
  next.Put("n", "1");
  Status st = s.Submit(std::move(next), false, [&] {
    ran = true;
    return Status::Ok();
  });
  CHECK(st.code() == StatusCode::kIOError);
  CHECK(s.Wait().ok());
  CHECK(!ran);
  CHECK(*s.Get("n") == std::optional<std::string>());  // never submitted
}

namespace {
// A store whose writes wait until released: the batch stays in flight, unwritten.
class HeldStore : public store::KvStore {
 public:
  explicit HeldStore(std::atomic<bool>* release) : release_(release) {}
  Result<std::optional<std::string>> Get(std::string_view key) override { return inner_->Get(key); }
  std::unique_ptr<store::KvIterator> NewIterator() override { return inner_->NewIterator(); }
  Status Write(const store::KvBatch& batch, bool sync) override {
    while (!release_->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return inner_->Write(batch, sync);
  }

 private:
  std::atomic<bool>* release_;
  std::unique_ptr<store::KvStore> inner_ = store::NewMemoryStore();
};
}  // namespace

TEST_CASE("while a batch is unwritten, every key reads as the batch leaves it") {
  std::atomic<bool> release{true};
  store::PipelinedStore s(std::make_unique<HeldStore>(&release));
  store::KvBatch base;
  for (int i = 0; i < 20000; ++i) base.Put("k" + std::to_string(i), "old");
  REQUIRE(s.Write(base, true).ok());
  release = false;
  // Every third key rewritten, every seventh deleted, new keys added; the rest untouched (the
  // batch's key filter must send them to the store, and never miss a key the batch holds).
  store::KvBatch batch;
  for (int i = 0; i < 20000; i += 3) batch.Put("k" + std::to_string(i), "new");
  for (int i = 0; i < 20000; i += 7) batch.Delete("k" + std::to_string(i));
  for (int i = 20000; i < 21000; ++i) batch.Put("k" + std::to_string(i), "added");
  REQUIRE(s.Submit(std::move(batch), true, nullptr).ok());
  auto expected = [](int i) -> std::optional<std::string> {
    if (i >= 20000) return "added";
    if (i % 7 == 0) return std::nullopt;
    if (i % 3 == 0) return "new";
    return "old";
  };
  for (int i = 0; i < 22000; ++i) {
    auto got = s.Get("k" + std::to_string(i));
    REQUIRE(got.ok());
    INFO("key k" << i);
    CHECK(*got == (i < 21000 ? expected(i) : std::nullopt));
  }
  CHECK(s.busy());
  release = true;
  REQUIRE(s.Wait().ok());
  for (int i = 0; i < 22000; i += 13) {
    CHECK(*s.Get("k" + std::to_string(i)) == (i < 21000 ? expected(i) : std::nullopt));
  }
}

TEST_CASE("reading neighbours gives the store's keys around a key, leaving out the batch's") {
  store::PipelinedStore s(store::NewMemoryStore());
  store::KvBatch first;
  for (char c = 'a'; c <= 'z'; ++c) first.Put(std::string("r") + c, std::string(1, c));
  first.Put("q", "other prefix");
  first.Put("s", "other prefix");
  REQUIRE(s.Write(first, true).ok());
  auto read = [&](std::string_view key, size_t count) {
    std::map<std::string, std::string> seen;
    REQUIRE(s.ReadNeighbours(key, "r", count, [&](std::string_view k, std::string_view v) {
               CHECK(seen.emplace(std::string(k), std::string(v)).second);  // each key once
             }).ok());
    return seen;
  };
  // From the key on, and as many before it; within the prefix.
  auto around_m = read("rm", 3);
  CHECK(around_m ==
        std::map<std::string, std::string>{
            {"rj", "j"}, {"rk", "k"}, {"rl", "l"}, {"rm", "m"}, {"rn", "n"}, {"ro", "o"}});
  CHECK(read("rb", 3).size() == 4);   // ra, rb, rc, rd
  CHECK(read("rz", 3).size() == 4);   // rw .. rz
  CHECK(read("rm1", 2).size() == 4);  // a key not stored: rl, rm before; rn, ro after

  std::atomic<bool> release{false};
  store::KvBatch second;
  second.Put("rm", "new m");
  second.Delete("rn");
  second.Put("rm1", "new");
  REQUIRE(s.Submit(std::move(second), true, [&]() -> Status {
             while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
             return Status::Ok();
           }).ok());
  // Written or not, the batch's keys are left out; the others read as stored.
  auto while_in_flight = read("rm", 3);
  CHECK(while_in_flight.count("rm") == 0);
  CHECK(while_in_flight.count("rn") == 0);
  CHECK(while_in_flight.count("rm1") == 0);
  CHECK(while_in_flight.at("rl") == "l");
  CHECK(while_in_flight.at("ro") == "o");
  release = true;
  REQUIRE(s.Wait().ok());
  auto after = read("rm", 3);
  CHECK(after ==
        std::map<std::string, std::string>{
            {"rj", "j"}, {"rk", "k"}, {"rl", "l"}, {"rm", "new m"}, {"rm1", "new"}, {"ro", "o"}});
}
