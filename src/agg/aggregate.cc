#include "tally/agg/aggregate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace tally::agg {
namespace {

bool KnownToPostgres(Oid t) { return TypeName(t) != "???"; }

Status NoSuchFunction(AggKind kind, Oid t) {
  return Status::InvalidArgument("function " + std::string(AggName(kind)) + "(" +
                                 std::string(TypeName(t)) + ") does not exist");
}

Status Unsupported(AggKind kind, Oid t) {
  std::string type =
      KnownToPostgres(t) ? std::string(TypeName(t)) : "type oid " + std::to_string(t);
  return Status::NotSupported(std::string(AggName(kind)) + "(" + type +
                              ") is not supported by tally");
}

mpz_class FromInt128(__int128 v) {
  bool neg = v < 0;
  unsigned __int128 m =
      neg ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  mpz_class hi(static_cast<unsigned long>(static_cast<uint64_t>(m >> 64)));
  mpz_class r = hi << 64;
  r += mpz_class(static_cast<unsigned long>(static_cast<uint64_t>(m)));
  return neg ? mpz_class(-r) : r;
}

void MulPow10(mpz_class& v, int64_t k) {
  if (k <= 0) return;
  mpz_class p;
  mpz_ui_pow_ui(p.get_mpz_t(), 10, static_cast<unsigned long>(k));
  v *= p;
}

// Exact double -> (odd mantissa, exponent) for finite nonzero d.
void SplitDouble(double d, int64_t* mant, int32_t* exp) {
  int e;
  double f = std::frexp(d, &e);  // d = f * 2^e, 0.5 <= |f| < 1
  int64_t m = static_cast<int64_t>(std::ldexp(f, 53));
  e -= 53;
  int tz = __builtin_ctzll(static_cast<uint64_t>(m < 0 ? -m : m));
  *mant = m >> tz;  // arithmetic shift of an exact multiple of 2^tz
  *exp = e + tz;
}

void AddFloat(Accumulator& acc, double d, int64_t weight) {
  if (d == 0) return;
  int64_t m;
  int32_t e;
  SplitDouble(d, &m, &e);
  thread_local mpz_class term;  // reused: no allocation per row
  term = static_cast<long>(m);
  term *= static_cast<long>(weight);
  if (acc.float_mant == 0) {
    acc.float_mant = term;
    acc.float_exp = e;
  } else if (e >= acc.float_exp) {
    acc.float_mant += term << static_cast<mp_bitcnt_t>(e - acc.float_exp);
  } else {
    acc.float_mant <<= static_cast<mp_bitcnt_t>(acc.float_exp - e);
    acc.float_mant += term;
    acc.float_exp = e;
  }
  if (acc.float_mant == 0) {
    acc.float_exp = 0;
    return;
  }
  mp_bitcnt_t tz = mpz_scan1(acc.float_mant.get_mpz_t(), 0);
  if (tz > 0) {
    mpz_fdiv_q_2exp(acc.float_mant.get_mpz_t(), acc.float_mant.get_mpz_t(), tz);
    acc.float_exp += static_cast<int32_t>(tz);
  }
}

// The exact float sum rounded once to the nearest double.
double FloatSum(const Accumulator& acc) {
  if (acc.float_mant == 0) return 0;
  const mpz_class& m = acc.float_mant;
  int64_t bits = static_cast<int64_t>(mpz_sizeinbase(m.get_mpz_t(), 2));
  int64_t exp = acc.float_exp;
  if (bits <= 62) return std::ldexp(static_cast<double>(m.get_si()), static_cast<int>(exp));
  // Keep 62 bits; fold the dropped bits into a sticky bit so the int64 -> double
  // conversion rounds to nearest correctly.
  mpz_class a = abs(m);
  int64_t shift = bits - 62;
  bool sticky = mpz_scan1(a.get_mpz_t(), 0) < static_cast<mp_bitcnt_t>(shift);
  mpz_fdiv_q_2exp(a.get_mpz_t(), a.get_mpz_t(), static_cast<mp_bitcnt_t>(shift));
  uint64_t top = static_cast<uint64_t>(a.get_ui()) | (sticky ? 1 : 0);
  double r = static_cast<double>(static_cast<int64_t>(top));
  int64_t e = exp + shift;
  if (e > 100000) e = 100000;  // ldexp saturates to inf anyway
  r = std::ldexp(r, static_cast<int>(e));
  return m < 0 ? -r : r;
}

int32_t MaxEntryScale(const Accumulator& acc) {
  return acc.scale_counts.empty() ? 0 : std::max(0, acc.scale_counts.back().first);
}

// num_sum += v, with no temporary mpz when v fits in 64 bits.
void AddInt128(mpz_class& sum, __int128 v) {
  unsigned __int128 m =
      v < 0 ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  if (m >> 64 == 0) {
    if (v < 0) {
      mpz_sub_ui(sum.get_mpz_t(), sum.get_mpz_t(), static_cast<unsigned long>(m));
    } else {
      mpz_add_ui(sum.get_mpz_t(), sum.get_mpz_t(), static_cast<unsigned long>(m));
    }
    return;
  }
  thread_local mpz_class term;
  term = FromInt128(v);
  sum += term;
}

void AddScaled(Accumulator& acc, const Numeric& n, int64_t weight) {
  const int32_t s = n.scale();
  // The exact sum at scale max(old, s).
  int32_t w = std::max(acc.num_scale, s);
  MulPow10(acc.num_sum, int64_t{w} - acc.num_scale);
  thread_local mpz_class term;  // reused: no allocation per row
  if (n.is_small()) {
    term = static_cast<long>(n.small_unscaled());
  } else {
    term = *n.big_unscaled();
  }
  MulPow10(term, int64_t{w} - s);
  term *= static_cast<long>(weight);
  acc.num_sum += term;
  acc.num_scale = w;
}

void AddNumeric(Accumulator& acc, const Numeric& n, int64_t weight) {
  const int32_t s = n.scale();
  // The multiset of input scales.
  auto it = std::lower_bound(acc.scale_counts.begin(), acc.scale_counts.end(), s,
                             [](const auto& e, int32_t v) { return e.first < v; });
  if (it != acc.scale_counts.end() && it->first == s) {
    it->second += weight;
    if (it->second == 0) acc.scale_counts.erase(it);
  } else {
    acc.scale_counts.insert(it, {s, weight});
  }
  // The exact sum at scale max(old, s). Same scale (the common case) needs no temporary.
  if (s == acc.num_scale && n.is_small()) {
    AddInt128(acc.num_sum, static_cast<__int128>(n.small_unscaled()) * weight);
  } else if (s == acc.num_scale) {
    if (weight >= 0) {
      mpz_addmul_ui(acc.num_sum.get_mpz_t(), n.big_unscaled()->get_mpz_t(),
                    static_cast<unsigned long>(weight));
    } else {
      mpz_submul_ui(acc.num_sum.get_mpz_t(), n.big_unscaled()->get_mpz_t(),
                    static_cast<unsigned long>(-static_cast<__int128>(weight)));
    }
  } else {
    AddScaled(acc, n, weight);
  }
  // Canonical scale: max(largest input scale, digits the sum needs).
  int32_t target = MaxEntryScale(acc);
  if (acc.num_sum == 0) {
    acc.num_scale = target;
    return;
  }
  while (acc.num_scale > target && mpz_divisible_ui_p(acc.num_sum.get_mpz_t(), 10)) {
    mpz_divexact_ui(acc.num_sum.get_mpz_t(), acc.num_sum.get_mpz_t(), 10);
    --acc.num_scale;
  }
}

// Numeric value of the exact numeric sum, at Postgres's dscale (largest input scale).
Numeric NumericSum(const Accumulator& acc) {
  Numeric n(acc.num_sum, acc.num_scale);
  int32_t display = MaxEntryScale(acc);
  return display == acc.num_scale ? n : n.Rescale(display);
}

// Postgres's answer when NaN or infinities were summed: NaN wins, +Inf plus -Inf is NaN.
// Returns 0 when there were none, else 1 (+Inf), -1 (-Inf), 2 (NaN).
int SpecialOutcome(const Accumulator& acc) {
  if (acc.nan_count != 0) return 2;
  if (acc.pinf_count != 0 && acc.ninf_count != 0) return 2;
  if (acc.pinf_count != 0) return 1;
  if (acc.ninf_count != 0) return -1;
  return 0;
}

Numeric SpecialNumeric(int outcome) {
  if (outcome == 2) return Numeric::NaN();
  return outcome > 0 ? Numeric::PosInf() : Numeric::NegInf();
}

double SpecialDouble(int outcome) {
  if (outcome == 2) return std::nan("");
  return outcome > 0 ? HUGE_VAL : -HUGE_VAL;
}

Status OverflowFloat() { return Status::InvalidArgument("value out of range: overflow"); }
Status OverflowInterval() { return Status::InvalidArgument("interval out of range"); }

template <typename T>
bool Fits(__int128 v) {
  return v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
}

Result<Interval> SumInterval(const Accumulator& acc) {
  if (!Fits<int32_t>(acc.iv_months) || !Fits<int32_t>(acc.iv_days) ||
      !Fits<int64_t>(acc.iv_micros)) {
    return OverflowInterval();
  }
  Interval iv;
  iv.months = static_cast<int32_t>(acc.iv_months);
  iv.days = static_cast<int32_t>(acc.iv_days);
  iv.micros = static_cast<int64_t>(acc.iv_micros);
  return iv;
}

// TSROUND: round to microsecond precision in floating point (timestamp.h).
double TsRound(double j) { return std::rint(j * 1000000.0) / 1000000.0; }

// interval_div of Postgres 15 (timestamp.c), operation for operation.
Result<Interval> IntervalDiv(const Interval& span, double factor) {
  if (factor == 0.0) return Status::InvalidArgument("division by zero");
  constexpr double kDaysPerMonth = 30;
  constexpr double kSecsPerDay = 86400;
  Interval result;
  int32_t orig_month = span.months, orig_day = span.days;
  result.months = static_cast<int32_t>(span.months / factor);
  result.days = static_cast<int32_t>(span.days / factor);
  double month_remainder_days = (orig_month / factor - result.months) * kDaysPerMonth;
  month_remainder_days = TsRound(month_remainder_days);
  double sec_remainder = (orig_day / factor - result.days + month_remainder_days -
                          static_cast<int>(month_remainder_days)) *
                         kSecsPerDay;
  sec_remainder = TsRound(sec_remainder);
  if (std::fabs(sec_remainder) >= kSecsPerDay) {
    result.days += static_cast<int>(sec_remainder / kSecsPerDay);
    sec_remainder -= static_cast<int>(sec_remainder / kSecsPerDay) * kSecsPerDay;
  }
  result.days += static_cast<int32_t>(month_remainder_days);
  double t = std::rint(static_cast<double>(span.micros) / factor + sec_remainder * 1000000.0);
  if (std::isnan(t) || t < -9.2233720368547758e18 || t >= 9.2233720368547758e18) {
    return OverflowInterval();
  }
  result.micros = static_cast<int64_t>(t);
  return result;
}

bool Orderable(Oid t) {
  switch (t) {
    case pgtype::kInt2:
    case pgtype::kInt4:
    case pgtype::kInt8:
    case pgtype::kOid:
    case pgtype::kFloat4:
    case pgtype::kFloat8:
    case pgtype::kNumeric:
    case pgtype::kText:
    case pgtype::kVarchar:
    case pgtype::kBpchar:
    case pgtype::kName:
    case pgtype::kDate:
    case pgtype::kTimestamp:
    case pgtype::kTimestampTz:
    case pgtype::kInterval:
      return true;
    default:
      return false;
  }
}

// Types Postgres 15 has no min/max for (among those tally names).
bool NoMinMaxInPostgres(Oid t) {
  switch (t) {
    case pgtype::kBool:
    case pgtype::kBytea:
    case pgtype::kJson:
    case pgtype::kJsonb:
    case pgtype::kUuid:
    case pgtype::kUnknown:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string_view AggName(AggKind kind) {
  switch (kind) {
    case AggKind::kCountStar:
    case AggKind::kCount:
      return "count";
    case AggKind::kSum:
      return "sum";
    case AggKind::kAvg:
      return "avg";
    case AggKind::kMin:
      return "min";
    case AggKind::kMax:
      return "max";
  }
  return "?";
}

Result<AggSpec> MakeAggSpec(AggKind kind, bool distinct, Oid input_type) {
  AggSpec spec;
  spec.kind = kind;
  spec.distinct = distinct;
  spec.input_type = input_type;
  if (kind == AggKind::kCountStar) {
    if (distinct) return Status::InvalidArgument("count(DISTINCT *) is not valid SQL");
    spec.input_type = pgtype::kInvalid;
    spec.result_type = pgtype::kInt8;
    return spec;
  }
  if (distinct && kind != AggKind::kCount) {
    return Status::NotSupported(
        std::string(AggName(kind)) +
        "(DISTINCT ...) is not supported by tally (only count(DISTINCT ...))");
  }
  switch (kind) {
    case AggKind::kCountStar:
    case AggKind::kCount:
      spec.result_type = pgtype::kInt8;
      return spec;
    case AggKind::kSum:
    case AggKind::kAvg: {
      bool avg = kind == AggKind::kAvg;
      switch (input_type) {
        case pgtype::kInt2:
        case pgtype::kInt4:
          spec.result_type = avg ? pgtype::kNumeric : pgtype::kInt8;
          return spec;
        case pgtype::kInt8:
        case pgtype::kNumeric:
          spec.result_type = pgtype::kNumeric;
          return spec;
        case pgtype::kFloat4:
          spec.result_type = avg ? pgtype::kFloat8 : pgtype::kFloat4;
          return spec;
        case pgtype::kFloat8:
          spec.result_type = pgtype::kFloat8;
          return spec;
        case pgtype::kInterval:
          spec.result_type = pgtype::kInterval;
          return spec;
        default:
          if (KnownToPostgres(input_type)) return NoSuchFunction(kind, input_type);
          return Unsupported(kind, input_type);
      }
    }
    case AggKind::kMin:
    case AggKind::kMax:
      if (Orderable(input_type)) {
        spec.result_type = (input_type == pgtype::kVarchar || input_type == pgtype::kName)
                               ? pgtype::kText
                               : input_type;
        return spec;
      }
      if (NoMinMaxInPostgres(input_type)) return NoSuchFunction(kind, input_type);
      return Unsupported(kind, input_type);
  }
  return Status::InvalidArgument("unknown aggregate kind");
}

bool Accumulator::operator==(const Accumulator& o) const {
  return count == o.count && int_sum == o.int_sum && num_sum == o.num_sum &&
         num_scale == o.num_scale && scale_counts == o.scale_counts && float_mant == o.float_mant &&
         float_exp == o.float_exp && nan_count == o.nan_count && pinf_count == o.pinf_count &&
         ninf_count == o.ninf_count && iv_months == o.iv_months && iv_days == o.iv_days &&
         iv_micros == o.iv_micros;
}

bool Accumulator::IsEmpty() const { return *this == Accumulator(); }

void Apply(const AggSpec& spec, Accumulator& acc, const Value& input, int64_t weight) {
  if (spec.kind == AggKind::kCountStar) {
    acc.count += weight;
    return;
  }
  if (input.is_null()) return;
  acc.count += weight;
  if (spec.kind != AggKind::kSum && spec.kind != AggKind::kAvg) return;
  switch (ReprOf(input.type())) {
    case Repr::kInt:
      if (spec.input_type == pgtype::kNumeric) {
        AddNumeric(acc, Numeric::FromInt(input.as_int()), weight);
      } else if (spec.input_type == pgtype::kFloat4 || spec.input_type == pgtype::kFloat8) {
        AddFloat(acc, static_cast<double>(input.as_int()), weight);
      } else {
        acc.int_sum += static_cast<__int128>(input.as_int()) * weight;
      }
      return;
    case Repr::kNumeric: {
      const Numeric& n = input.as_numeric();
      switch (n.kind()) {
        case Numeric::Kind::kNaN:
          acc.nan_count += weight;
          return;
        case Numeric::Kind::kPosInf:
          acc.pinf_count += weight;
          return;
        case Numeric::Kind::kNegInf:
          acc.ninf_count += weight;
          return;
        case Numeric::Kind::kFinite:
          AddNumeric(acc, n, weight);
          return;
      }
      return;
    }
    case Repr::kFloat: {
      double d = input.as_float();
      if (std::isnan(d)) {
        acc.nan_count += weight;
      } else if (std::isinf(d)) {
        (d > 0 ? acc.pinf_count : acc.ninf_count) += weight;
      } else {
        AddFloat(acc, d, weight);
      }
      return;
    }
    case Repr::kInterval: {
      const Interval& iv = input.as_interval();
      acc.iv_months += static_cast<__int128>(iv.months) * weight;
      acc.iv_days += static_cast<__int128>(iv.days) * weight;
      acc.iv_micros += static_cast<__int128>(iv.micros) * weight;
      return;
    }
    default:
      return;  // MakeAggSpec admits no other input to sum/avg
  }
}

Result<Value> Finalize(const AggSpec& spec, const Accumulator& acc) {
  if (acc.count < 0) {
    return Status::Internal("aggregate state has a negative count (" + std::to_string(acc.count) +
                            "): more rows retracted than inserted");
  }
  switch (spec.kind) {
    case AggKind::kCountStar:
    case AggKind::kCount:
      return Value::Int(pgtype::kInt8, acc.count);
    case AggKind::kMin:
    case AggKind::kMax:
      return Status::InvalidArgument("min/max are read from the value multiset, not finalized");
    case AggKind::kSum:
    case AggKind::kAvg:
      break;
  }
  const bool avg = spec.kind == AggKind::kAvg;
  if (acc.count == 0) return Value::Null(spec.result_type);
  switch (spec.input_type) {
    case pgtype::kInt2:
    case pgtype::kInt4:
    case pgtype::kInt8: {
      if (!avg && spec.input_type != pgtype::kInt8) {
        if (!Fits<int64_t>(acc.int_sum)) return Status::InvalidArgument("bigint out of range");
        return Value::Int(pgtype::kInt8, static_cast<int64_t>(acc.int_sum));
      }
      Numeric sum(FromInt128(acc.int_sum), 0);
      if (!avg) return Value::Num(std::move(sum));
      TALLY_ASSIGN_OR_RETURN(Numeric q, sum.Div(Numeric::FromInt(acc.count)));
      return Value::Num(std::move(q));
    }
    case pgtype::kNumeric: {
      int special = SpecialOutcome(acc);
      if (special != 0) return Value::Num(SpecialNumeric(special));
      Numeric sum = NumericSum(acc);
      if (!avg) return Value::Num(std::move(sum));
      TALLY_ASSIGN_OR_RETURN(Numeric q, sum.Div(Numeric::FromInt(acc.count)));
      return Value::Num(std::move(q));
    }
    case pgtype::kFloat4:
    case pgtype::kFloat8: {
      int special = SpecialOutcome(acc);
      if (special != 0) return Value::Float(spec.result_type, SpecialDouble(special));
      double sum = FloatSum(acc);
      if (std::isinf(sum)) return OverflowFloat();
      if (avg) return Value::Float(pgtype::kFloat8, sum / static_cast<double>(acc.count));
      if (spec.result_type == pgtype::kFloat4) {
        float f = static_cast<float>(sum);
        if (std::isinf(f)) return OverflowFloat();
        return Value::Float(pgtype::kFloat4, f);
      }
      return Value::Float(pgtype::kFloat8, sum);
    }
    case pgtype::kInterval: {
      TALLY_ASSIGN_OR_RETURN(Interval sum, SumInterval(acc));
      if (!avg) return Value::Interv(sum);
      TALLY_ASSIGN_OR_RETURN(Interval q, IntervalDiv(sum, static_cast<double>(acc.count)));
      return Value::Interv(q);
    }
    default:
      return Unsupported(spec.kind, spec.input_type);
  }
}

}  // namespace tally::agg
