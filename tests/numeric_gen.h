// Random numeric text with its exact value computed by GMP alone (not through Numeric),
// for tests that hold Numeric's int64 fast paths against big-integer arithmetic.
#pragma once

#include <gmpxx.h>

#include <cstdint>
#include <random>
#include <string>

namespace tally::testing {

struct RefNumeric {
  std::string text;    // what Numeric::Parse reads
  mpz_class unscaled;  // value = unscaled * 10^-scale, scale as numeric_in gives it
  int32_t scale = 0;
};

inline mpz_class RefPow10(int64_t k) {
  mpz_class p;
  mpz_ui_pow_ui(p.get_mpz_t(), 10, static_cast<unsigned long>(k));
  return p;
}

// Digit strings of 1..40 digits (often 15..21, around int64's 19), a decimal point
// anywhere, a sign, sometimes an exponent; or an exact int64 boundary +-2 at some scale.
inline RefNumeric RandomRefNumeric(std::mt19937_64& rng) {
  RefNumeric r;
  bool negative = rng() % 2 == 0;
  std::string digits;
  if (rng() % 5 == 0) {
    // INT64_MAX, INT64_MIN, 10^18, 10^19, 2^53 and neighbours.
    static const char* const kEdges[] = {
        "9223372036854775807",  "9223372036854775808",  "9223372036854775806",
        "9223372036854775809",  "1000000000000000000",  "999999999999999999",
        "10000000000000000000", "9999999999999999999",  "9007199254740992",
        "9007199254740993",     "18446744073709551615", "18446744073709551616"};
    digits = kEdges[rng() % (sizeof kEdges / sizeof kEdges[0])];
  } else {
    // Short (most real values), around 19 digits, or anything up to 40.
    int pick = static_cast<int>(rng() % 4);
    int len = pick < 2   ? 1 + static_cast<int>(rng() % 12)
              : pick < 3 ? 15 + static_cast<int>(rng() % 7)
                         : 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < len; ++i) digits.push_back(static_cast<char>('0' + rng() % 10));
    if (rng() % 4 == 0) digits[0] = '0';  // leading zeros count for nothing
  }
  int frac = rng() % 3 == 0 ? 0 : static_cast<int>(rng() % (digits.size() + 1));
  int64_t exponent = rng() % 4 == 0 ? static_cast<int64_t>(rng() % 41) - 20 : 0;
  std::string text = negative ? "-" : (rng() % 8 == 0 ? "+" : "");
  text += digits.substr(0, digits.size() - frac);
  if (frac > 0) text += "." + digits.substr(digits.size() - frac);
  if (exponent != 0 || rng() % 16 == 0) text += "e" + std::to_string(exponent);
  r.text = text;
  int64_t dscale = std::max<int64_t>(frac - exponent, 0);
  r.scale = static_cast<int32_t>(dscale);
  r.unscaled = mpz_class(digits, 10) * RefPow10(dscale - frac + exponent);
  if (negative) r.unscaled = -r.unscaled;
  return r;
}

}  // namespace tally::testing
