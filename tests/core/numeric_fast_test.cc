// Numeric keeps unscaled integers that fit in int64 without GMP; these tests hold every
// fast path against the same operation done in GMP on independently computed values,
// at and around the int64 boundaries.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "../numeric_gen.h"
#include "tally/core/value.h"

using tally::Numeric;
using tally::testing::RandomRefNumeric;
using tally::testing::RefNumeric;
using tally::testing::RefPow10;

namespace {

constexpr uint64_t kSeed = 20261201;

struct Ref {
  mpz_class u;
  int32_t scale;
};

// numeric_out of u * 10^-scale, from GMP's digits.
std::string RefText(const Ref& r) {
  std::string digits = mpz_class(abs(r.u)).get_str();
  std::string out = r.u < 0 ? "-" : "";
  if (r.scale <= 0) return out + digits;
  size_t scale = static_cast<size_t>(r.scale);
  if (digits.size() <= scale) digits.insert(0, scale + 1 - digits.size(), '0');
  return out + digits.substr(0, digits.size() - scale) + "." + digits.substr(digits.size() - scale);
}

mpz_class Aligned(const Ref& r, int32_t scale) { return r.u * RefPow10(scale - r.scale); }

// The numeric is exactly the reference, and small exactly when the integer fits in int64.
void CheckIs(const Numeric& n, const Ref& want) {
  INFO("got " << n.ToString() << " scale " << n.scale() << ", want " << RefText(want) << " scale "
              << want.scale);
  REQUIRE(n.is_finite());
  CHECK(n.scale() == want.scale);
  CHECK(n.unscaled() == want.u);
  CHECK(n.sign() == sgn(want.u));
  CHECK(n.is_small() == (mpz_fits_slong_p(want.u.get_mpz_t()) != 0));
  if (n.is_small()) {
    CHECK(n.small_unscaled() == want.u.get_si());
    CHECK(n.big_unscaled() == nullptr);
  }
  CHECK(n.ToString() == RefText(want));
}

}  // namespace

TEST_CASE("Numeric fast paths agree with GMP arithmetic on random values") {
  std::mt19937_64 rng(kSeed);
  INFO("seed " << kSeed);
  std::vector<std::pair<Numeric, Ref>> values;
  for (int i = 0; i < 4000; ++i) {
    RefNumeric g = RandomRefNumeric(rng);
    INFO("text [" << g.text << "]");
    auto n = Numeric::Parse(g.text);
    REQUIRE(n.ok());
    Ref ref{g.unscaled, g.scale};
    CheckIs(*n, ref);
    values.emplace_back(std::move(*n), ref);
  }
  int small_results = 0, big_results = 0;
  for (size_t i = 0; i + 1 < values.size(); ++i) {
    const auto& [a, ra] = values[i];
    const auto& [b, rb] = values[i + 1];
    INFO("a " << ra.u.get_str() << "e-" << ra.scale << ", b " << rb.u.get_str() << "e-"
              << rb.scale);
    int32_t s = std::max(ra.scale, rb.scale);
    Numeric sum = a.Add(b);
    CheckIs(sum, {Aligned(ra, s) + Aligned(rb, s), s});
    CheckIs(a.Sub(b), {Aligned(ra, s) - Aligned(rb, s), s});
    CheckIs(a.Mul(b), {ra.u * rb.u, ra.scale + rb.scale});
    CheckIs(a.Negate(), {-ra.u, ra.scale});
    (sum.is_small() ? small_results : big_results)++;
    int c = cmp(Aligned(ra, s), Aligned(rb, s));
    CHECK(a.Compare(b) == (c > 0) - (c < 0));
    CHECK(b.Compare(a) == (c < 0) - (c > 0));
    CHECK(a.Compare(a.Rescale(a.scale() + 3)) == 0);
    // Rescale to scales around the value's own, negative ones included.
    int32_t t = static_cast<int32_t>(rng() % 45) - 20;
    Ref want;
    if (t >= ra.scale) {
      want = {Aligned(ra, t), t};
    } else {
      mpz_class den = RefPow10(ra.scale - t), q, r;
      mpz_tdiv_qr(q.get_mpz_t(), r.get_mpz_t(), ra.u.get_mpz_t(), den.get_mpz_t());
      if (abs(r) * 2 >= den) q += sgn(ra.u);
      want = t >= 0 ? Ref{q, t} : Ref{q * RefPow10(-t), 0};
    }
    INFO("rescale to " << t);
    CheckIs(a.Rescale(t), want);
    CHECK(a.ToDouble() == std::strtod(RefText(ra).c_str(), nullptr));
    // Copies and moves keep the value, small or big.
    Numeric copy = a;
    CHECK(copy.Identical(a));
    Numeric moved = std::move(copy);
    CHECK(moved.Identical(a));
    copy = b;
    CHECK(copy.Identical(b));
    copy = moved;
    CHECK(copy.Identical(a));
  }
  // Both sides of the int64 boundary were exercised.
  CHECK(small_results > 1000);
  CHECK(big_results > 500);
}

TEST_CASE("Numeric arithmetic just past int64's range moves to GMP, exactly") {
  Numeric max = *Numeric::Parse("9223372036854775807");
  Numeric min = *Numeric::Parse("-9223372036854775808");
  Numeric one = Numeric::FromInt(1);
  CHECK(max.is_small());
  CHECK(min.is_small());
  CHECK(max.Add(one).ToString() == "9223372036854775808");
  CHECK_FALSE(max.Add(one).is_small());
  CHECK(max.Add(one).Sub(one).is_small());  // back in range: small again (canonical)
  CHECK(min.Sub(one).ToString() == "-9223372036854775809");
  CHECK(min.Negate().ToString() == "9223372036854775808");
  CHECK(min.Negate().Negate().is_small());
  CHECK(min.Mul(Numeric::FromInt(-1)).ToString() == "9223372036854775808");
  CHECK(max.Rescale(1).ToString() == "9223372036854775807.0");
  CHECK(Numeric::Parse("922337203685477580.75")->Rescale(1).ToString() == "922337203685477580.8");
  CHECK(Numeric::Parse("-0.5")->Rescale(0).ToString() == "-1");
  CHECK(Numeric::Parse("0.05")->Rescale(1).ToString() == "0.1");
  CHECK(Numeric::Parse("-0.00")->ToString() == "0.00");
  CHECK(Numeric::Parse("1e18")->is_small());
  CHECK_FALSE(Numeric::Parse("1e19")->is_small());
  CHECK(Numeric::Parse("1e19")->ToString() == "10000000000000000000");
  CHECK(Numeric::Parse("9.223372036854775808e18")->ToString() == "9223372036854775808");
  CHECK(Numeric::Parse("-9.223372036854775808e18")->is_small());
  // Scales 18 and more apart compare through GMP; still exact.
  CHECK(Numeric::Parse("1e-30")->Compare(*Numeric::Parse("0.000000000000000000000000000001")) == 0);
  CHECK(Numeric::Parse("5")->Compare(*Numeric::Parse("4.9999999999999999999999")) == 1);
}
