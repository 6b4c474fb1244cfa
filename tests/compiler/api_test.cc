// ExtractSelectSql and ListUnsupportedConstructs: the helpers `validate` and `init` use.
#include <catch2/catch.hpp>

#include "tally/compiler/plan.h"

namespace tc = tally::compiler;

TEST_CASE("ExtractSelectSql returns the query of a materialized view", "[compiler]") {
  auto q = tc::ExtractSelectSql(
      "-- header\nCREATE MATERIALIZED VIEW IF NOT EXISTS s.\"My View\" (a, b)\n"
      "  WITH (fillfactor = 70) AS\n  SELECT g, count(*) FROM t GROUP BY g\nWITH DATA;\n"
      "CREATE UNIQUE INDEX ON s.\"My View\" (a);\n");
  REQUIRE(q.ok());
  CHECK(*q == "SELECT g, count(*) FROM t GROUP BY g");

  auto plain = tc::ExtractSelectSql("  SELECT 1 AS \"as\" ;  ");
  REQUIRE(plain.ok());
  CHECK(*plain == "SELECT 1 AS \"as\"");

  auto bad = tc::ExtractSelectSql("SELEC 1");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == tally::StatusCode::kInvalidArgument);
  CHECK(bad.status().message() == "syntax error at or near \"SELEC\" at 1:1");

  auto other = tc::ExtractSelectSql("CREATE TABLE x (a int)");
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().code() == tally::StatusCode::kInvalidArgument);
}

TEST_CASE("ListUnsupportedConstructs lists every construct in text order", "[compiler]") {
  auto list = tc::ListUnsupportedConstructs(
      "SELECT a.g, count(DISTINCT a.x), rank() OVER ()\n"
      "FROM a JOIN b ON a.id = b.id\n"
      "WHERE a.t > CURRENT_DATE\n"
      "GROUP BY a.g");
  REQUIRE(list.ok());
  std::vector<std::string> got;
  for (const auto& c : *list) got.push_back(c.ToString());
  CHECK(got == std::vector<std::string>{"window function rank() at 1:34", "JOIN at 2:8",
                                        "CURRENT_DATE at 3:13"});

  auto none = tc::ListUnsupportedConstructs("SELECT g, count(*) FROM t GROUP BY g");
  REQUIRE(none.ok());
  CHECK(none->empty());
}
