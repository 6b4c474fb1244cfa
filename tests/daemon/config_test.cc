#include "tally/daemon/config.h"

#include <catch2/catch.hpp>

using namespace tally;
using namespace tally::daemon;

namespace {
const char* kMinimal = R"([source]
dsn = "dbname=app"

[[views]]
name = "v"
query = "SELECT g, count(*) FROM t GROUP BY g"
)";
}

TEST_CASE("a minimal config gets DESIGN.md's defaults") {
  auto c = ParseConfig(kMinimal, "/etc/tally/tally.toml");
  REQUIRE(c.ok());
  CHECK(c->slot == "tally");
  CHECK(c->publication == "tally");
  CHECK(c->sink_dsn == "dbname=app");
  CHECK(c->sink_schema == "public");
  CHECK(c->meta_schema == "tally");
  CHECK(c->state_dir == "/etc/tally/tally-state");
  CHECK(c->max_batch_ms.count() == 100);
  CHECK(c->max_batch_changes == 50000);
  CHECK(c->reconcile_every.count() == 3600 * 1000);
  REQUIRE(c->views.size() == 1);
  CHECK(c->views[0].mode == ViewMode::kAuto);
}

TEST_CASE("a misspelled key names the key and its line") {
  std::string text = std::string(kMinimal) + "\n[apply]\nmax_batch_msec = 5\n";
  auto c = ParseConfig(text, "x.toml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().code() == StatusCode::kInvalidArgument);
  CHECK(c.status().message() == "x.toml:9: unknown key 'apply.max_batch_msec'");
}

TEST_CASE("wrong types and missing required keys are errors with lines") {
  auto c = ParseConfig("[source]\ndsn = 5\n", "x.toml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message() == "x.toml:2: key 'source.dsn' must be a string");
  c = ParseConfig("[source]\ndsn = \"x\"\n", "x.toml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("[[views]]") != std::string::npos);
  c = ParseConfig(std::string(kMinimal) + "[[views]]\nquery = \"SELECT 1\"\n", "x.toml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message() == "x.toml:7: missing required key 'views.name'");
}

TEST_CASE("durations") {
  CHECK(ParseDuration("100ms")->count() == 100);
  CHECK(ParseDuration("5s")->count() == 5000);
  CHECK(ParseDuration("2m")->count() == 120000);
  CHECK(ParseDuration("1h")->count() == 3600000);
  CHECK(ParseDuration("7d")->count() == 7LL * 86400000);
  CHECK(ParseDuration("")->count() == 0);
  CHECK_FALSE(ParseDuration("5").ok());
  CHECK_FALSE(ParseDuration("5 s").ok());
  CHECK_FALSE(ParseDuration("-1s").ok());
}
