// Value: one SQL datum (or NULL), held by representation (types.h, Repr) plus its type OID.
//
// Numeric is exact: an arbitrary-precision unscaled integer (held as an int64 when it fits,
// so typical values never touch GMP or the heap) and a display scale, as
// Postgres's numeric keeps dscale (1.50 has scale 2 and prints as 1.50). NaN and
// +-Infinity are kept as specials. Never converted through double.
//
// Text I/O (ParseText/FormatText) uses the formats tally's connections ask for:
// DateStyle=ISO, IntervalStyle=postgres, TimeZone=UTC, extra_float_digits=3.
#pragma once

#include <gmpxx.h>

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "tally/core/status.h"
#include "tally/core/types.h"

namespace tally {

class Numeric {
 public:
  enum class Kind : uint8_t { kFinite, kNaN, kPosInf, kNegInf };

  Numeric() = default;  // 0 with scale 0
  Numeric(mpz_class unscaled, int32_t scale);
  static Numeric FromUnscaled(int64_t unscaled, int32_t scale) {
    Numeric n;
    n.small_ = unscaled;
    n.scale_ = scale;
    return n;
  }
  static Numeric FromInt(int64_t v) { return FromUnscaled(v, 0); }
  static Numeric NaN() { return Special(Kind::kNaN); }
  static Numeric PosInf() { return Special(Kind::kPosInf); }
  static Numeric NegInf() { return Special(Kind::kNegInf); }

  Numeric(const Numeric& o) : small_(o.small_), scale_(o.scale_), kind_(o.kind_) {
    if (o.big_ != nullptr) big_ = new mpz_class(*o.big_);
  }
  Numeric(Numeric&& o) noexcept : small_(o.small_), big_(o.big_), scale_(o.scale_), kind_(o.kind_) {
    o.big_ = nullptr;
  }
  Numeric& operator=(const Numeric& o) {
    if (this != &o) *this = Numeric(o);
    return *this;
  }
  Numeric& operator=(Numeric&& o) noexcept {
    std::swap(small_, o.small_);
    std::swap(big_, o.big_);
    std::swap(scale_, o.scale_);
    std::swap(kind_, o.kind_);
    return *this;
  }
  ~Numeric() { delete big_; }

  // Postgres's numeric_in: "12.50", "-0.001", "1e3" (scale as Postgres gives it), "NaN",
  // "Infinity", "-Infinity".
  static Result<Numeric> Parse(std::string_view text);
  // Postgres's numeric_out: exactly scale() digits after the point.
  std::string ToString() const;

  Kind kind() const { return kind_; }
  bool is_finite() const { return kind_ == Kind::kFinite; }
  // A finite value whose unscaled integer fits in int64 (then small_unscaled() is it).
  // Canonical: a finite value is small exactly when its unscaled integer fits.
  bool is_small() const { return kind_ == Kind::kFinite && big_ == nullptr; }
  int64_t small_unscaled() const { return small_; }
  // The unscaled integer of a finite value that is not small; nullptr otherwise.
  const mpz_class* big_unscaled() const { return big_; }
  // The unscaled integer (0 for specials) as a fresh mpz: for the rare and slow callers.
  mpz_class unscaled() const {
    return big_ != nullptr ? *big_ : mpz_class(static_cast<long>(small_));
  }
  // -1, 0, 1: the sign of the unscaled integer (0 for specials).
  int sign() const { return big_ != nullptr ? sgn(*big_) : (small_ > 0) - (small_ < 0); }
  int32_t scale() const { return scale_; }
  // Same kind, scale and unscaled integer.
  bool Identical(const Numeric& o) const;

  // Arithmetic with Postgres's result scales: add/sub take the max scale, mul the sum
  // of scales, Div uses select_div_scale and rounds half away from zero (numeric_div).
  // Division by zero is an error ("division by zero"), as in Postgres.
  Numeric Add(const Numeric& o) const;
  Numeric Sub(const Numeric& o) const;
  Numeric Mul(const Numeric& o) const;
  Result<Numeric> Div(const Numeric& o) const;
  Numeric Negate() const;
  // Round to `scale` digits (half away from zero), as numeric(p, s) typmod coercion does.
  Numeric Rescale(int32_t scale) const;
  double ToDouble() const;
  // Postgres's numeric ordering: NaN sorts above everything (and equals NaN); scale ignored.
  int Compare(const Numeric& o) const;

 private:
  static Numeric Special(Kind k) {
    Numeric n;
    n.kind_ = k;
    return n;
  }
  // The GMP forms of the operations, for values that are not both small or on overflow.
  Numeric AddBig(const Numeric& o, bool negate_other) const;
  Numeric AddSigned(const Numeric& o, bool negate_other) const;
  int CompareBig(const Numeric& o) const;

  // A finite value is unscaled * 10^-scale_, with unscaled = small_ when big_ is null
  // (most values: no GMP allocation), else *big_ (which then does not fit in int64).
  int64_t small_ = 0;
  mpz_class* big_ = nullptr;
  int32_t scale_ = 0;
  Kind kind_ = Kind::kFinite;
};

struct Interval {
  int64_t micros = 0;
  int32_t days = 0;
  int32_t months = 0;
  bool operator==(const Interval&) const = default;
};

class Value {
 public:
  Value() = default;  // NULL of unknown type
  static Value Null(Oid type) {
    Value v;
    v.type_ = type;
    return v;
  }
  static Value Bool(bool b) { return Value(pgtype::kBool, b); }
  static Value Int(Oid type, int64_t v) { return Value(type, v); }
  static Value Float(Oid type, double v) { return Value(type, v); }
  static Value Num(Numeric n) { return Value(pgtype::kNumeric, std::move(n)); }
  static Value Text(Oid type, std::string s) { return Value(type, std::move(s)); }
  static Value Date(int64_t days) { return Value(pgtype::kDate, days); }
  static Value Timestamp(Oid type, int64_t micros) { return Value(type, micros); }
  static Value Interv(Interval i) { return Value(pgtype::kInterval, i); }

  // Parses Postgres's text output of `type` (as pgoutput or COPY gives it).
  static Result<Value> ParseText(Oid type, std::string_view text);
  // The same into `*out`, with no Result<Value> to move: for rows parsed over and over into
  // the same slots. On an error `*out` is left unspecified.
  static Status ParseTextInto(Oid type, std::string_view text, Value* out);
  // Postgres's text output of the value (what COPY ... FROM accepts). NULL is not handled here.
  std::string FormatText() const;

  bool is_null() const { return std::holds_alternative<std::monostate>(data_); }
  Oid type() const { return type_; }
  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return std::get<int64_t>(data_); }  // ints, date, timestamps
  double as_float() const { return std::get<double>(data_); }
  const Numeric& as_numeric() const { return std::get<Numeric>(data_); }
  const std::string& as_text() const { return std::get<std::string>(data_); }
  const Interval& as_interval() const { return std::get<Interval>(data_); }

  // Equality as GROUP BY sees it (NULL equals NULL; numeric 1.0 equals 1.00; float NaN
  // equals NaN and -0 equals 0; interval '1 mon' equals '30 days'; bpchar ignores trailing
  // spaces; text is compared bytewise, as texteq does for deterministic collations).
  bool GroupEquals(const Value& o) const;
  // Same type and the very same representation (numeric scale and float bits included):
  // what an encode/decode round trip must preserve.
  bool Identical(const Value& o) const;

 private:
  using Data = std::variant<std::monostate, bool, int64_t, double, Numeric, std::string, Interval>;
  template <typename T>
  Value(Oid type, T v) : data_(std::move(v)), type_(type) {}

  Data data_;
  Oid type_ = pgtype::kInvalid;
};

// Postgres's infinite dates and timestamps (DATEVAL_NOBEGIN/NOEND, DT_NOBEGIN/NOEND): the
// stored values of '-infinity' and 'infinity', which order below/above every finite value.
inline constexpr int64_t kDateNoBegin = -2147483647 - 1;
inline constexpr int64_t kDateNoEnd = 2147483647;
inline constexpr int64_t kTimestampNoBegin = -9223372036854775807 - 1;
inline constexpr int64_t kTimestampNoEnd = 9223372036854775807;

// float4out/float8out with extra_float_digits >= 1: the shortest text that reads back as
// the same value ("0.1", "1e+20", "NaN", "-Infinity"). float4 values are held as double
// and printed as the float they are.
std::string FormatFloat(Oid type, double v);
// Postgres's float ordering (float8_cmp_internal): NaN equals NaN and sorts above all; -0 = 0.
int CompareFloats(double a, double b);
// Postgres's interval ordering (interval_cmp_value): by total span with 30-day months and
// 24-hour days, so '1 mon' = '30 days'.
int CompareIntervals(const Interval& a, const Interval& b);

}  // namespace tally
