#include "tally/agg/aggregate.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "../test_util.h"
#include "tally/agg/codec.h"

using namespace tally;
using namespace tally::agg;
using tally::testing::OidOfName;
using tally::testing::ReadTsv;

namespace {

AggSpec Spec(AggKind kind, Oid type, bool distinct = false) {
  auto s = MakeAggSpec(kind, distinct, type);
  REQUIRE(s.ok());
  return *s;
}

Value Parse(Oid type, const std::string& text) {
  auto v = Value::ParseText(type, text);
  INFO(text);
  REQUIRE(v.ok());
  return *v;
}

std::vector<Value> ParseArray(Oid type, std::string lit) {
  REQUIRE(lit.size() >= 2);
  lit = lit.substr(1, lit.size() - 2);
  std::vector<Value> out;
  size_t start = 0;
  while (true) {
    size_t comma = lit.find(',', start);
    std::string item =
        lit.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    out.push_back(item == "NULL" ? Value::Null(type) : Parse(type, item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string Show(const Result<Value>& r) {
  if (!r.ok()) return "ERROR";
  if (r->is_null()) return "NULL";
  return r->FormatText();
}

// Random values of a type that sum/avg accept, with NULLs and specials.
Value RandomInput(Oid type, std::mt19937_64& rng) {
  if (rng() % 10 == 0) return Value::Null(type);
  switch (type) {
    case pgtype::kInt2:
      return Value::Int(type, static_cast<int64_t>(rng() % 65536) - 32768);
    case pgtype::kInt4:
      return Value::Int(type, static_cast<int32_t>(rng()));
    case pgtype::kInt8:
      return Value::Int(type, static_cast<int64_t>(rng()));
    case pgtype::kNumeric: {
      if (rng() % 20 == 0) {
        const char* specials[] = {"NaN", "Infinity", "-Infinity"};
        return Parse(type, specials[rng() % 3]);
      }
      std::string s = (rng() % 2) ? "-" : "";
      s += std::to_string(rng() % 1000000000);
      int scale = static_cast<int>(rng() % 6);
      if (scale) s += "." + std::to_string(rng() % 100000 + 100000).substr(6 - scale);
      return Parse(type, s);
    }
    case pgtype::kFloat4:
    case pgtype::kFloat8: {
      if (rng() % 20 == 0) {
        double specials[] = {std::nan(""), HUGE_VAL, -HUGE_VAL, -0.0};
        return Value::Float(type, specials[rng() % 4]);
      }
      double d =
          std::ldexp(static_cast<double>(static_cast<int64_t>(rng() >> 11)) / 4503599627370496.0,
                     static_cast<int>(rng() % 120) - 60);
      if (type == pgtype::kFloat4) d = static_cast<float>(d);
      return Value::Float(type, d);
    }
    case pgtype::kInterval: {
      Interval iv;
      iv.months = static_cast<int32_t>(rng() % 1000) - 500;
      iv.days = static_cast<int32_t>(rng() % 1000) - 500;
      iv.micros = static_cast<int64_t>(rng() % 1000000000000) - 500000000000;
      return Value::Interv(iv);
    }
  }
  FAIL("no random input for this type");
  return Value();
}

const Oid kSummable[] = {pgtype::kInt2,   pgtype::kInt4,   pgtype::kInt8,    pgtype::kNumeric,
                         pgtype::kFloat4, pgtype::kFloat8, pgtype::kInterval};

}  // namespace

TEST_CASE("MakeAggSpec gives Postgres's result types") {
  CHECK(Spec(AggKind::kCountStar, pgtype::kInvalid).result_type == pgtype::kInt8);
  CHECK(Spec(AggKind::kCount, pgtype::kText).result_type == pgtype::kInt8);
  CHECK(Spec(AggKind::kCount, pgtype::kText, true).distinct);
  CHECK(Spec(AggKind::kSum, pgtype::kInt2).result_type == pgtype::kInt8);
  CHECK(Spec(AggKind::kSum, pgtype::kInt4).result_type == pgtype::kInt8);
  CHECK(Spec(AggKind::kSum, pgtype::kInt8).result_type == pgtype::kNumeric);
  CHECK(Spec(AggKind::kSum, pgtype::kNumeric).result_type == pgtype::kNumeric);
  CHECK(Spec(AggKind::kSum, pgtype::kFloat4).result_type == pgtype::kFloat4);
  CHECK(Spec(AggKind::kSum, pgtype::kFloat8).result_type == pgtype::kFloat8);
  CHECK(Spec(AggKind::kSum, pgtype::kInterval).result_type == pgtype::kInterval);
  CHECK(Spec(AggKind::kAvg, pgtype::kInt4).result_type == pgtype::kNumeric);
  CHECK(Spec(AggKind::kAvg, pgtype::kInt8).result_type == pgtype::kNumeric);
  CHECK(Spec(AggKind::kAvg, pgtype::kFloat4).result_type == pgtype::kFloat8);
  CHECK(Spec(AggKind::kAvg, pgtype::kInterval).result_type == pgtype::kInterval);
  CHECK(Spec(AggKind::kMin, pgtype::kVarchar).result_type == pgtype::kText);
  CHECK(Spec(AggKind::kMin, pgtype::kName).result_type == pgtype::kText);
  CHECK(Spec(AggKind::kMax, pgtype::kBpchar).result_type == pgtype::kBpchar);
  CHECK(Spec(AggKind::kMax, pgtype::kTimestampTz).result_type == pgtype::kTimestampTz);
  CHECK(Spec(AggKind::kMax, pgtype::kOid).result_type == pgtype::kOid);

  auto sum_text = MakeAggSpec(AggKind::kSum, false, pgtype::kText);
  REQUIRE_FALSE(sum_text.ok());
  CHECK(sum_text.status().code() == StatusCode::kInvalidArgument);
  CHECK(sum_text.status().message() == "function sum(text) does not exist");
  auto min_bool = MakeAggSpec(AggKind::kMin, false, pgtype::kBool);
  REQUIRE_FALSE(min_bool.ok());
  CHECK(min_bool.status().message() == "function min(boolean) does not exist");
  auto sum_distinct = MakeAggSpec(AggKind::kSum, true, pgtype::kInt4);
  REQUIRE_FALSE(sum_distinct.ok());
  CHECK(sum_distinct.status().code() == StatusCode::kNotSupported);
  CHECK(sum_distinct.status().message().find("sum(DISTINCT") != std::string::npos);
  auto min_time = MakeAggSpec(AggKind::kMin, false, pgtype::kTime);
  REQUIRE_FALSE(min_time.ok());
  CHECK(min_time.status().code() == StatusCode::kNotSupported);
  auto sum_user = MakeAggSpec(AggKind::kSum, false, 90001);
  REQUIRE_FALSE(sum_user.ok());
  CHECK(sum_user.status().code() == StatusCode::kNotSupported);
}

TEST_CASE("count, sum and avg match Postgres 15 on the same rows") {
  auto rows = ReadTsv("agg/count_sum_avg.tsv");
  REQUIRE(rows.size() > 90);
  for (const auto& row : rows) {
    REQUIRE(row.size() == 5);
    Oid type = OidOfName(row[0]);
    INFO(row[0] << " " << row[1]);
    std::vector<Value> values = ParseArray(type, row[1]);
    AggSpec count = Spec(AggKind::kCount, type);
    AggSpec sum = Spec(AggKind::kSum, type);
    AggSpec avg = Spec(AggKind::kAvg, type);
    Accumulator a_count, a_sum, a_avg;
    for (const Value& v : values) {
      Apply(count, a_count, v, 1);
      Apply(sum, a_sum, v, 1);
      Apply(avg, a_avg, v, 1);
    }
    CHECK(Show(Finalize(count, a_count)) == row[2]);
    auto got_sum = Finalize(sum, a_sum);
    auto got_avg = Finalize(avg, a_avg);
    if (type == pgtype::kFloat4 || type == pgtype::kFloat8) {
      // Postgres adds floats in scan order; tally rounds the exact sum once. They agree
      // within a few units in the last place of the sum of magnitudes.
      double magnitude = 0;
      for (const Value& v : values) {
        if (!v.is_null() && std::isfinite(v.as_float())) magnitude += std::fabs(v.as_float());
      }
      double tolerance = magnitude * (type == pgtype::kFloat4 ? 1e-6 : 1e-15);
      for (auto [got, want] : {std::pair{&got_sum, row[3]}, std::pair{&got_avg, row[4]}}) {
        if (got == &got_avg && want == "ERROR" && magnitude > 1e154) {
          // Known difference (aggregate.h): Postgres's avg(float) also accumulates the sum
          // of squares and fails when it overflows; tally computes only the sum.
          CHECK(got->ok());
          continue;
        }
        if (want == "NULL" || want == "ERROR" || want == "NaN" || want == "Infinity" ||
            want == "-Infinity") {
          CHECK(Show(*got) == want);
        } else {
          REQUIRE(got->ok());
          CHECK(std::fabs((*got)->as_float() - std::strtod(want.c_str(), nullptr)) <= tolerance);
        }
      }
      if (got_sum.ok() && !got_sum->is_null()) CHECK(got_sum->type() == sum.result_type);
      continue;
    }
    CHECK(Show(got_sum) == row[3]);
    CHECK(Show(got_avg) == row[4]);
    if (got_sum.ok()) CHECK(got_sum->type() == sum.result_type);
    if (got_avg.ok()) CHECK(got_avg->type() == avg.result_type);
  }
}

TEST_CASE("count(*) counts NULL rows, count(x) does not, empty groups give NULL sums") {
  AggSpec star = Spec(AggKind::kCountStar, pgtype::kInvalid);
  AggSpec cnt = Spec(AggKind::kCount, pgtype::kInt4);
  AggSpec sum = Spec(AggKind::kSum, pgtype::kInt4);
  Accumulator a, b, c;
  Value null = Value::Null(pgtype::kInt4);
  Apply(star, a, null, 2);
  Apply(cnt, b, null, 2);
  Apply(sum, c, null, 2);
  CHECK(Finalize(star, a)->as_int() == 2);
  CHECK(Finalize(cnt, b)->as_int() == 0);
  auto s = Finalize(sum, c);
  REQUIRE(s.ok());
  CHECK(s->is_null());
  CHECK(s->type() == pgtype::kInt8);
  Apply(star, a, null, -2);
  CHECK(a.IsEmpty());
}

TEST_CASE("sum(integer) overflowing bigint is an error, as in Postgres") {
  AggSpec sum = Spec(AggKind::kSum, pgtype::kInt4);
  Accumulator acc;
  Apply(sum, acc, Value::Int(pgtype::kInt4, 2147483647), int64_t{1} << 33);
  auto r = Finalize(sum, acc);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "bigint out of range");
}

TEST_CASE("numeric sum keeps the largest scale of the rows still present") {
  AggSpec sum = Spec(AggKind::kSum, pgtype::kNumeric);
  AggSpec avg = Spec(AggKind::kAvg, pgtype::kNumeric);
  Accumulator s, a;
  for (const char* v : {"1.5", "2.125", "3"}) {
    Apply(sum, s, Parse(pgtype::kNumeric, v), 1);
    Apply(avg, a, Parse(pgtype::kNumeric, v), 1);
  }
  CHECK(Finalize(sum, s)->FormatText() == "6.625");
  Apply(sum, s, Parse(pgtype::kNumeric, "2.125"), -1);
  Apply(avg, a, Parse(pgtype::kNumeric, "2.125"), -1);
  CHECK(Finalize(sum, s)->FormatText() == "4.5");
  CHECK(Finalize(avg, a)->FormatText() == "2.2500000000000000");
  Apply(sum, s, Parse(pgtype::kNumeric, "Infinity"), 1);
  CHECK(Finalize(sum, s)->FormatText() == "Infinity");
  Apply(sum, s, Parse(pgtype::kNumeric, "-Infinity"), 1);
  CHECK(Finalize(sum, s)->FormatText() == "NaN");
  Apply(sum, s, Parse(pgtype::kNumeric, "Infinity"), -1);
  Apply(sum, s, Parse(pgtype::kNumeric, "-Infinity"), -1);
  CHECK(Finalize(sum, s)->FormatText() == "4.5");
}

TEST_CASE("Retractions are exact inverses and order does not matter, for every type") {
  std::mt19937_64 rng(42);
  for (Oid type : kSummable) {
    for (AggKind kind : {AggKind::kSum, AggKind::kAvg, AggKind::kCount, AggKind::kCountStar}) {
      AggSpec spec = Spec(kind, kind == AggKind::kCountStar ? pgtype::kInvalid : type);
      INFO("type " << TypeName(type) << " " << AggName(kind));
      for (int round = 0; round < 20; ++round) {
        std::vector<std::pair<Value, int64_t>> changes;
        size_t n = 1 + rng() % 30;
        for (size_t i = 0; i < n; ++i) {
          changes.emplace_back(RandomInput(type, rng), static_cast<int64_t>(rng() % 3) + 1);
        }
        // Order independence.
        Accumulator forward, shuffled;
        for (const auto& [v, w] : changes) Apply(spec, forward, v, w);
        auto order = changes;
        std::shuffle(order.begin(), order.end(), rng);
        // Split some weights into +w+1, -1 pairs to mix retractions in.
        for (const auto& [v, w] : order) {
          Apply(spec, shuffled, v, w + 1);
          Apply(spec, shuffled, v, -1);
        }
        CHECK(forward == shuffled);
        std::string e1, e2;
        EncodeAccumulator(forward, &e1);
        EncodeAccumulator(shuffled, &e2);
        CHECK(e1 == e2);
        // Same final value.
        CHECK(Show(Finalize(spec, forward)) == Show(Finalize(spec, shuffled)));
        // Encode/decode identity.
        Accumulator decoded;
        REQUIRE(DecodeAccumulator(e1, &decoded).ok());
        CHECK(decoded == forward);
        // Retract a random subset: equals the state built from the rest alone.
        Accumulator rest;
        for (size_t i = 0; i < changes.size(); ++i) {
          if (i % 2 == 0) {
            Apply(spec, forward, changes[i].first, -changes[i].second);
          } else {
            Apply(spec, rest, changes[i].first, changes[i].second);
          }
        }
        CHECK(forward == rest);
        CHECK(Show(Finalize(spec, forward)) == Show(Finalize(spec, rest)));
        // Retract everything: back to the empty state.
        for (size_t i = 1; i < changes.size(); i += 2) {
          Apply(spec, forward, changes[i].first, -changes[i].second);
        }
        CHECK(forward.IsEmpty());
      }
    }
  }
}

TEST_CASE("Float sums are exact until the final rounding") {
  AggSpec sum = Spec(AggKind::kSum, pgtype::kFloat8);
  Accumulator acc;
  Apply(sum, acc, Value::Float(pgtype::kFloat8, 1e308), 1);
  Apply(sum, acc, Value::Float(pgtype::kFloat8, 1e-300), 1);
  Apply(sum, acc, Value::Float(pgtype::kFloat8, -1e308), 1);
  CHECK(Finalize(sum, acc)->as_float() == 1e-300);
  Apply(sum, acc, Value::Float(pgtype::kFloat8, 1e308), 2);
  auto over = Finalize(sum, acc);
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().message() == "value out of range: overflow");
  // 2^-1074 (the smallest subnormal) and 1 are both kept.
  Accumulator tiny;
  Apply(sum, tiny, Value::Float(pgtype::kFloat8, std::ldexp(1.0, -1074)), 1);
  Apply(sum, tiny, Value::Float(pgtype::kFloat8, 1.0), 1);
  Apply(sum, tiny, Value::Float(pgtype::kFloat8, 1.0), -1);
  CHECK(Finalize(sum, tiny)->as_float() == std::ldexp(1.0, -1074));
  // Rounding of a long sum is to nearest: 1 + 2^-53 + 2^-53 = 1 + 2^-52 exactly.
  Accumulator r;
  Apply(sum, r, Value::Float(pgtype::kFloat8, 1.0), 1);
  Apply(sum, r, Value::Float(pgtype::kFloat8, std::ldexp(1.0, -53)), 2);
  CHECK(Finalize(sum, r)->as_float() == 1.0 + std::ldexp(1.0, -52));
}

TEST_CASE("min and max are not finalized from an accumulator") {
  AggSpec mn = Spec(AggKind::kMin, pgtype::kInt4);
  Accumulator acc;
  Apply(mn, acc, Value::Int(pgtype::kInt4, 3), 1);
  CHECK(acc.count == 1);
  CHECK_FALSE(Finalize(mn, acc).ok());
}
