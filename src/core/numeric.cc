// Numeric: Postgres's numeric semantics (src/backend/utils/adt/numeric.c, PG 15) on top of
// GMP. A finite value is unscaled * 10^-scale; scale is Postgres's dscale (never negative).
#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <string>

#include "tally/core/value.h"

namespace tally {
namespace {

// Limits of Postgres's numeric storage format (numeric.c).
constexpr int32_t kMaxDscale = 0x3FFF;         // NUMERIC_DSCALE_MAX
constexpr int64_t kMaxIntegerDigits = 131072;  // (NUMERIC_WEIGHT_MAX + 1) * DEC_DIGITS
constexpr int32_t kMinSigDigits = 16;          // NUMERIC_MIN_SIG_DIGITS
constexpr int32_t kMaxDisplayScale = 1000;     // NUMERIC_MAX_DISPLAY_SCALE
constexpr int kDecDigits = 4;                  // DEC_DIGITS (base 10000)
constexpr int64_t kMaxExponent = 1073741823;   // INT_MAX / 2, numeric_in's limit

// 10^k for k <= 19, the powers an int64 (k <= 18) or uint64 (k = 19) holds.
constexpr uint64_t kPow10U64[20] = {1ull,
                                    10ull,
                                    100ull,
                                    1000ull,
                                    10000ull,
                                    100000ull,
                                    1000000ull,
                                    10000000ull,
                                    100000000ull,
                                    1000000000ull,
                                    10000000000ull,
                                    100000000000ull,
                                    1000000000000ull,
                                    10000000000000ull,
                                    100000000000000ull,
                                    1000000000000000ull,
                                    10000000000000000ull,
                                    100000000000000000ull,
                                    1000000000000000000ull,
                                    10000000000000000000ull};

// *out = v * 10^k for k >= 0; false when that overflows int64.
bool MulPow10Int64(int64_t v, int64_t k, int64_t* out) {
  if (v == 0) {
    *out = 0;
    return true;
  }
  if (k > 18) return false;
  return !__builtin_mul_overflow(v, static_cast<int64_t>(kPow10U64[k]), out);
}

// |v| as uint64 (exact for INT64_MIN too).
uint64_t Magnitude(int64_t v) {
  return v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
}

// Writes the decimal digits of m ending at `end`; returns where they begin.
char* FormatU64(uint64_t m, char* end) {
  char* p = end;
  do {
    *--p = static_cast<char>('0' + m % 10);
    m /= 10;
  } while (m != 0);
  return p;
}

// numeric_out's layout of digits (|unscaled|, no sign) at `scale`.
std::string LayOut(bool negative, std::string_view digits, int32_t scale_in) {
  std::string out;
  if (negative) out.push_back('-');
  if (scale_in <= 0) {
    out.append(digits);
    return out;
  }
  size_t scale = static_cast<size_t>(scale_in);
  out.reserve(out.size() + std::max(digits.size(), scale + 1) + 1);
  if (digits.size() <= scale) {
    out.push_back('0');
    out.push_back('.');
    out.append(scale - digits.size(), '0');
    out.append(digits);
    return out;
  }
  out.append(digits.substr(0, digits.size() - scale));
  out.push_back('.');
  out.append(digits.substr(digits.size() - scale));
  return out;
}

constexpr double kPow10Double[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// 10^k, cached for small k because rescaling by a few digits is the common case.
const mpz_class& Pow10Small(unsigned k) {
  static const auto* table = [] {
    auto* t = new mpz_class[64];
    t[0] = 1;
    for (int i = 1; i < 64; ++i) t[i] = t[i - 1] * 10;
    return t;
  }();
  return table[k];
}

void MulPow10(mpz_class& v, int64_t k) {
  if (k <= 0) return;
  if (k < 64) {
    v *= Pow10Small(static_cast<unsigned>(k));
    return;
  }
  mpz_class p;
  mpz_ui_pow_ui(p.get_mpz_t(), 10, static_cast<unsigned long>(k));
  v *= p;
}

mpz_class Pow10(int64_t k) {
  if (k < 64) return Pow10Small(static_cast<unsigned>(k));
  mpz_class p;
  mpz_ui_pow_ui(p.get_mpz_t(), 10, static_cast<unsigned long>(k));
  return p;
}

// Number of decimal digits of |v| (0 for 0).
int64_t DecimalDigits(const mpz_class& v) {
  if (v == 0) return 0;
  int64_t d = static_cast<int64_t>(mpz_sizeinbase(v.get_mpz_t(), 10));
  // mpz_sizeinbase may overestimate by one.
  if (d > 1 && mpz_cmpabs(v.get_mpz_t(), Pow10(d - 1).get_mpz_t()) < 0) --d;
  return d;
}

// Rounds unscaled (at scale `from`) to scale `to` < from, half away from zero, as
// numeric.c's round_var does.
mpz_class RoundDown(const mpz_class& unscaled, int64_t digits) {
  mpz_class den = Pow10(digits);
  mpz_class q, r;
  mpz_tdiv_qr(q.get_mpz_t(), r.get_mpz_t(), unscaled.get_mpz_t(), den.get_mpz_t());
  r = abs(r) * 2;
  if (r >= den) q += (unscaled < 0 ? -1 : 1);
  return q;
}

// Weight (base-10000 exponent of the leading nonzero digit) and that leading base-10000
// digit, as numeric.c's NumericVar would hold them; 0/0 for zero.
void WeightAndFirstDigit(const Numeric& n, int64_t* weight, int64_t* first) {
  const mpz_class u = n.unscaled();
  if (u == 0) {
    *weight = 0;
    *first = 0;
    return;
  }
  int64_t e = DecimalDigits(u) - 1 - n.scale();  // decimal exponent of the leading digit
  int64_t w = e >= 0 ? e / kDecDigits : -((-e + kDecDigits - 1) / kDecDigits);
  int64_t shift = n.scale() + kDecDigits * w;  // |v| / 10000^w = |u| / 10^shift
  mpz_class a = abs(u);
  if (shift >= 0) {
    a /= Pow10(shift);
  } else {
    MulPow10(a, -shift);
  }
  *weight = w;
  *first = a.get_si();
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

Status SyntaxError(std::string_view text) {
  return Status::InvalidArgument("invalid input syntax for type numeric: \"" + std::string(text) +
                                 "\"");
}

}  // namespace

Result<Numeric> Numeric::Parse(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n && IsSpace(text[i])) ++i;
  std::string_view rest = text.substr(i);

  auto finish_special = [&](Numeric v, size_t len) -> Result<Numeric> {
    for (size_t j = i + len; j < n; ++j) {
      if (!IsSpace(text[j])) return SyntaxError(text);
    }
    return v;
  };
  // Same order of checks as numeric_in (the strings float8in accepts).
  if (StartsWithNoCase(rest, "NaN")) return finish_special(NaN(), 3);
  if (StartsWithNoCase(rest, "Infinity")) return finish_special(PosInf(), 8);
  if (StartsWithNoCase(rest, "+Infinity")) return finish_special(PosInf(), 9);
  if (StartsWithNoCase(rest, "-Infinity")) return finish_special(NegInf(), 9);
  if (StartsWithNoCase(rest, "inf")) return finish_special(PosInf(), 3);
  if (StartsWithNoCase(rest, "+inf")) return finish_special(PosInf(), 4);
  if (StartsWithNoCase(rest, "-inf")) return finish_special(NegInf(), 4);

  // set_var_from_str.
  bool negative = false;
  if (i < n && text[i] == '+') {
    ++i;
  } else if (i < n && text[i] == '-') {
    negative = true;
    ++i;
  }
  bool have_dp = false;
  if (i < n && text[i] == '.') {
    have_dp = true;
    ++i;
  }
  if (i >= n || !IsDigit(text[i])) return SyntaxError(text);
  // The digits accumulate into an int64 when they fit (nearly always); the text is only
  // handed to GMP when they do not.
  const size_t digits_begin = i;
  uint64_t mag = 0;
  bool mag_overflow = false;
  int64_t significant = 0;  // digits from the first nonzero one on
  int64_t frac_digits = 0;
  while (i < n) {
    char c = text[i];
    if (IsDigit(c)) {
      unsigned d = static_cast<unsigned>(c - '0');
      if (d != 0 || significant != 0) ++significant;
      mag_overflow = mag_overflow || __builtin_mul_overflow(mag, 10u, &mag) ||
                     __builtin_add_overflow(mag, d, &mag);
      if (have_dp) ++frac_digits;
      ++i;
    } else if (c == '.') {
      if (have_dp) return SyntaxError(text);
      have_dp = true;
      ++i;
    } else {
      break;
    }
  }
  const size_t digits_end = i;
  int64_t exponent = 0;
  if (i < n && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    // Postgres reads the exponent with strtol, which skips leading white space.
    while (i < n && IsSpace(text[i])) ++i;
    bool exp_negative = false;
    if (i < n && (text[i] == '+' || text[i] == '-')) {
      exp_negative = text[i] == '-';
      ++i;
    }
    if (i >= n || !IsDigit(text[i])) return SyntaxError(text);
    while (i < n && IsDigit(text[i])) {
      if (exponent < kMaxExponent) exponent = exponent * 10 + (text[i] - '0');
      ++i;
    }
    if (exponent >= kMaxExponent) return Status::InvalidArgument("value overflows numeric format");
    if (exp_negative) exponent = -exponent;
  }
  for (; i < n; ++i) {
    if (!IsSpace(text[i])) return SyntaxError(text);
  }

  int64_t dscale = frac_digits - exponent;
  if (dscale < 0) dscale = 0;
  if (dscale > kMaxDscale) return Status::InvalidArgument("value overflows numeric format");
  if (significant == 0) return FromUnscaled(0, static_cast<int32_t>(dscale));
  if (significant - frac_digits + exponent > kMaxIntegerDigits) {
    return Status::InvalidArgument("value overflows numeric format");
  }
  // value = digits * 10^(exponent - frac_digits) = unscaled * 10^-dscale
  const int64_t shift = dscale - (frac_digits - exponent);  // >= 0
  if (!mag_overflow && shift <= 19 && !__builtin_mul_overflow(mag, kPow10U64[shift], &mag)) {
    constexpr uint64_t kMaxPositive = static_cast<uint64_t>(INT64_MAX);
    if (mag <= kMaxPositive + (negative ? 1 : 0)) {
      int64_t v = negative ? static_cast<int64_t>(uint64_t{0} - mag) : static_cast<int64_t>(mag);
      return FromUnscaled(v, static_cast<int32_t>(dscale));
    }
  }
  std::string digits;
  digits.reserve(digits_end - digits_begin);
  for (size_t j = digits_begin; j < digits_end; ++j) {
    if (text[j] != '.') digits.push_back(text[j]);
  }
  mpz_class unscaled;
  // digits is a non-empty run of decimal digits, so mpz_set_str cannot fail.
  mpz_set_str(unscaled.get_mpz_t(), digits.c_str(), 10);
  MulPow10(unscaled, shift);
  if (negative) unscaled = -unscaled;
  return Numeric(std::move(unscaled), static_cast<int32_t>(dscale));
}

std::string Numeric::ToString() const {
  switch (kind_) {
    case Kind::kNaN:
      return "NaN";
    case Kind::kPosInf:
      return "Infinity";
    case Kind::kNegInf:
      return "-Infinity";
    case Kind::kFinite:
      break;
  }
  if (big_ == nullptr) {
    char buf[24];
    char* end = buf + sizeof buf;
    char* begin = FormatU64(Magnitude(small_), end);
    return LayOut(small_ < 0, std::string_view(begin, static_cast<size_t>(end - begin)), scale_);
  }
  std::string digits = mpz_class(abs(*big_)).get_str();
  return LayOut(sgn(*big_) < 0, digits, scale_);
}

Numeric::Numeric(mpz_class unscaled, int32_t scale) : scale_(scale) {
  if (mpz_fits_slong_p(unscaled.get_mpz_t())) {
    small_ = unscaled.get_si();
  } else {
    big_ = new mpz_class(std::move(unscaled));
  }
}

bool Numeric::Identical(const Numeric& o) const {
  if (kind_ != o.kind_ || scale_ != o.scale_) return false;
  if (big_ == nullptr || o.big_ == nullptr) return big_ == o.big_ && small_ == o.small_;
  return mpz_cmp(big_->get_mpz_t(), o.big_->get_mpz_t()) == 0;
}

Numeric Numeric::Add(const Numeric& o) const { return AddSigned(o, false); }

Numeric Numeric::Sub(const Numeric& o) const { return AddSigned(o, true); }

Numeric Numeric::AddSigned(const Numeric& o, bool negate_other) const {
  if (!is_finite() || !o.is_finite()) {
    Kind ok = o.kind_;
    if (negate_other && ok == Kind::kPosInf)
      ok = Kind::kNegInf;
    else if (negate_other && ok == Kind::kNegInf)
      ok = Kind::kPosInf;
    if (kind_ == Kind::kNaN || ok == Kind::kNaN) return NaN();
    if (!is_finite() && ok != Kind::kFinite) return kind_ == ok ? *this : NaN();
    return is_finite() ? Special(ok) : *this;
  }
  if (big_ == nullptr && o.big_ == nullptr) {
    int64_t a = small_, b = o.small_;
    bool aligned = scale_ >= o.scale_ ? MulPow10Int64(b, int64_t{scale_} - o.scale_, &b)
                                      : MulPow10Int64(a, int64_t{o.scale_} - scale_, &a);
    int64_t r;
    if (aligned &&
        !(negate_other ? __builtin_sub_overflow(a, b, &r) : __builtin_add_overflow(a, b, &r))) {
      return FromUnscaled(r, std::max(scale_, o.scale_));
    }
  }
  return AddBig(o, negate_other);
}

Numeric Numeric::AddBig(const Numeric& o, bool negate_other) const {
  mpz_class a = unscaled();
  mpz_class b = o.unscaled();
  if (negate_other) b = -b;
  if (scale_ > o.scale_) MulPow10(b, int64_t{scale_} - o.scale_);
  if (o.scale_ > scale_) MulPow10(a, int64_t{o.scale_} - scale_);
  a += b;
  return Numeric(std::move(a), std::max(scale_, o.scale_));
}

Numeric Numeric::Negate() const {
  switch (kind_) {
    case Kind::kNaN:
      return NaN();
    case Kind::kPosInf:
      return NegInf();
    case Kind::kNegInf:
      return PosInf();
    case Kind::kFinite:
      break;
  }
  if (big_ == nullptr && small_ != INT64_MIN) return FromUnscaled(-small_, scale_);
  return Numeric(-unscaled(), scale_);
}

Numeric Numeric::Mul(const Numeric& o) const {
  if (!is_finite() || !o.is_finite()) {
    if (kind_ == Kind::kNaN || o.kind_ == Kind::kNaN) return NaN();
    auto sign = [](const Numeric& x) -> int {
      if (x.kind_ == Kind::kPosInf) return 1;
      if (x.kind_ == Kind::kNegInf) return -1;
      return x.sign();
    };
    int s = sign(*this) * sign(o);
    if (s == 0) return NaN();  // Inf * 0
    return s > 0 ? PosInf() : NegInf();
  }
  int64_t scale = int64_t{scale_} + o.scale_;
  int64_t small_product;
  if (big_ == nullptr && o.big_ == nullptr && scale <= kMaxDscale &&
      !__builtin_mul_overflow(small_, o.small_, &small_product)) {
    return FromUnscaled(small_product, static_cast<int32_t>(scale));
  }
  mpz_class product = unscaled() * o.unscaled();
  if (scale > kMaxDscale) {
    product = RoundDown(product, scale - kMaxDscale);
    scale = kMaxDscale;
  }
  return Numeric(std::move(product), static_cast<int32_t>(scale));
}

Result<Numeric> Numeric::Div(const Numeric& o) const {
  if (!is_finite() || !o.is_finite()) {
    if (kind_ == Kind::kNaN || o.kind_ == Kind::kNaN) return NaN();
    if (!is_finite()) {
      if (!o.is_finite()) return NaN();  // Inf / Inf
      int s = o.sign();
      if (s == 0) return Status::InvalidArgument("division by zero");
      bool pos = (kind_ == Kind::kPosInf) == (s > 0);
      return pos ? PosInf() : NegInf();
    }
    return Numeric();  // finite / Inf: Postgres gives 0 (scale 0), not an underflow
  }
  if (o.sign() == 0) return Status::InvalidArgument("division by zero");

  // select_div_scale.
  int64_t weight1, first1, weight2, first2;
  WeightAndFirstDigit(*this, &weight1, &first1);
  WeightAndFirstDigit(o, &weight2, &first2);
  int64_t qweight = weight1 - weight2;
  if (first1 <= first2) --qweight;
  int64_t rscale = kMinSigDigits - qweight * kDecDigits;
  rscale = std::max<int64_t>(rscale, scale_);
  rscale = std::max<int64_t>(rscale, o.scale_);
  rscale = std::max<int64_t>(rscale, 0);
  rscale = std::min<int64_t>(rscale, kMaxDisplayScale);

  // quotient * 10^rscale = (u1 * 10^(s2 + rscale)) / (u2 * 10^s1), rounded half away from 0.
  mpz_class num = unscaled();
  MulPow10(num, o.scale_ + rscale);
  mpz_class den = o.unscaled();
  MulPow10(den, scale_);
  mpz_class q, r;
  mpz_tdiv_qr(q.get_mpz_t(), r.get_mpz_t(), num.get_mpz_t(), den.get_mpz_t());
  r = abs(r) * 2;
  if (mpz_cmpabs(r.get_mpz_t(), den.get_mpz_t()) >= 0) q += (sgn(num) * sgn(den) < 0 ? -1 : 1);
  return Numeric(std::move(q), static_cast<int32_t>(rscale));
}

Numeric Numeric::Rescale(int32_t scale) const {
  if (!is_finite()) return *this;
  if (big_ == nullptr) {
    int64_t r;
    if (scale >= scale_) {
      if (MulPow10Int64(small_, int64_t{scale} - scale_, &r)) return FromUnscaled(r, scale);
    } else if (int64_t{scale_} - scale <= 18) {
      const int64_t p = static_cast<int64_t>(kPow10U64[scale_ - scale]);
      int64_t q = small_ / p;
      // |remainder| < p <= 10^18, so twice it fits.
      if (2 * Magnitude(small_ % p) >= static_cast<uint64_t>(p)) q += small_ < 0 ? -1 : 1;
      if (scale >= 0) return FromUnscaled(q, scale);
      // Rounded to tens, hundreds, ...: Postgres keeps dscale 0.
      if (MulPow10Int64(q, -int64_t{scale}, &r)) return FromUnscaled(r, 0);
    }
  }
  if (scale >= scale_) {
    mpz_class u = unscaled();
    MulPow10(u, int64_t{scale} - scale_);
    return Numeric(std::move(u), scale);
  }
  mpz_class u = RoundDown(unscaled(), int64_t{scale_} - scale);
  if (scale < 0) {
    // Rounded to tens, hundreds, ...: Postgres keeps dscale 0.
    MulPow10(u, -int64_t{scale});
    scale = 0;
  }
  return Numeric(std::move(u), scale);
}

double Numeric::ToDouble() const {
  switch (kind_) {
    case Kind::kNaN:
      return std::nan("");
    case Kind::kPosInf:
      return HUGE_VAL;
    case Kind::kNegInf:
      return -HUGE_VAL;
    case Kind::kFinite:
      break;
  }
  // Both operands exact doubles and one correctly rounded division: the same double as
  // strtod gives for the text.
  if (big_ == nullptr && scale_ >= 0 && scale_ <= 22 && Magnitude(small_) <= (uint64_t{1} << 53)) {
    return static_cast<double>(small_) / kPow10Double[scale_];
  }
  // numeric_float8 goes through the text form; strtod rounds correctly.
  std::string s = ToString();
  return std::strtod(s.c_str(), nullptr);
}

int Numeric::Compare(const Numeric& o) const {
  auto rank = [](Kind k) {
    switch (k) {
      case Kind::kNegInf:
        return 0;
      case Kind::kFinite:
        return 1;
      case Kind::kPosInf:
        return 2;
      case Kind::kNaN:
        return 3;
    }
    return 3;
  };
  int ra = rank(kind_), rb = rank(o.kind_);
  if (ra != rb) return ra < rb ? -1 : 1;
  if (ra != 1) return 0;
  int sa = sign(), sb = o.sign();
  if (sa != sb) return sa < sb ? -1 : 1;
  if (big_ == nullptr && o.big_ == nullptr) {
    // An int64 times 10^18 still fits in __int128.
    int64_t diff = int64_t{scale_} - o.scale_;
    if (diff >= -18 && diff <= 18) {
      __int128 a = small_, b = o.small_;
      if (diff < 0) a *= static_cast<int64_t>(kPow10U64[-diff]);
      if (diff > 0) b *= static_cast<int64_t>(kPow10U64[diff]);
      return a < b ? -1 : (a > b ? 1 : 0);
    }
  }
  return CompareBig(o);
}

int Numeric::CompareBig(const Numeric& o) const {
  mpz_class a = unscaled();
  mpz_class b = o.unscaled();
  if (scale_ < o.scale_) MulPow10(a, int64_t{o.scale_} - scale_);
  if (scale_ > o.scale_) MulPow10(b, int64_t{scale_} - o.scale_);
  int c = mpz_cmp(a.get_mpz_t(), b.get_mpz_t());
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

}  // namespace tally
