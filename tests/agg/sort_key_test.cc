#include "tally/agg/sort_key.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../test_util.h"

using namespace tally;
using namespace tally::agg;
using tally::testing::OidOfName;
using tally::testing::ReadTsv;

namespace {

std::string Key(const Value& v, const Collation& c) {
  std::string k;
  AppendSortKey(v, c, &k);
  return k;
}

int Sign(int x) { return x < 0 ? -1 : (x > 0 ? 1 : 0); }

Value RandomOf(Oid t, std::mt19937_64& rng) {
  switch (ReprOf(t)) {
    case Repr::kBool:
      return Value::Bool(rng() % 2);
    case Repr::kInt:
      return Value::Int(t, static_cast<int64_t>(rng()) >> (rng() % 64));
    case Repr::kFloat: {
      if (rng() % 10 == 0) {
        double s[] = {std::nan(""), HUGE_VAL, -HUGE_VAL, 0.0, -0.0};
        return Value::Float(t, s[rng() % 5]);
      }
      uint64_t bits = rng();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      if (t == pgtype::kFloat4) d = static_cast<float>(d);
      return Value::Float(t, d);
    }
    case Repr::kNumeric: {
      int which = static_cast<int>(rng() % 12);
      if (which == 0) return Value::Num(Numeric::NaN());
      if (which == 1) return Value::Num(Numeric::PosInf());
      if (which == 2) return Value::Num(Numeric::NegInf());
      mpz_class u(static_cast<long>(rng() % 2000) - 1000);
      for (int i = static_cast<int>(rng() % 3); i > 0; --i)
        u *= static_cast<unsigned long>(rng() % 100000);
      // Trailing zeros in some values so equal numbers of different scales occur.
      int extra = static_cast<int>(rng() % 3);
      for (int i = 0; i < extra; ++i) u *= 10;
      return Value::Num(Numeric(u, static_cast<int32_t>(rng() % 8) + extra));
    }
    case Repr::kText: {
      static const char* pieces[] = {"a", "b", "B", "é", " ", "ab", "z", "0", "-"};
      std::string s;
      for (size_t i = rng() % 4; i > 0; --i) s += pieces[rng() % 9];
      if (t == pgtype::kBpchar && rng() % 2) s += "  ";
      return Value::Text(t, s);
    }
    case Repr::kDate:
      return Value::Date(static_cast<int32_t>(rng() % 2000000) - 1000000);
    case Repr::kTimestamp:
      return Value::Timestamp(t, static_cast<int64_t>(rng()) >> (rng() % 20));
    case Repr::kInterval:
      return Value::Interv(
          {static_cast<int64_t>(rng() % 200) * 3600000000LL * 12 - 1200 * 3600000000LL,
           static_cast<int32_t>(rng() % 120) - 60, static_cast<int32_t>(rng() % 8) - 4});
  }
  return Value();
}

}  // namespace

TEST_CASE("Sort key order equals Postgres's order for random values of every type") {
  const Oid types[] = {pgtype::kBool,   pgtype::kInt2,   pgtype::kInt4,        pgtype::kInt8,
                       pgtype::kFloat4, pgtype::kFloat8, pgtype::kNumeric,     pgtype::kText,
                       pgtype::kBpchar, pgtype::kDate,   pgtype::kTimestampTz, pgtype::kInterval,
                       pgtype::kUuid};
  std::mt19937_64 rng(21);
  for (const char* coll_name : {"C", "C.UTF-8"}) {
    auto coll = Collation::Open(coll_name);
    if (!coll.ok()) continue;
    for (Oid t : types) {
      INFO(TypeName(t) << " under " << coll_name);
      for (int i = 0; i < 3000; ++i) {
        Value a = RandomOf(t, rng), b = RandomOf(t, rng);
        int cmp = CompareValues(a, b, *coll);
        std::string ka = Key(a, *coll), kb = Key(b, *coll);
        INFO(a.FormatText() << " vs " << b.FormatText());
        CHECK(Sign(ka.compare(kb)) == Sign(cmp));
        CHECK((cmp == 0) == a.GroupEquals(b));
        // Prefix-free: a key followed by anything still compares the same.
        if (cmp != 0) CHECK(Sign((ka + "\xff").compare(kb + std::string(1, '\0'))) == Sign(cmp));
      }
    }
  }
}

TEST_CASE("Equal values of different representation share a key") {
  Collation c;
  CHECK(Key(*Value::ParseText(pgtype::kNumeric, "1.0"), c) ==
        Key(*Value::ParseText(pgtype::kNumeric, "1.000"), c));
  CHECK(Key(*Value::ParseText(pgtype::kNumeric, "-0.00"), c) ==
        Key(*Value::ParseText(pgtype::kNumeric, "0"), c));
  CHECK(Key(Value::Float(pgtype::kFloat8, -0.0), c) == Key(Value::Float(pgtype::kFloat8, 0.0), c));
  CHECK(Key(*Value::ParseText(pgtype::kInterval, "1 mon"), c) ==
        Key(*Value::ParseText(pgtype::kInterval, "30 days"), c));
  CHECK(Key(Value::Text(pgtype::kBpchar, "ab  "), c) == Key(Value::Text(pgtype::kBpchar, "ab"), c));
  CHECK(Key(Value::Text(pgtype::kText, "ab "), c) != Key(Value::Text(pgtype::kText, "ab"), c));
}

TEST_CASE("Sort keys rank values exactly as Postgres 15's ORDER BY does") {
  auto rows = ReadTsv("agg/btree_order.tsv");
  REQUIRE(rows.size() > 250);
  // Rows are grouped by type and sorted by Postgres's dense rank.
  std::string prev_type, prev_key;
  long prev_rank = 0;
  int checked = 0;
  for (const auto& row : rows) {
    REQUIRE(row.size() == 3);
    const std::string& type_name = row[0];
    Oid t = OidOfName(type_name);
    std::string coll_name = type_name == "text COLLATE C.utf8" ? "C.utf8" : "C";
    auto coll = Collation::Open(coll_name);
    if (!coll.ok()) continue;
    auto v = Value::ParseText(t, row[1]);
    INFO(type_name << " [" << row[1] << "]");
    REQUIRE(v.ok());
    std::string key = Key(*v, *coll);
    long rank = std::stol(row[2]);
    if (type_name == prev_type) {
      if (rank == prev_rank) {
        CHECK(key == prev_key);
      } else {
        CHECK(prev_key < key);
      }
      ++checked;
    }
    prev_type = type_name;
    prev_key = key;
    prev_rank = rank;
  }
  CHECK(checked > 250);
}
