#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "../test_util.h"
#include "tally/core/value.h"

using tally::Numeric;
using tally::testing::ReadTsv;
using tally::testing::Unescape;

namespace {

Numeric N(const std::string& s) {
  auto r = Numeric::Parse(s);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("Numeric parse and format match numeric_in/numeric_out of Postgres 15") {
  auto rows = ReadTsv("core/numeric_parse.tsv");
  REQUIRE(rows.size() > 100);
  for (const auto& row : rows) {
    REQUIRE(row.size() == 2);
    std::string input = Unescape(row[0]);
    INFO("input [" << input << "]");
    auto r = Numeric::Parse(input);
    if (row[1] == "ERROR") {
      CHECK_FALSE(r.ok());
    } else {
      REQUIRE(r.ok());
      CHECK(r->ToString() == row[1]);
    }
  }
}

TEST_CASE("Numeric + - * / match Postgres 15 digit for digit") {
  auto rows = ReadTsv("core/numeric_arith.tsv");
  REQUIRE(rows.size() > 300);
  for (const auto& row : rows) {
    REQUIRE(row.size() == 6);
    INFO(row[0] << " op " << row[1]);
    Numeric a = N(row[0]);
    Numeric b = N(row[1]);
    CHECK(a.Add(b).ToString() == row[2]);
    CHECK(a.Sub(b).ToString() == row[3]);
    CHECK(a.Mul(b).ToString() == row[4]);
    auto q = a.Div(b);
    if (row[5] == "ERROR") {
      CHECK_FALSE(q.ok());
    } else {
      REQUIRE(q.ok());
      CHECK(q->ToString() == row[5]);
    }
  }
}

TEST_CASE("Numeric division by zero is an error, as in Postgres") {
  auto q = N("1").Div(N("0.00"));
  REQUIRE_FALSE(q.ok());
  CHECK(q.status().message() == "division by zero");
  CHECK_FALSE(Numeric::PosInf().Div(N("0")).ok());
  CHECK(Numeric::NaN().Div(N("0"))->ToString() == "NaN");
}

TEST_CASE("Numeric Rescale rounds half away from zero") {
  CHECK(N("2.5").Rescale(0).ToString() == "3");
  CHECK(N("-2.5").Rescale(0).ToString() == "-3");
  CHECK(N("2.49").Rescale(1).ToString() == "2.5");
  CHECK(N("2.449").Rescale(2).ToString() == "2.45");
  CHECK(N("-0.004").Rescale(2).ToString() == "0.00");
  CHECK(N("1.5").Rescale(3).ToString() == "1.500");
  CHECK(N("1250").Rescale(-2).ToString() == "1300");
  CHECK(Numeric::NaN().Rescale(2).ToString() == "NaN");
}

TEST_CASE("Numeric Compare ignores scale and puts NaN last") {
  CHECK(N("1.0").Compare(N("1.00")) == 0);
  CHECK(N("-1").Compare(N("0.5")) < 0);
  CHECK(N("10").Compare(N("9.999")) > 0);
  CHECK(N("-10").Compare(N("-9.999")) < 0);
  CHECK(Numeric::NegInf().Compare(N("-1e100")) < 0);
  CHECK(Numeric::PosInf().Compare(N("1e100")) > 0);
  CHECK(Numeric::NaN().Compare(Numeric::PosInf()) > 0);
  CHECK(Numeric::NaN().Compare(Numeric::NaN()) == 0);
  CHECK(N("0.000").Compare(N("0")) == 0);
}

TEST_CASE("Numeric ToDouble rounds like numeric_float8") {
  CHECK(N("0.1").ToDouble() == 0.1);
  CHECK(N("-12.50").ToDouble() == -12.5);
  CHECK(std::isnan(Numeric::NaN().ToDouble()));
  CHECK(Numeric::NegInf().ToDouble() == -HUGE_VAL);
}

TEST_CASE("Numeric random values round-trip through text and agree with Compare") {
  std::mt19937_64 rng(7);
  std::vector<Numeric> values;
  for (int i = 0; i < 2000; ++i) {
    int int_digits = static_cast<int>(rng() % 25);
    int frac_digits = static_cast<int>(rng() % 12);
    std::string s = (rng() % 2) ? "-" : "";
    for (int d = 0; d < int_digits; ++d) s.push_back(static_cast<char>('0' + rng() % 10));
    if (int_digits == 0) s.push_back('0');
    if (frac_digits > 0) {
      s.push_back('.');
      for (int d = 0; d < frac_digits; ++d) s.push_back(static_cast<char>('0' + rng() % 10));
    }
    Numeric n = N(s);
    Numeric again = N(n.ToString());
    CHECK(again.ToString() == n.ToString());
    CHECK(again.scale() == frac_digits);
    CHECK(again.Compare(n) == 0);
    values.push_back(std::move(n));
  }
  for (size_t i = 1; i < values.size(); ++i) {
    const Numeric& a = values[i - 1];
    const Numeric& b = values[i];
    int c = a.Compare(b);
    CHECK(c == -b.Compare(a));
    // a - b has the sign of the comparison.
    Numeric d = a.Sub(b);
    CHECK(c == sgn(d.unscaled()));
    // (a * b) / b == a when b != 0, after rescaling to a's scale.
    if (sgn(b.unscaled()) != 0) {
      auto q = a.Mul(b).Div(b);
      REQUIRE(q.ok());
      CHECK(q->Rescale(a.scale()).Compare(a) == 0);
    }
  }
}
