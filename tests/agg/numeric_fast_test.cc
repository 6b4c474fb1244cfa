// The numeric sort key, value encoding and sum take int64 fast paths for small numerics;
// their bytes and results must be exactly those of the GMP forms (stored state depends on
// them), checked here against reference GMP implementations on random values.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../numeric_gen.h"
#include "tally/agg/aggregate.h"
#include "tally/agg/codec.h"
#include "tally/agg/sort_key.h"

using namespace tally;
using namespace tally::agg;
using tally::testing::RandomRefNumeric;
using tally::testing::RefNumeric;
using tally::testing::RefPow10;

namespace {

constexpr uint64_t kSeed = 1201;

// The sort key of a finite numeric as the GMP-only form built it (state format 5).
std::string RefSortKey(const mpz_class& u, int32_t scale) {
  std::string out;
  int sign = sgn(u);
  if (sign == 0) return std::string(1, '\x02');
  out.push_back(sign < 0 ? '\x01' : '\x03');
  std::string digits = mpz_class(abs(u)).get_str();
  size_t end = digits.size();
  while (end > 1 && digits[end - 1] == '0') --end;
  int64_t e = static_cast<int64_t>(digits.size()) - scale;
  uint8_t invert = sign < 0 ? 0xFF : 0x00;
  uint32_t ue = static_cast<uint32_t>(static_cast<int32_t>(e)) ^ 0x80000000u;
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>(static_cast<uint8_t>(ue >> shift) ^ invert));
  }
  for (size_t i = 0; i < end; i += 2) {
    uint8_t hi = static_cast<uint8_t>(digits[i] - '0' + 1);
    uint8_t lo = (i + 1 < end) ? static_cast<uint8_t>(digits[i + 1] - '0' + 1) : 0;
    out.push_back(static_cast<char>(static_cast<uint8_t>((hi << 4) | lo) ^ invert));
  }
  if (end % 2 == 0) out.push_back(static_cast<char>(invert));
  return out;
}

// EncodeValue's bytes for a finite numeric: header, kind 0 (int64 unscaled, zigzag
// varint) when the integer fits in int64, else kind 1 (sign and little-endian magnitude).
std::string RefEncoding(const mpz_class& u, int32_t scale) {
  std::string out;
  PutVarint64(uint64_t{pgtype::kNumeric} << 3 | 4, &out);
  bool small = mpz_fits_slong_p(u.get_mpz_t()) != 0;
  out.push_back(small ? '\x00' : '\x01');
  PutVarint64(static_cast<uint64_t>(scale), &out);
  if (small) {
    int64_t v = u.get_si();
    PutVarint64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63), &out);
    return out;
  }
  size_t bytes = (mpz_sizeinbase(u.get_mpz_t(), 2) + 7) / 8;
  PutVarint64((static_cast<uint64_t>(bytes) << 1) | (u < 0 ? 1 : 0), &out);
  std::string mag(bytes, '\0');
  size_t written = 0;
  mpz_export(mag.data(), &written, -1, 1, -1, 0, u.get_mpz_t());
  out.append(mag, 0, written);
  return out;
}

}  // namespace

TEST_CASE("Numeric sort keys and encodings are the GMP form's bytes, small values or big") {
  std::mt19937_64 rng(kSeed);
  INFO("seed " << kSeed);
  Collation coll;
  int small = 0;
  for (int i = 0; i < 5000; ++i) {
    RefNumeric g = RandomRefNumeric(rng);
    INFO("text [" << g.text << "]");
    Value v = *Value::ParseText(pgtype::kNumeric, g.text);
    small += v.as_numeric().is_small();
    std::string key;
    AppendSortKey(v, coll, &key);
    CHECK(key == RefSortKey(g.unscaled, g.scale));
    std::string enc;
    EncodeValue(v, &enc);
    CHECK(enc == RefEncoding(g.unscaled, g.scale));
    std::string_view in = enc;
    auto back = DecodeValue(&in);
    REQUIRE(back.ok());
    CHECK(back->Identical(v));
    CHECK(back->as_numeric().is_small() == v.as_numeric().is_small());
  }
  CHECK(small > 1000);
  CHECK(small < 4000);
}

TEST_CASE("numeric sum over small and big values with weights is the exact GMP sum") {
  std::mt19937_64 rng(kSeed + 1);
  INFO("seed " << kSeed + 1);
  auto spec = MakeAggSpec(AggKind::kSum, false, pgtype::kNumeric);
  REQUIRE(spec.ok());
  for (int round = 0; round < 200; ++round) {
    Accumulator acc;
    mpz_class want = 0;  // at scale 30, above every generated scale
    int32_t max_scale = 0;
    std::vector<std::pair<Value, int64_t>> applied;
    for (int i = 0; i < 30; ++i) {
      RefNumeric g = RandomRefNumeric(rng);
      if (g.scale > 30) continue;
      // Mostly one scale, as a numeric(12,2) column gives.
      if (rng() % 4 != 0) {
        g.text = Numeric::Parse(g.text)->Rescale(2).ToString();
        g.unscaled = Numeric::Parse(g.text)->unscaled();
        g.scale = 2;
      }
      // Counts must stay positive; retraction (negative weights) comes at the end. Products
      // of an int64 unscaled value and a weight of 2^40 need more than 64 bits.
      int64_t weight = rng() % 3 == 0 ? (int64_t{1} << 40) + static_cast<int64_t>(rng() % 3)
                                      : 1 + static_cast<int64_t>(rng() % 3);
      Value v = *Value::ParseText(pgtype::kNumeric, g.text);
      Apply(*spec, acc, v, weight);
      want += g.unscaled * RefPow10(30 - g.scale) * mpz_class(std::to_string(weight));
      max_scale = std::max(max_scale, g.scale);
      applied.emplace_back(std::move(v), weight);
    }
    auto got = Finalize(*spec, acc);
    INFO((got.ok() ? "" : got.status().ToString()));
    REQUIRE(got.ok());
    // Postgres's sum has the largest input scale: exact, so the scale-30 sum divides.
    mpz_class den = RefPow10(30 - max_scale);
    REQUIRE(mpz_divisible_p(want.get_mpz_t(), den.get_mpz_t()) != 0);
    mpz_class u = want / den;
    CHECK(got->as_numeric().unscaled() == u);
    CHECK(got->as_numeric().scale() == max_scale);
    // Retracting everything (in another order) leaves the empty state.
    std::shuffle(applied.begin(), applied.end(), rng);
    for (auto& [v, w] : applied) Apply(*spec, acc, v, -w);
    CHECK(acc.num_sum == 0);
    CHECK(acc.scale_counts.empty());
  }
}
