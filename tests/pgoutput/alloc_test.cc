// Steady-state decoding must not allocate: count global operator new calls while re-decoding
// the captured stream into a warmed-up Message.
#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "fixture.h"
#include "tally/pgoutput/decoder.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<size_t> g_allocations{0};
}  // namespace

// Replaces the (unaligned) global allocation functions for this test binary only; all of them,
// so that every new/delete pair goes through malloc/free (sanitizers check the pairing).
namespace {
void* CountedAlloc(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::malloc(size == 0 ? 1 : size);
}
}  // namespace

void* operator new(std::size_t size) {
  void* p = CountedAlloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new[](std::size_t size) {
  void* p = CountedAlloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return CountedAlloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return CountedAlloc(size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace tally::pgoutput {
namespace {

TEST_CASE("pgoutput: decoding into a reused Message does not allocate", "[pgoutput]") {
  std::vector<testing::FixtureMessage> fixture = testing::LoadFixture("stream_v2.txt");
  Decoder decoder;
  Message m;
  // Warm up: the vectors grow to the widest relation and tuple once.
  for (const auto& f : fixture) REQUIRE(decoder.Decode(f.bytes, m).ok());

  size_t ok = 0;
  g_allocations = 0;
  g_counting = true;
  for (const auto& f : fixture) {
    if (decoder.Decode(f.bytes, m).ok()) ++ok;
  }
  g_counting = false;
  CHECK(ok == fixture.size());
  CHECK(g_allocations.load() == 0);

  // The counter works: a fresh Message must allocate for its first tuple.
  Message fresh;
  g_allocations = 0;
  g_counting = true;
  Status s = DecodeMessage(fixture.at(2).bytes, false, fresh);
  g_counting = false;
  REQUIRE(s.ok());
  CHECK(g_allocations.load() > 0);
}

}  // namespace
}  // namespace tally::pgoutput
