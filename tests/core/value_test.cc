#include "tally/core/value.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../test_util.h"

using tally::Oid;
using tally::Value;
namespace pgtype = tally::pgtype;
using tally::testing::OidOfName;
using tally::testing::ReadTsv;

namespace {

Value Parse(Oid type, const std::string& s) {
  auto r = Value::ParseText(type, s);
  INFO(s);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("Value text input/output matches Postgres 15 for every type") {
  auto rows = ReadTsv("core/text_io.tsv");
  REQUIRE(rows.size() > 300);
  for (const auto& row : rows) {
    REQUIRE(row.size() == 3);
    Oid type = OidOfName(row[0]);
    INFO(row[0] << " [" << row[1] << "] expected [" << row[2] << "]");
    auto r = Value::ParseText(type, row[1]);
    if (row[2] == "ERROR") {
      CHECK_FALSE(r.ok());
      continue;
    }
    REQUIRE(r.ok());
    CHECK(r->type() == type);
    CHECK(r->FormatText() == row[2]);
    // Postgres's output reads back as the same value.
    auto again = Value::ParseText(type, row[2]);
    REQUIRE(again.ok());
    CHECK(again->Identical(*r));
  }
}

TEST_CASE("Dates and timestamps use Postgres's epoch") {
  CHECK(Parse(pgtype::kDate, "2000-01-01").as_int() == 0);
  CHECK(Parse(pgtype::kDate, "2000-01-02").as_int() == 1);
  CHECK(Parse(pgtype::kDate, "1999-12-31").as_int() == -1);
  CHECK(Parse(pgtype::kDate, "infinity").as_int() == tally::kDateNoEnd);
  CHECK(Parse(pgtype::kTimestamp, "2000-01-01 00:00:01.5").as_int() == 1500000);
  CHECK(Parse(pgtype::kTimestampTz, "2000-01-01 01:00:00+01").as_int() == 0);
  CHECK(Parse(pgtype::kTimestampTz, "1999-12-31 19:00:00-05").as_int() == 0);
  CHECK(Parse(pgtype::kTimestampTz, "2000-01-01 05:30:00+05:30").as_int() == 0);
  CHECK(Parse(pgtype::kTimestamp, "-infinity").as_int() == tally::kTimestampNoBegin);
  CHECK(Value::Timestamp(pgtype::kTimestampTz, -1).FormatText() == "1999-12-31 23:59:59.999999+00");
}

TEST_CASE("the printed timestamp form parses as the general parser reads it") {
  // ParseText takes a short path for "YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]" (what pgoutput
  // sends). With a leading space the same text goes through the general parser: both must
  // accept and reject alike and give the same value. Fields are random, in and out of range.
  const uint32_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto two = [&](int v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  auto pick = [&](std::initializer_list<int> choices) {
    return *(choices.begin() + rng() % choices.size());
  };
  size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    const int year =
        rng() % 10 == 0 ? pick({1, 999, 2000, 9999}) : 1900 + static_cast<int>(rng() % 200);
    std::string y = std::to_string(year);
    y = std::string(4 - std::min<size_t>(4, y.size()), '0') + y;
    std::string text = y + "-" + two(rng() % 10 == 0 ? pick({0, 13}) : 1 + rng() % 12) + "-" +
                       two(rng() % 10 == 0 ? pick({0, 29, 30, 31, 32}) : 1 + rng() % 28) + " " +
                       two(rng() % 20 == 0 ? 24 : rng() % 24) + ":" +
                       two(rng() % 20 == 0 ? 60 : rng() % 60) + ":" +
                       two(rng() % 20 == 0 ? 60 : rng() % 60);
    const int fraction_digits = rng() % 3 == 0 ? 0 : 1 + static_cast<int>(rng() % 7);
    if (fraction_digits > 0) {
      text += ".";
      for (int d = 0; d < fraction_digits; ++d) text += static_cast<char>('0' + rng() % 10);
    }
    switch (rng() % 5) {
      case 0:
        break;
      case 1:
        text += "+00";
        break;
      case 2:
        text += (rng() % 2 ? "+" : "-") + two(rng() % 15);
        break;
      case 3:
        text += (rng() % 2 ? "+" : "-") + two(rng() % 15) + ":" + two(pick({0, 30, 45, 61}));
        break;
      default:
        text += pick({0, 1}) ? "+5" : " BC";
        break;
    }
    for (Oid type : {pgtype::kTimestamp, pgtype::kTimestampTz}) {
      INFO(text);
      auto direct = Value::ParseText(type, text);
      auto general = Value::ParseText(type, " " + text);
      REQUIRE(direct.ok() == general.ok());
      if (!direct.ok()) continue;
      REQUIRE(direct->as_int() == general->as_int());
      ++accepted;
    }
  }
  CHECK(accepted > 10000);
  // The printed form of a value reads back as that value: about 4300 BC to 11500 AD (BC and
  // five-digit years take the general parser).
  std::mt19937_64 rng64(seed);
  std::uniform_int_distribution<int64_t> instant(-200000000000000000, 300000000000000000);
  for (int i = 0; i < 20000; ++i) {
    const int64_t micros = instant(rng64);
    for (Oid type : {pgtype::kTimestamp, pgtype::kTimestampTz}) {
      const std::string text = Value::Timestamp(type, micros).FormatText();
      INFO(text);
      auto back = Value::ParseText(type, text);
      REQUIRE(back.ok());
      CHECK(back->as_int() == micros);
    }
  }
}

TEST_CASE("Intervals hold months, days and microseconds separately") {
  auto iv = Parse(pgtype::kInterval, "1 year 2 mons 3 days 04:05:06.5").as_interval();
  CHECK(iv.months == 14);
  CHECK(iv.days == 3);
  CHECK(iv.micros == ((4 * 60 + 5) * 60 + 6) * int64_t{1000000} + 500000);
  auto neg = Parse(pgtype::kInterval, "-1 days +02:03:00").as_interval();
  CHECK(neg.days == -1);
  CHECK(neg.micros == (2 * 60 + 3) * 60 * int64_t{1000000});
  CHECK(Value::Interv({-1, 0, 0}).FormatText() == "-00:00:00.000001");
  CHECK(Value::Interv({0, -1, 1}).FormatText() == "1 mon -1 days");
}

TEST_CASE("Floats print the shortest text that reads back") {
  CHECK(tally::FormatFloat(pgtype::kFloat8, 0.1) == "0.1");
  CHECK(tally::FormatFloat(pgtype::kFloat8, 1e20) == "1e+20");
  CHECK(tally::FormatFloat(pgtype::kFloat8, 0.1 + 0.2) == "0.30000000000000004");
  CHECK(tally::FormatFloat(pgtype::kFloat4, static_cast<float>(0.1)) == "0.1");
  CHECK(tally::FormatFloat(pgtype::kFloat8, -0.0) == "-0");
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (std::isnan(d)) continue;
    std::string s = tally::FormatFloat(pgtype::kFloat8, d);
    auto back = Value::ParseText(pgtype::kFloat8, s);
    REQUIRE(back.ok());
    CHECK(back->as_float() == d);
    float f = static_cast<float>(static_cast<uint32_t>(bits));
    std::memcpy(&f, &bits, sizeof f);
    if (std::isnan(f)) continue;
    std::string sf = tally::FormatFloat(pgtype::kFloat4, f);
    auto backf = Value::ParseText(pgtype::kFloat4, sf);
    REQUIRE(backf.ok());
    CHECK(static_cast<float>(backf->as_float()) == f);
  }
}

TEST_CASE("Text and unknown types are kept verbatim") {
  CHECK(Parse(pgtype::kText, " a b ").as_text() == " a b ");
  Value u = Parse(pgtype::kUuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  CHECK(u.type() == pgtype::kUuid);
  CHECK(u.FormatText() == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  Value odd = Parse(987654, "{1,2}");
  CHECK(tally::ReprOf(987654) == tally::Repr::kText);
  CHECK(odd.FormatText() == "{1,2}");
}

TEST_CASE("GroupEquals follows Postgres's = for each type") {
  CHECK(Parse(pgtype::kNumeric, "1.0").GroupEquals(Parse(pgtype::kNumeric, "1.00")));
  CHECK_FALSE(Parse(pgtype::kNumeric, "1.0").GroupEquals(Parse(pgtype::kNumeric, "1.01")));
  CHECK(Parse(pgtype::kNumeric, "NaN").GroupEquals(Parse(pgtype::kNumeric, "nan")));
  CHECK(Parse(pgtype::kFloat8, "NaN").GroupEquals(Parse(pgtype::kFloat8, "NaN")));
  CHECK(Parse(pgtype::kFloat8, "-0").GroupEquals(Parse(pgtype::kFloat8, "0")));
  CHECK(Parse(pgtype::kInterval, "1 mon").GroupEquals(Parse(pgtype::kInterval, "30 days")));
  CHECK(Parse(pgtype::kInterval, "1 day").GroupEquals(Parse(pgtype::kInterval, "24:00:00")));
  CHECK(Value::Text(pgtype::kBpchar, "ab  ").GroupEquals(Value::Text(pgtype::kBpchar, "ab")));
  CHECK_FALSE(Value::Text(pgtype::kText, "ab ").GroupEquals(Value::Text(pgtype::kText, "ab")));
  CHECK(Value::Null(pgtype::kInt4).GroupEquals(Value::Null(pgtype::kInt4)));
  CHECK_FALSE(Value::Null(pgtype::kInt4).GroupEquals(Value::Int(pgtype::kInt4, 0)));
  CHECK(Value::Int(pgtype::kInt4, 5).GroupEquals(Value::Int(pgtype::kInt4, 5)));
}

TEST_CASE("parsing into a reused value gives what parsing afresh gives") {
  namespace pgtype = tally::pgtype;
  // Each text in turn into the same slot, whatever the slot held before (a long text's
  // buffer, a numeric, NULL): the result must be identical to a fresh parse, errors alike.
  const std::vector<std::pair<Oid, std::string>> inputs = {
      {pgtype::kText, "a text longer than the short-string buffer of std::string"},
      {pgtype::kNumeric, "12345.678"},
      {pgtype::kText, "g42"},
      {pgtype::kInt4, "-17"},
      {pgtype::kTimestampTz, "2024-01-05 10:11:12.5+00"},
      {pgtype::kNumeric, "1e400x"},  // an error
      {pgtype::kText, ""},
      {pgtype::kFloat8, "NaN"},
      {pgtype::kDate, "2024-02-29"},
      {pgtype::kBool, "t"},
      {pgtype::kInterval, "1 mon 2 days 00:00:03"},
      {pgtype::kInt8, "9223372036854775808"},  // out of range: an error
      {pgtype::kNumeric, "-0.50"},
  };
  std::mt19937 rng(Catch::rngSeed());
  Value slot = Value::Null(pgtype::kText);
  for (int i = 0; i < 2000; ++i) {
    const auto& [type, text] = inputs[rng() % inputs.size()];
    INFO("type " << type << ", text '" << text << "'");
    auto fresh = Value::ParseText(type, text);
    tally::Status into = Value::ParseTextInto(type, text, &slot);
    REQUIRE(into.ok() == fresh.ok());
    if (!fresh.ok()) {
      CHECK(into.message() == fresh.status().message());
      slot = Value::Null(type);
      continue;
    }
    CHECK(slot.Identical(*fresh));
    CHECK(slot.type() == type);
  }
  // A slot that held a large text does not keep its memory for the next, short one.
  REQUIRE(Value::ParseTextInto(pgtype::kText, std::string(1 << 20, 'x'), &slot).ok());
  REQUIRE(Value::ParseTextInto(pgtype::kText, "short", &slot).ok());
  CHECK(slot.as_text().capacity() < 1024);
}
