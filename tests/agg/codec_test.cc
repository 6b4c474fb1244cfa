#include "tally/agg/codec.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace tally;
using namespace tally::agg;

namespace {

Value RandomValue(std::mt19937_64& rng) {
  static const Oid kTypes[] = {pgtype::kBool,        pgtype::kInt2,     pgtype::kInt4,
                               pgtype::kInt8,        pgtype::kOid,      pgtype::kFloat4,
                               pgtype::kFloat8,      pgtype::kNumeric,  pgtype::kText,
                               pgtype::kVarchar,     pgtype::kDate,     pgtype::kTimestamp,
                               pgtype::kTimestampTz, pgtype::kInterval, pgtype::kUuid};
  Oid t = kTypes[rng() % (sizeof kTypes / sizeof kTypes[0])];
  if (rng() % 8 == 0) return Value::Null(t);
  switch (ReprOf(t)) {
    case Repr::kBool:
      return Value::Bool(rng() % 2);
    case Repr::kInt:
      return Value::Int(t, static_cast<int64_t>(rng()) >> (rng() % 64));
    case Repr::kFloat: {
      uint64_t bits = rng();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return Value::Float(t, d);
    }
    case Repr::kNumeric: {
      int which = static_cast<int>(rng() % 10);
      if (which == 0) return Value::Num(Numeric::NaN());
      if (which == 1) return Value::Num(Numeric::PosInf());
      if (which == 2) return Value::Num(Numeric::NegInf());
      mpz_class u(static_cast<long>(rng()));
      for (int i = static_cast<int>(rng() % 4); i > 0; --i) u *= static_cast<unsigned long>(rng());
      return Value::Num(Numeric(u, static_cast<int32_t>(rng() % 40)));
    }
    case Repr::kText: {
      std::string s;
      for (size_t i = rng() % 20; i > 0; --i) s.push_back(static_cast<char>(rng() % 256));
      return Value::Text(t, s);
    }
    case Repr::kDate:
      return Value::Date(static_cast<int32_t>(rng()));
    case Repr::kTimestamp:
      return Value::Timestamp(t, static_cast<int64_t>(rng()));
    case Repr::kInterval:
      return Value::Interv(
          {static_cast<int64_t>(rng()), static_cast<int32_t>(rng()), static_cast<int32_t>(rng())});
  }
  return Value();
}

}  // namespace

TEST_CASE("EncodeValue/DecodeValue round-trip every type exactly") {
  std::mt19937_64 rng(5);
  std::string buf;
  std::vector<Value> values;
  for (int i = 0; i < 5000; ++i) {
    values.push_back(RandomValue(rng));
    EncodeValue(values.back(), &buf);
  }
  std::string_view in(buf);
  for (const Value& want : values) {
    auto got = DecodeValue(&in);
    REQUIRE(got.ok());
    CHECK(got->Identical(want));
  }
  CHECK(in.empty());
}

TEST_CASE("Small values encode compactly") {
  std::string buf;
  EncodeValue(Value::Int(pgtype::kInt4, 5), &buf);
  CHECK(buf.size() == 3);  // 2-byte header + 1-byte varint
  buf.clear();
  EncodeValue(Value::Num(*Numeric::Parse("12.50")), &buf);
  CHECK(buf.size() <= 6);
}

TEST_CASE("Rows round-trip and reject trailing or missing bytes") {
  std::mt19937_64 rng(9);
  std::vector<Value> row;
  for (int i = 0; i < 12; ++i) row.push_back(RandomValue(rng));
  std::string buf;
  EncodeValues(row, &buf);
  std::vector<Value> back;
  REQUIRE(DecodeValues(buf, &back).ok());
  REQUIRE(back.size() == row.size());
  for (size_t i = 0; i < row.size(); ++i) CHECK(back[i].Identical(row[i]));
  CHECK(DecodeValues(buf + "x", &back).code() == StatusCode::kCorruption);
  CHECK(DecodeValues(buf.substr(0, buf.size() - 1), &back).code() == StatusCode::kCorruption);
  std::string bad_version = buf;
  bad_version[0] = 9;
  CHECK(DecodeValues(bad_version, &back).code() == StatusCode::kCorruption);
}

TEST_CASE("Corrupt bytes give Corruption, never a crash") {
  std::mt19937_64 rng(13);
  int rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<Value> row;
    for (int j = static_cast<int>(rng() % 4); j >= 0; --j) row.push_back(RandomValue(rng));
    std::string buf;
    EncodeValues(row, &buf);
    // Flip, truncate or append random bytes.
    switch (rng() % 3) {
      case 0:
        buf[rng() % buf.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 1:
        buf.resize(rng() % buf.size());
        break;
      default:
        for (int k = 0; k < 4; ++k)
          buf.insert(buf.begin() + rng() % (buf.size() + 1), static_cast<char>(rng()));
    }
    std::vector<Value> back;
    Status s = DecodeValues(buf, &back);
    if (!s.ok()) {
      CHECK(s.code() == StatusCode::kCorruption);
      ++rejected;
    } else {
      for (const Value& v : back) (void)v.FormatText();  // decoded values are usable
    }
    Accumulator acc;
    Status a = DecodeAccumulator(buf, &acc);
    if (!a.ok()) CHECK(a.code() == StatusCode::kCorruption);
  }
  CHECK(rejected > 10000);
}

TEST_CASE("Varints round-trip, advance past themselves, and refuse truncated or oversized input") {
  const uint64_t values[] = {0, 1, 127, 128, 300, uint64_t{1} << 35, ~uint64_t{0}};
  std::string bytes;
  for (uint64_t v : values) PutVarint64(v, &bytes);
  bytes.push_back('z');
  std::string_view in = bytes;
  for (uint64_t v : values) {
    uint64_t got = 0;
    REQUIRE(GetVarint64(&in, &got));
    CHECK(got == v);
  }
  CHECK(in == "z");
  std::string truncated;
  PutVarint64(uint64_t{1} << 40, &truncated);
  truncated.pop_back();
  std::string_view t = truncated;
  uint64_t got = 0;
  CHECK_FALSE(GetVarint64(&t, &got));
  CHECK(t.size() == truncated.size());  // nothing consumed
  const std::string oversized(10, '\xff');
  std::string_view o = oversized;
  CHECK_FALSE(GetVarint64(&o, &got));
}
