#include "datetime.h"

#include <date/tz.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <string>
#include <vector>

using namespace tally::compiler;

namespace {

// The zone's answers asked directly, as datetime.cc did before it remembered the last stretch.
int64_t DirectOffsetAt(const date::time_zone* zone, int64_t utc_usec) {
  auto secs = std::chrono::seconds{dt::FloorDiv(utc_usec + dt::kUnixEpochUsecs, dt::kUsecsPerSec)};
  return zone->get_info(date::sys_seconds{secs}).offset.count();
}

int64_t DirectLocalOffset(const date::time_zone* zone, int64_t local_usec) {
  auto secs =
      std::chrono::seconds{dt::FloorDiv(local_usec + dt::kUnixEpochUsecs, dt::kUsecsPerSec)};
  auto info = zone->get_info(date::local_seconds{secs});
  return info.result == date::local_info::ambiguous ? info.second.offset.count()
                                                    : info.first.offset.count();
}

}  // namespace

TEST_CASE("zone offsets remembered per stretch equal the zone's own answers") {
  // Instants near and far from transitions (DST, a 30-minute DST, a skipped day, none), in
  // runs from one zone and interleaved across zones, so that the remembered stretch is hit,
  // missed and stale; local times in gaps and overlaps included.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  std::vector<const date::time_zone*> zones;
  for (const char* name : {"America/New_York", "Europe/Berlin", "Australia/Lord_Howe",
                           "Pacific/Apia", "Asia/Kolkata", "Etc/UTC"}) {
    zones.push_back(date::locate_zone(name));
  }
  // 2000-01-01 (the Postgres epoch) is 0; a span of about 40 years around it, in microseconds.
  const int64_t span = int64_t{40} * 365 * dt::kUsecsPerDay;
  std::vector<int64_t> transitions;  // UTC instants where some zone's offset changes
  for (const auto* zone : zones) {
    auto t = date::sys_seconds{std::chrono::seconds{946684800 - span / 2 / dt::kUsecsPerSec}};
    const auto stop = t + std::chrono::seconds{span / dt::kUsecsPerSec};
    while (t < stop) {
      const auto info = zone->get_info(t);
      if (info.end >= stop) break;
      transitions.push_back((info.end.time_since_epoch().count() - 946684800) * dt::kUsecsPerSec);
      t = info.end;
    }
  }
  REQUIRE(transitions.size() > 100);
  size_t checked = 0;
  for (int run = 0; run < 4000; ++run) {
    const auto* zone = zones[rng() % zones.size()];
    const int64_t base = rng() % 2 ? transitions[rng() % transitions.size()]
                                   : static_cast<int64_t>(rng() % span) - span / 2;
    const int steps = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < steps; ++i) {
      // Within hours of the base (crossing the transition when there is one), or days.
      const int64_t reach = rng() % 2 ? 6 * 3600 * dt::kUsecsPerSec : 5 * dt::kUsecsPerDay;
      const int64_t t = base + static_cast<int64_t>(rng() % (2 * reach)) - reach;
      INFO("zone " << zone->name() << ", instant " << t);
      REQUIRE(dt::OffsetAt(zone, t) == DirectOffsetAt(zone, t));
      REQUIRE(dt::LocalOffset(zone, t) == DirectLocalOffset(zone, t));
      checked += 2;
    }
  }
  CHECK(checked > 10000);
  CHECK(dt::OffsetAt(nullptr, 12345) == 0);
  CHECK(dt::LocalOffset(nullptr, 12345) == 0);
}
