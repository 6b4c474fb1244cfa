#include "tally/core/lsn.h"

#include <catch2/catch.hpp>

using tally::Lsn;

TEST_CASE("Lsn prints and parses as pg_lsn does") {
  Lsn lsn((uint64_t{0x16} << 32) | 0xB374D848);
  CHECK(lsn.ToString() == "16/B374D848");
  auto parsed = Lsn::Parse("16/B374D848");
  REQUIRE(parsed.ok());
  CHECK(*parsed == lsn);
  CHECK(Lsn::Parse("0/0")->IsZero());
  CHECK_FALSE(Lsn::Parse("16B374D848").ok());
  CHECK_FALSE(Lsn::Parse("1/").ok());
  CHECK_FALSE(Lsn::Parse("x/1").ok());
}
