#include "tally/store/pipelined_store.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
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
