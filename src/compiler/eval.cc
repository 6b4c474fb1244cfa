#include "tally/compiler/eval.h"

#include <date/tz.h>

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstring>
#include <exception>

#include "datetime.h"
#include "eval_internal.h"
#include "tally/core/collation.h"

namespace tally::compiler {
namespace {

using internal::CastValue;
using internal::CompareValues;

Status Err(std::string m) { return Status::InvalidArgument(std::move(m)); }

const char* IntRangeError(Oid t) {
  switch (t) {
    case pgtype::kInt2:
      return "smallint out of range";
    case pgtype::kInt4:
      return "integer out of range";
    default:
      return "bigint out of range";
  }
}

bool IntFits(Oid t, int64_t v) {
  switch (t) {
    case pgtype::kInt2:
      return v >= INT16_MIN && v <= INT16_MAX;
    case pgtype::kInt4:
      return v >= INT32_MIN && v <= INT32_MAX;
    default:
      return true;
  }
}

mpz_class Pow10(int n) {
  mpz_class r;
  mpz_ui_pow_ui(r.get_mpz_t(), 10, static_cast<unsigned long>(n));
  return r;
}

enum class RoundMode { kRound, kTrunc, kFloor, kCeil };

// Rounds to `scale` digits after the point (negative: to tens, hundreds...), keeping Postgres's
// display scale max(scale, 0).
Numeric RoundNumeric(const Numeric& n, int scale, RoundMode mode) {
  if (!n.is_finite()) return n;
  // Rescale rounds half away from zero too, without GMP for int64-sized values.
  if (mode == RoundMode::kRound) return n.Rescale(scale);
  if (scale >= n.scale()) {
    if (mode == RoundMode::kFloor || mode == RoundMode::kCeil) return n;
    return Numeric(mpz_class(n.unscaled() * Pow10(scale - n.scale())), scale);
  }
  mpz_class div = Pow10(n.scale() - scale);
  mpz_class q, r;
  switch (mode) {
    case RoundMode::kFloor:
      mpz_fdiv_q(q.get_mpz_t(), n.unscaled().get_mpz_t(), div.get_mpz_t());
      break;
    case RoundMode::kCeil:
      mpz_cdiv_q(q.get_mpz_t(), n.unscaled().get_mpz_t(), div.get_mpz_t());
      break;
    case RoundMode::kTrunc:
      mpz_tdiv_q(q.get_mpz_t(), n.unscaled().get_mpz_t(), div.get_mpz_t());
      break;
    case RoundMode::kRound: {
      mpz_tdiv_qr(q.get_mpz_t(), r.get_mpz_t(), n.unscaled().get_mpz_t(), div.get_mpz_t());
      mpz_class twice = abs(r) * 2;
      if (twice >= div) q += sgn(n.unscaled());
      break;
    }
  }
  if (scale >= 0) return Numeric(q, scale);
  return Numeric(mpz_class(q * Pow10(-scale)), 0);
}

Result<Numeric> NumericMod(const Numeric& a, const Numeric& b) {
  if (!a.is_finite() || !b.is_finite()) {
    if (a.kind() == Numeric::Kind::kNaN || b.kind() == Numeric::Kind::kNaN) return Numeric::NaN();
    if (!a.is_finite()) return Numeric::NaN();
    return a;
  }
  if (b.unscaled() == 0) return Err("division by zero");
  int s = std::max(a.scale(), b.scale());
  mpz_class ua = a.unscaled() * Pow10(s - a.scale());
  mpz_class ub = b.unscaled() * Pow10(s - b.scale());
  mpz_class r;
  mpz_tdiv_r(r.get_mpz_t(), ua.get_mpz_t(), ub.get_mpz_t());
  return Numeric(r, s);
}

Result<double> CheckFloat(double r, double a, double b, bool is_float4, bool zero_ok) {
  if (std::isinf(r) && !std::isinf(a) && !std::isinf(b)) {
    return Err("value out of range: overflow");
  }
  if (!zero_ok && r == 0.0 && a != 0.0 && !is_float4) {
    return Err("value out of range: underflow");
  }
  return r;
}

// + - * / in the precision of the type (float4 arithmetic happens in float, as float4pl does).
template <typename F>
Result<F> FloatOp(ArithOp op, F a, F b, const char* type_name) {
  switch (op) {
    case ArithOp::kAdd:
      return a + b;
    case ArithOp::kSub:
      return a - b;
    case ArithOp::kMul:
      return a * b;
    case ArithOp::kDiv:
      if (b == F(0)) return Err("division by zero");
      return a / b;
    default:
      return Err(std::string("operator does not exist for ") + type_name);
  }
}

Result<Value> FloatArith(ArithOp op, Oid type, double a, double b) {
  if (type == pgtype::kFloat4) {
    float fa = static_cast<float>(a), fb = static_cast<float>(b);
    TALLY_ASSIGN_OR_RETURN(float fr, FloatOp(op, fa, fb, "real"));
    if (std::isinf(fr) && !std::isinf(fa) && !std::isinf(fb)) {
      return Err("value out of range: overflow");
    }
    if (fr == 0.0f && (op == ArithOp::kMul || op == ArithOp::kDiv) && fa != 0.0f &&
        !(op == ArithOp::kMul && fb == 0.0f) && !std::isinf(fb)) {
      return Err("value out of range: underflow");
    }
    return Value::Float(type, fr);
  }
  TALLY_ASSIGN_OR_RETURN(double r, FloatOp(op, a, b, "double precision"));
  bool zero_ok = op == ArithOp::kMul   ? a == 0.0 || b == 0.0
                 : op == ArithOp::kDiv ? a == 0.0 || std::isinf(b)
                                       : true;
  TALLY_ASSIGN_OR_RETURN(r, CheckFloat(r, a, b, false, zero_ok));
  return Value::Float(type, r);
}

Result<Value> IntArith(ArithOp op, Oid type, int64_t a, int64_t b) {
  int64_t r = 0;
  switch (op) {
    case ArithOp::kAdd:
      if (__builtin_add_overflow(a, b, &r)) return Err(IntRangeError(type));
      break;
    case ArithOp::kSub:
      if (__builtin_sub_overflow(a, b, &r)) return Err(IntRangeError(type));
      break;
    case ArithOp::kMul:
      if (__builtin_mul_overflow(a, b, &r)) return Err(IntRangeError(type));
      break;
    case ArithOp::kDiv:
      if (b == 0) return Err("division by zero");
      if (b == -1) {
        if (__builtin_sub_overflow(int64_t{0}, a, &r)) return Err(IntRangeError(type));
      } else {
        r = a / b;
      }
      break;
    case ArithOp::kMod:
      if (b == 0) return Err("division by zero");
      r = b == -1 ? 0 : a % b;
      break;
    default:
      return Err("operator does not exist for integers");
  }
  if (!IntFits(type, r)) return Err(IntRangeError(type));
  return Value::Int(type, r);
}

Result<Value> NumericArith(ArithOp op, const Numeric& a, const Numeric& b) {
  switch (op) {
    case ArithOp::kAdd:
      return Value::Num(a.Add(b));
    case ArithOp::kSub:
      return Value::Num(a.Sub(b));
    case ArithOp::kMul:
      return Value::Num(a.Mul(b));
    case ArithOp::kDiv: {
      TALLY_ASSIGN_OR_RETURN(Numeric q, a.Div(b));
      return Value::Num(std::move(q));
    }
    case ArithOp::kMod: {
      TALLY_ASSIGN_OR_RETURN(Numeric m, NumericMod(a, b));
      return Value::Num(std::move(m));
    }
    default:
      return Err("operator does not exist for numeric");
  }
}

Result<Value> IntervalArith(const Expr& e, const Value& a, const Value& b, const EvalContext& ctx) {
  auto op = static_cast<ArithOp>(e.op);
  Oid at = a.type(), bt = b.type();
  if (e.type == pgtype::kInterval) {
    if (at == pgtype::kInterval && bt == pgtype::kInterval) {
      TALLY_ASSIGN_OR_RETURN(Interval r, op == ArithOp::kSub
                                             ? dt::IntervalSub(a.as_interval(), b.as_interval())
                                             : dt::IntervalAdd(a.as_interval(), b.as_interval()));
      return Value::Interv(r);
    }
    if (at == pgtype::kInterval || bt == pgtype::kInterval) {  // interval * / float8
      const Interval& iv = at == pgtype::kInterval ? a.as_interval() : b.as_interval();
      double f = at == pgtype::kInterval ? b.as_float() : a.as_float();
      TALLY_ASSIGN_OR_RETURN(Interval r,
                             op == ArithOp::kDiv ? dt::IntervalDiv(iv, f) : dt::IntervalMul(iv, f));
      return Value::Interv(r);
    }
    // timestamp - timestamp
    TALLY_ASSIGN_OR_RETURN(Interval r, dt::TimestampDiff(a.as_int(), b.as_int()));
    return Value::Interv(r);
  }
  // timestamp[tz] +/- interval, interval + timestamp[tz]
  bool ts_left = at != pgtype::kInterval;
  int64_t ts = ts_left ? a.as_int() : b.as_int();
  Interval iv = ts_left ? b.as_interval() : a.as_interval();
  if (op == ArithOp::kSub) {
    // timestamp_mi_interval negates each field without an overflow check.
    iv = Interval{static_cast<int64_t>(0 - static_cast<uint64_t>(iv.micros)),
                  static_cast<int32_t>(0 - static_cast<uint32_t>(iv.days)),
                  static_cast<int32_t>(0 - static_cast<uint32_t>(iv.months))};
  }
  bool tz = e.type == pgtype::kTimestampTz;
  TALLY_ASSIGN_OR_RETURN(int64_t r, dt::AddInterval(ts, iv, tz, ctx.session_zone));
  return Value::Timestamp(e.type, r);
}

Result<Value> Arith(const Expr& e, const Value& a, const Value& b, const EvalContext& ctx) {
  auto op = static_cast<ArithOp>(e.op);
  Oid at = a.type(), bt = b.type();
  if (op == ArithOp::kConcat) {
    std::string s = a.as_text();
    s += b.as_text();
    return Value::Text(e.type, std::move(s));
  }
  if (e.type == pgtype::kInterval || at == pgtype::kInterval || bt == pgtype::kInterval) {
    return IntervalArith(e, a, b, ctx);
  }
  if (at == pgtype::kDate || bt == pgtype::kDate) {
    if (at == pgtype::kDate && bt == pgtype::kDate) {  // date - date: int4 days
      int64_t r = a.as_int() - b.as_int();
      if (!IntFits(pgtype::kInt4, r)) return Err("integer out of range");
      return Value::Int(pgtype::kInt4, r);
    }
    int64_t days = at == pgtype::kDate ? a.as_int() : b.as_int();
    int64_t n = at == pgtype::kDate ? b.as_int() : a.as_int();
    int64_t r = op == ArithOp::kSub ? days - n : days + n;
    if (r < -datetime::kPostgresEpochJdate || r > 2147483494LL - datetime::kPostgresEpochJdate) {
      return Err("date out of range");
    }
    return Value::Date(r);
  }
  switch (ReprOf(e.type)) {
    case Repr::kInt:
      return IntArith(op, e.type, a.as_int(), b.as_int());
    case Repr::kFloat:
      return FloatArith(op, e.type, a.as_float(), b.as_float());
    case Repr::kNumeric:
      return NumericArith(op, a.as_numeric(), b.as_numeric());
    default:
      break;
  }
  return Err("operator is not supported for type " + std::string(TypeName(e.type)));
}

// The field value of a date/time for EXTRACT / date_part, as a scaled integer
// (value = unscaled / 10^scale).
struct FieldValue {
  int64_t unscaled = 0;
  int scale = 0;
};

Result<FieldValue> ExtractField(dt::Unit unit, const Value& v, const EvalContext& ctx) {
  Oid t = v.type();
  dt::Civil c;
  int64_t epoch_usec = 0;  // microseconds since 1970 (absolute for timestamptz)
  int64_t days = 0;
  if (t == pgtype::kDate) {
    days = v.as_int();
    c = dt::CivilFromDays(days);
    epoch_usec = (days + dt::kUnixEpochDays) * dt::kUsecsPerDay;
  } else {
    int64_t ts = v.as_int();
    epoch_usec = ts + dt::kUnixEpochUsecs;
    int64_t local = t == pgtype::kTimestampTz ? dt::UtcToLocal(ctx.session_zone, ts) : ts;
    c = dt::CivilFromTimestamp(local);
    days = dt::FloorDiv(local, dt::kUsecsPerDay);
  }
  int64_t usec_in_min = c.second * dt::kUsecsPerSec + c.usec;
  switch (unit) {
    case dt::Unit::kMicroseconds:
      return FieldValue{usec_in_min, 0};
    case dt::Unit::kMilliseconds:
      return FieldValue{usec_in_min, 3};
    case dt::Unit::kSecond:
      return FieldValue{usec_in_min, 6};
    case dt::Unit::kMinute:
      return FieldValue{c.minute, 0};
    case dt::Unit::kHour:
      return FieldValue{c.hour, 0};
    case dt::Unit::kDay:
      return FieldValue{c.day, 0};
    case dt::Unit::kMonth:
      return FieldValue{c.month, 0};
    case dt::Unit::kQuarter:
      return FieldValue{(c.month - 1) / 3 + 1, 0};
    case dt::Unit::kWeek:
      return FieldValue{dt::IsoWeek(c.year, c.month, c.day), 0};
    case dt::Unit::kYear:
      return FieldValue{c.year > 0 ? c.year : c.year - 1, 0};
    case dt::Unit::kDecade:
      return FieldValue{c.year >= 0 ? c.year / 10 : -((8 - (c.year - 1)) / 10), 0};
    case dt::Unit::kCentury:
      return FieldValue{c.year > 0 ? (c.year + 99) / 100 : -((99 - (c.year - 1)) / 100), 0};
    case dt::Unit::kMillennium:
      return FieldValue{c.year > 0 ? (c.year + 999) / 1000 : -((999 - (c.year - 1)) / 1000), 0};
    case dt::Unit::kDow:
      return FieldValue{dt::DayOfWeek(days), 0};
    case dt::Unit::kIsoDow: {
      int d = dt::DayOfWeek(days);
      return FieldValue{d == 0 ? 7 : d, 0};
    }
    case dt::Unit::kDoy:
      return FieldValue{days - dt::DaysFromCivil(c.year, 1, 1) + 1, 0};
    case dt::Unit::kIsoYear:
      return FieldValue{dt::IsoYear(c.year, c.month, c.day), 0};
    case dt::Unit::kEpoch:
      if (t == pgtype::kDate) return FieldValue{epoch_usec / dt::kUsecsPerSec, 0};
      return FieldValue{epoch_usec, 6};
    default:
      return Err("unit is not supported by EXTRACT");
  }
}

// date_part's float8 result, computed as Postgres's float code does.
double FieldAsFloat(dt::Unit unit, const FieldValue& f, const Value& v) {
  if (unit == dt::Unit::kEpoch && v.type() != pgtype::kDate) {
    return (static_cast<double>(v.as_int()) - static_cast<double>(-dt::kUnixEpochUsecs)) /
           1000000.0;
  }
  if (unit == dt::Unit::kSecond) {
    return static_cast<double>(f.unscaled / 1000000) +
           static_cast<double>(f.unscaled % 1000000) / 1000000.0;
  }
  if (unit == dt::Unit::kMilliseconds) {
    return static_cast<double>(f.unscaled / 1000000) * 1000.0 +
           static_cast<double>(f.unscaled % 1000000) / 1000.0;
  }
  return static_cast<double>(f.unscaled);
}

Result<const date::time_zone*> ZoneArg(const Expr& e, const Value* zone_value) {
  if (e.zone != nullptr) return e.zone;
  return FindTimeZone(zone_value->as_text());
}

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

// pg_utf_mblen: the byte length of the character starting with `c`.
size_t Utf8CharLen(unsigned char c) {
  if ((c & 0x80) == 0) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

// Byte offset just past the first `n` characters of s (s.size() if it has fewer).
size_t CharOffset(std::string_view s, int64_t n) {
  size_t off = 0;
  while (n > 0 && off < s.size()) {
    off += Utf8CharLen(static_cast<unsigned char>(s[off]));
    --n;
  }
  return std::min(off, s.size());
}

// Postgres's MatchText (backend/utils/adt/like_match.c) for UTF-8: '%' any sequence, '_' one
// character, '\' escapes the next byte. 1 match, 0 no match, -1 no match anywhere later.
constexpr int kLikeTrue = 1, kLikeFalse = 0, kLikeAbort = -1;

// ILIKE (fold) compares bytes with ASCII letters folded, as SB_IMatchText does; folding bytes
// is safe in UTF-8, where ASCII bytes never occur inside a multibyte character.
inline char FoldByte(char c, bool fold) {
  return fold && c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

Result<int> MatchText(const char* t, size_t tlen, const char* p, size_t plen, bool fold) {
  auto next_byte = [](const char*& x, size_t& len) {
    ++x;
    --len;
  };
  auto next_char = [](const char*& x, size_t& len) {
    size_t l = std::min(Utf8CharLen(static_cast<unsigned char>(*x)), len);
    x += l;
    len -= l;
  };
  auto ends_with_escape = []() { return Err("LIKE pattern must not end with escape character"); };
  if (plen == 1 && *p == '%') return kLikeTrue;
  while (tlen > 0 && plen > 0) {
    if (*p == '\\') {
      next_byte(p, plen);
      if (plen == 0) return ends_with_escape();
      if (FoldByte(*p, fold) != FoldByte(*t, fold)) return kLikeFalse;
    } else if (*p == '%') {
      next_byte(p, plen);
      while (plen > 0) {
        if (*p == '%') {
          next_byte(p, plen);
        } else if (*p == '_') {
          if (tlen == 0) return kLikeAbort;
          next_char(t, tlen);
          next_byte(p, plen);
        } else {
          break;
        }
      }
      if (plen == 0) return kLikeTrue;
      char firstpat;
      if (*p == '\\') {
        if (plen < 2) return ends_with_escape();
        firstpat = FoldByte(p[1], fold);
      } else {
        firstpat = FoldByte(*p, fold);
      }
      while (tlen > 0) {
        if (FoldByte(*t, fold) == firstpat) {
          TALLY_ASSIGN_OR_RETURN(int matched, MatchText(t, tlen, p, plen, fold));
          if (matched != kLikeFalse) return matched;
        }
        next_char(t, tlen);
      }
      return kLikeAbort;
    } else if (*p == '_') {
      next_char(t, tlen);
      next_byte(p, plen);
      continue;
    } else if (FoldByte(*p, fold) != FoldByte(*t, fold)) {
      return kLikeFalse;
    }
    next_byte(t, tlen);
    next_byte(p, plen);
  }
  if (tlen > 0) return kLikeFalse;
  while (plen > 0 && *p == '%') next_byte(p, plen);
  if (plen == 0) return kLikeTrue;
  return kLikeAbort;
}

// like_escape / do_like_escape for multibyte encodings: rewrites `pat` to use '\' as escape.
Result<std::string> LikeEscape(std::string_view pat, std::string_view esc) {
  std::string r;
  if (esc.empty()) {
    for (size_t i = 0; i < pat.size();) {
      if (pat[i] == '\\') r += '\\';
      size_t l = std::min(Utf8CharLen(static_cast<unsigned char>(pat[i])), pat.size() - i);
      r.append(pat.substr(i, l));
      i += l;
    }
    return r;
  }
  size_t elen = std::min(Utf8CharLen(static_cast<unsigned char>(esc[0])), esc.size());
  if (elen != esc.size()) return Err("invalid escape string");
  if (esc == "\\") return std::string(pat);
  bool afterescape = false;
  for (size_t i = 0; i < pat.size();) {
    size_t l = std::min(Utf8CharLen(static_cast<unsigned char>(pat[i])), pat.size() - i);
    std::string_view ch = pat.substr(i, l);
    if (ch == esc && !afterescape) {
      r += '\\';
      afterescape = true;
    } else if (pat[i] == '\\') {
      r += '\\';
      if (!afterescape) r += '\\';
      afterescape = false;
    } else {
      r.append(ch);
      afterescape = false;
    }
    i += l;
  }
  return r;
}

// The characters of `set` (UTF-8), for btrim / ltrim / rtrim.
bool InCharSet(std::string_view ch, std::string_view set) {
  for (size_t i = 0; i < set.size();) {
    size_t l = std::min(Utf8CharLen(static_cast<unsigned char>(set[i])), set.size() - i);
    if (set.substr(i, l) == ch) return true;
    i += l;
  }
  return false;
}

std::string Trim(std::string_view s, std::string_view set, bool left, bool right) {
  if (left) {
    while (!s.empty()) {
      size_t l = std::min(Utf8CharLen(static_cast<unsigned char>(s[0])), s.size());
      if (!InCharSet(s.substr(0, l), set)) break;
      s.remove_prefix(l);
    }
  }
  if (right) {
    while (!s.empty()) {
      size_t start = s.size() - 1;
      while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
      if (!InCharSet(s.substr(start), set)) break;
      s.remove_suffix(s.size() - start);
    }
  }
  return std::string(s);
}

// A value's text output, as || and concat() append it (boolout gives t/f, unlike a cast).
std::string OutputText(const Value& v, const EvalContext& ctx) {
  if (v.type() == pgtype::kBool) return v.as_bool() ? "t" : "f";
  if (ReprOf(v.type()) == Repr::kText) return v.as_text();
  return FormatValue(v, ctx.session_zone);
}

class Evaluator {
 public:
  explicit Evaluator(const EvalContext& ctx) : ctx_(ctx) {}

  // Evaluates e; *out points into the context, into e's constant or at tmp.
  Status Eval(const Expr& e, Value& tmp, const Value*& out) {
    switch (e.kind) {
      case ExprKind::kInputColumn: {
        const auto i = static_cast<size_t>(e.index);
        out = &ctx_.row[ctx_.row_map.empty() ? i : static_cast<size_t>(ctx_.row_map[i])];
        return Status::Ok();
      }
      case ExprKind::kGroupKeyRef:
        out = &ctx_.group_keys[static_cast<size_t>(e.index)];
        return Status::Ok();
      case ExprKind::kAggregateRef:
        out = &ctx_.aggregates[static_cast<size_t>(e.index)];
        return Status::Ok();
      case ExprKind::kConst:
        out = &e.constant;
        return Status::Ok();
      default:
        break;
    }
    out = &tmp;
    TALLY_ASSIGN_OR_RETURN(tmp, Compute(e));
    return Status::Ok();
  }

  // Three-valued predicate: 1 true, 0 false, -1 NULL.
  Result<int> Truth(const Expr& e) {
    Value tmp;
    const Value* v;
    TALLY_RETURN_IF_ERROR(Eval(e, tmp, v));
    if (v->is_null()) return -1;
    return v->as_bool() ? 1 : 0;
  }

 private:
  Value Null(const Expr& e) { return Value::Null(e.type); }

  // The two operands of a strict binary operator; false when one is NULL (the right one is
  // not evaluated after a NULL left one).
  Result<bool> EvalOperands(const Expr& e, Value& ta, Value& tb, const Value*& a, const Value*& b) {
    TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ta, a));
    if (a->is_null()) return false;
    TALLY_RETURN_IF_ERROR(Eval(*e.args[1], tb, b));
    return !b->is_null();
  }

  // x IN (...) and x op ANY/ALL (...) over args[1..]: 1 as soon as a comparison gives
  // `stop_on`, else -1 when an element was NULL (the result is NULL), else 0.
  Result<int> ScanElements(const Expr& e, const Value& x, CmpOp op, bool stop_on) {
    bool saw_null = false;
    for (size_t i = 1; i < e.args.size(); ++i) {
      Value tb;
      const Value* b;
      TALLY_RETURN_IF_ERROR(Eval(*e.args[i], tb, b));
      if (b->is_null()) {
        saw_null = true;
        continue;
      }
      if (ApplyCmp(op, x, *b) == stop_on) return 1;
    }
    return saw_null ? -1 : 0;
  }

  Result<Value> Compute(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kArith: {
        Value ta, tb;
        const Value *a, *b;
        TALLY_ASSIGN_OR_RETURN(bool non_null, EvalOperands(e, ta, tb, a, b));
        if (!non_null) return Null(e);
        return Arith(e, *a, *b, ctx_);
      }
      case ExprKind::kNegate: {
        Value ta;
        const Value* a;
        TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ta, a));
        if (a->is_null()) return Null(e);
        switch (ReprOf(e.type)) {
          case Repr::kInt: {
            int64_t v = a->as_int();
            if (v == INT64_MIN || !IntFits(e.type, -v)) return Err(IntRangeError(e.type));
            return Value::Int(e.type, -v);
          }
          case Repr::kFloat:
            return Value::Float(e.type, -a->as_float());
          case Repr::kNumeric:
            return Value::Num(a->as_numeric().Negate());
          case Repr::kInterval: {
            TALLY_ASSIGN_OR_RETURN(Interval r, dt::IntervalNegate(a->as_interval()));
            return Value::Interv(r);
          }
          default:
            return Err("operator does not exist: - " + std::string(TypeName(e.type)));
        }
      }
      case ExprKind::kCompare: {
        Value ta, tb;
        const Value *a, *b;
        TALLY_ASSIGN_OR_RETURN(bool non_null, EvalOperands(e, ta, tb, a, b));
        if (!non_null) return Null(e);
        return Value::Bool(ApplyCmp(static_cast<CmpOp>(e.op), *a, *b));
      }
      case ExprKind::kAnd:
      case ExprKind::kOr: {
        bool is_and = e.kind == ExprKind::kAnd;
        bool saw_null = false;
        for (const auto& arg : e.args) {
          TALLY_ASSIGN_OR_RETURN(int t, Truth(*arg));
          if (t < 0) {
            saw_null = true;
          } else if ((t == 1) != is_and) {
            return Value::Bool(!is_and);
          }
        }
        if (saw_null) return Null(e);
        return Value::Bool(is_and);
      }
      case ExprKind::kNot: {
        TALLY_ASSIGN_OR_RETURN(int t, Truth(*e.args[0]));
        if (t < 0) return Null(e);
        return Value::Bool(t == 0);
      }
      case ExprKind::kIsNull: {
        Value ta;
        const Value* a;
        TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ta, a));
        return Value::Bool(a->is_null() != e.negated);
      }
      case ExprKind::kBoolTest: {
        TALLY_ASSIGN_OR_RETURN(int t, Truth(*e.args[0]));
        switch (static_cast<BoolTestOp>(e.op)) {
          case BoolTestOp::kIsTrue:
            return Value::Bool(t == 1);
          case BoolTestOp::kIsNotTrue:
            return Value::Bool(t != 1);
          case BoolTestOp::kIsFalse:
            return Value::Bool(t == 0);
          case BoolTestOp::kIsNotFalse:
            return Value::Bool(t != 0);
          case BoolTestOp::kIsUnknown:
            return Value::Bool(t < 0);
          case BoolTestOp::kIsNotUnknown:
            return Value::Bool(t >= 0);
        }
        return Err("bad boolean test");
      }
      case ExprKind::kIsDistinctFrom: {
        Value ta, tb;
        const Value *a, *b;
        TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ta, a));
        TALLY_RETURN_IF_ERROR(Eval(*e.args[1], tb, b));
        bool distinct;
        if (a->is_null() || b->is_null()) {
          distinct = a->is_null() != b->is_null();
        } else {
          distinct = !ApplyCmp(CmpOp::kEq, *a, *b);
        }
        return Value::Bool(distinct != e.negated);
      }
      case ExprKind::kIn: {
        Value ta;
        const Value* a;
        TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ta, a));
        if (a->is_null()) return Null(e);
        TALLY_ASSIGN_OR_RETURN(int found, ScanElements(e, *a, CmpOp::kEq, true));
        if (found < 0) return Null(e);
        return Value::Bool((found == 1) != e.negated);
      }
      case ExprKind::kCase: {
        size_t pairs = (e.args.size() - (e.has_else ? 1 : 0)) / 2;
        for (size_t i = 0; i < pairs; ++i) {
          TALLY_ASSIGN_OR_RETURN(int t, Truth(*e.args[2 * i]));
          if (t == 1) return Evaluate(*e.args[2 * i + 1], ctx_);
        }
        if (e.has_else) return Evaluate(*e.args.back(), ctx_);
        return Null(e);
      }
      case ExprKind::kCoalesce: {
        for (const auto& arg : e.args) {
          Value ta;
          const Value* a;
          TALLY_RETURN_IF_ERROR(Eval(*arg, ta, a));
          if (!a->is_null()) return a == &ta ? std::move(ta) : *a;
        }
        return Null(e);
      }
      case ExprKind::kNullIf: {
        Value ta, tb;
        const Value *a, *b;
        TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ta, a));
        if (a->is_null()) return Null(e);
        TALLY_RETURN_IF_ERROR(Eval(*e.args[1], tb, b));
        if (!b->is_null() && ApplyCmp(CmpOp::kEq, *a, *b)) return Null(e);
        return a == &ta ? std::move(ta) : *a;
      }
      case ExprKind::kGreatest:
      case ExprKind::kLeast: {
        Value best;
        bool have = false;
        for (const auto& arg : e.args) {
          Value ta;
          const Value* a;
          TALLY_RETURN_IF_ERROR(Eval(*arg, ta, a));
          if (a->is_null()) continue;
          int c = have ? CompareValues(*a, best, ctx_) : 0;
          if (!have || (e.kind == ExprKind::kGreatest ? c > 0 : c < 0)) {
            best = *a;
            have = true;
          }
        }
        if (!have) return Null(e);
        return best;
      }
      case ExprKind::kCast: {
        Value ta;
        const Value* a;
        TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ta, a));
        if (a->is_null()) return Null(e);
        return CastValue(*a, e.type, e.typmod, ctx_);
      }
      case ExprKind::kFunc:
        return Func(e);
      case ExprKind::kAnyAll: {
        // ExecEvalScalarArrayOp: an empty array decides before x is looked at.
        bool use_or = !e.all;
        if (e.args.size() == 1) return Value::Bool(!use_or);
        Value ta;
        const Value* a;
        TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ta, a));
        if (a->is_null()) return Null(e);
        TALLY_ASSIGN_OR_RETURN(int found, ScanElements(e, *a, static_cast<CmpOp>(e.op), use_or));
        if (found < 0) return Null(e);
        return Value::Bool(found == 1 ? use_or : !use_or);
      }
      case ExprKind::kLike: {
        Value ta, tb;
        const Value *a, *b;
        TALLY_ASSIGN_OR_RETURN(bool non_null, EvalOperands(e, ta, tb, a, b));
        if (!non_null) return Null(e);
        const std::string& t = a->as_text();
        const std::string& p = b->as_text();
        bool fold = static_cast<LikeOp>(e.op) == LikeOp::kILike;
        TALLY_ASSIGN_OR_RETURN(int m, MatchText(t.data(), t.size(), p.data(), p.size(), fold));
        return Value::Bool((m == kLikeTrue) != e.negated);
      }
      default:
        return Status::Internal("unexpected expression kind");
    }
  }

  bool ApplyCmp(CmpOp op, const Value& a, const Value& b) {
    if ((op == CmpOp::kEq || op == CmpOp::kNe) && ReprOf(a.type()) == Repr::kText &&
        a.type() != pgtype::kBpchar) {
      bool eq = a.as_text() == b.as_text();
      return (op == CmpOp::kEq) == eq;
    }
    int c = CompareValues(a, b, ctx_);
    switch (op) {
      case CmpOp::kEq:
        return c == 0;
      case CmpOp::kNe:
        return c != 0;
      case CmpOp::kLt:
        return c < 0;
      case CmpOp::kLe:
        return c <= 0;
      case CmpOp::kGt:
        return c > 0;
      case CmpOp::kGe:
        return c >= 0;
    }
    return false;
  }

  Result<Value> Concat(const Expr& e, bool with_separator) {
    std::string out, sep;
    size_t first = 0;
    if (with_separator) {
      Value ts;
      const Value* sv;
      TALLY_RETURN_IF_ERROR(Eval(*e.args[0], ts, sv));
      if (sv->is_null()) return Null(e);
      sep = sv->as_text();
      first = 1;
    }
    bool any = false;
    for (size_t i = first; i < e.args.size(); ++i) {
      Value ta;
      const Value* a;
      TALLY_RETURN_IF_ERROR(Eval(*e.args[i], ta, a));
      if (a->is_null()) continue;
      if (with_separator && any) out += sep;
      out += OutputText(*a, ctx_);
      any = true;
    }
    return Value::Text(pgtype::kText, std::move(out));
  }

  Result<Value> Func(const Expr& e) {
    auto id = static_cast<FuncId>(e.op);
    if (id == FuncId::kConcat || id == FuncId::kConcatWs) return Concat(e, id == FuncId::kConcatWs);
    if (e.args.size() > 3) return Status::Internal("too many function arguments");
    // Every other supported function is strict: NULL in, NULL out.
    Value tmps[3];
    const Value* args[3] = {nullptr, nullptr, nullptr};
    size_t n = std::min<size_t>(e.args.size(), 3);
    for (size_t i = 0; i < n; ++i) {
      TALLY_RETURN_IF_ERROR(Eval(*e.args[i], tmps[i], args[i]));
      if (args[i]->is_null()) return Null(e);
    }
    switch (id) {
      case FuncId::kDateTrunc: {
        auto unit = static_cast<dt::Unit>(e.index);
        const Value& ts = *args[1];
        if (e.type == pgtype::kTimestamp) {
          TALLY_ASSIGN_OR_RETURN(int64_t r, dt::TruncLocal(unit, ts.as_int()));
          return Value::Timestamp(pgtype::kTimestamp, r);
        }
        const date::time_zone* zone = ctx_.session_zone;
        if (e.args.size() == 3) {
          TALLY_ASSIGN_OR_RETURN(zone, ZoneArg(e, args[2]));
        }
        int64_t utc = ts.as_int();
        if (utc == INT64_MAX || utc == INT64_MIN) return ts;
        int64_t offset = dt::OffsetAt(zone, utc);
        int64_t local = utc + offset * dt::kUsecsPerSec;
        TALLY_ASSIGN_OR_RETURN(int64_t t, dt::TruncLocal(unit, local));
        bool redo_zone = unit != dt::Unit::kHour && unit != dt::Unit::kMinute &&
                         unit != dt::Unit::kSecond && unit != dt::Unit::kMilliseconds &&
                         unit != dt::Unit::kMicroseconds;
        int64_t r = redo_zone ? dt::LocalToUtc(zone, t) : t - offset * dt::kUsecsPerSec;
        return Value::Timestamp(pgtype::kTimestampTz, r);
      }
      case FuncId::kExtract:
      case FuncId::kDatePart: {
        auto unit = static_cast<dt::Unit>(e.index);
        const Value& v = *args[1];
        if (v.type() == pgtype::kInterval) {
          const std::string& field = args[0]->as_text();
          if (id == FuncId::kDatePart) {
            TALLY_ASSIGN_OR_RETURN(double d, dt::IntervalFieldFloat(unit, field, v.as_interval()));
            return Value::Float(pgtype::kFloat8, d);
          }
          TALLY_ASSIGN_OR_RETURN(Numeric r, dt::IntervalField(unit, field, v.as_interval()));
          return Value::Num(std::move(r));
        }
        if (ReprOf(v.type()) != Repr::kDate && ReprOf(v.type()) != Repr::kTimestamp) {
          return Err("EXTRACT is not supported for type " + std::string(TypeName(v.type())));
        }
        if (v.type() != pgtype::kDate && (v.as_int() == INT64_MAX || v.as_int() == INT64_MIN)) {
          return Null(e);
        }
        TALLY_ASSIGN_OR_RETURN(FieldValue f, ExtractField(unit, v, ctx_));
        if (id == FuncId::kDatePart) return Value::Float(pgtype::kFloat8, FieldAsFloat(unit, f, v));
        return Value::Num(Numeric::FromUnscaled(f.unscaled, f.scale));
      }
      case FuncId::kTimezone: {
        TALLY_ASSIGN_OR_RETURN(const date::time_zone* zone, ZoneArg(e, args[0]));
        int64_t t = args[1]->as_int();
        if (t == INT64_MAX || t == INT64_MIN) return Value::Timestamp(e.type, t);
        if (args[1]->type() == pgtype::kTimestampTz) {
          return Value::Timestamp(pgtype::kTimestamp, dt::UtcToLocal(zone, t));
        }
        return Value::Timestamp(pgtype::kTimestampTz, dt::LocalToUtc(zone, t));
      }
      case FuncId::kLower:
      case FuncId::kUpper: {
        std::string s = args[0]->as_text();
        for (char& ch : s) {
          if (id == FuncId::kLower && ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch + 32);
          if (id == FuncId::kUpper && ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 32);
        }
        return Value::Text(e.type, std::move(s));
      }
      case FuncId::kLength: {
        std::string_view s = args[0]->as_text();
        if (args[0]->type() == pgtype::kBpchar) {
          while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
        }
        return Value::Int(pgtype::kInt4, static_cast<int64_t>(Utf8Length(s)));
      }
      case FuncId::kAbs: {
        const Value& v = *args[0];
        switch (ReprOf(e.type)) {
          case Repr::kInt: {
            int64_t x = v.as_int();
            if (x == INT64_MIN || !IntFits(e.type, -x)) return Err(IntRangeError(e.type));
            return Value::Int(e.type, x < 0 ? -x : x);
          }
          case Repr::kFloat:
            return Value::Float(e.type, std::fabs(v.as_float()));
          case Repr::kNumeric: {
            const Numeric& x = v.as_numeric();
            if (x.kind() == Numeric::Kind::kNegInf) return Value::Num(Numeric::PosInf());
            if (!x.is_finite()) return v;
            return Value::Num(Numeric(abs(x.unscaled()), x.scale()));
          }
          default:
            return Err("abs is not supported for this type");
        }
      }
      case FuncId::kRound:
      case FuncId::kTrunc:
      case FuncId::kFloor:
      case FuncId::kCeil: {
        const Value& v = *args[0];
        if (ReprOf(e.type) == Repr::kFloat) {
          double x = v.as_float();
          double r = id == FuncId::kRound   ? std::nearbyint(x)
                     : id == FuncId::kTrunc ? std::trunc(x)
                     : id == FuncId::kFloor ? std::floor(x)
                                            : std::ceil(x);
          return Value::Float(e.type, r);
        }
        RoundMode mode = id == FuncId::kRound   ? RoundMode::kRound
                         : id == FuncId::kTrunc ? RoundMode::kTrunc
                         : id == FuncId::kFloor ? RoundMode::kFloor
                                                : RoundMode::kCeil;
        int64_t scale = n > 1 ? args[1]->as_int() : 0;
        scale = std::clamp<int64_t>(scale, -1000, 1000);
        return Value::Num(RoundNumeric(v.as_numeric(), static_cast<int>(scale), mode));
      }
      case FuncId::kSubstr: {
        std::string_view s = args[0]->as_text();
        int64_t start = args[1]->as_int();
        int64_t begin = std::max<int64_t>(start, 1);
        size_t from = CharOffset(s, begin - 1);
        if (n < 3) return Value::Text(e.type, std::string(s.substr(from)));
        int64_t count = args[2]->as_int();
        if (count < 0) return Err("negative substring length not allowed");
        int64_t end = start + count;
        if (end < 1) return Value::Text(e.type, std::string());
        std::string_view rest = s.substr(from);
        return Value::Text(e.type, std::string(rest.substr(0, CharOffset(rest, end - begin))));
      }
      case FuncId::kLeft:
      case FuncId::kRight: {
        std::string_view s = args[0]->as_text();
        int64_t k = args[1]->as_int();
        auto chars = static_cast<int64_t>(Utf8Length(s));
        if (id == FuncId::kLeft) {
          if (k < 0) k = std::max<int64_t>(chars + k, 0);
          return Value::Text(e.type, std::string(s.substr(0, CharOffset(s, k))));
        }
        int64_t skip = k < 0 ? -k : chars - k;
        return Value::Text(e.type, std::string(s.substr(CharOffset(s, skip))));
      }
      case FuncId::kReplace: {
        const std::string& s = args[0]->as_text();
        const std::string& from = args[1]->as_text();
        const std::string& to = args[2]->as_text();
        if (s.empty() || from.empty()) return Value::Text(e.type, s);
        std::string out;
        size_t pos = 0;
        for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
          out.append(s, pos, hit - pos);
          out += to;
        }
        out.append(s, pos, std::string::npos);
        return Value::Text(e.type, std::move(out));
      }
      case FuncId::kStrpos: {
        std::string_view s = args[0]->as_text();
        std::string_view needle = args[1]->as_text();
        size_t hit = s.find(needle);
        if (hit == std::string_view::npos) return Value::Int(pgtype::kInt4, 0);
        return Value::Int(pgtype::kInt4, static_cast<int64_t>(Utf8Length(s.substr(0, hit))) + 1);
      }
      case FuncId::kBtrim:
      case FuncId::kLtrim:
      case FuncId::kRtrim: {
        std::string_view set = n > 1 ? std::string_view(args[1]->as_text()) : " ";
        return Value::Text(
            e.type, Trim(args[0]->as_text(), set, id != FuncId::kRtrim, id != FuncId::kLtrim));
      }
      case FuncId::kLikeEscape: {
        TALLY_ASSIGN_OR_RETURN(std::string p, LikeEscape(args[0]->as_text(), args[1]->as_text()));
        return Value::Text(e.type, std::move(p));
      }
      case FuncId::kOutput:
        return Value::Text(pgtype::kText, OutputText(*args[0], ctx_));
      case FuncId::kConcat:
      case FuncId::kConcatWs:
        break;
    }
    return Status::Internal("unknown function id");
  }

  const EvalContext& ctx_;
};

Result<Value> NumericFromDouble(double d, bool is_float4) {
  if (std::isnan(d)) return Value::Num(Numeric::NaN());
  if (std::isinf(d)) return Value::Num(d > 0 ? Numeric::PosInf() : Numeric::NegInf());
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", is_float4 ? FLT_DIG : DBL_DIG, d);
  TALLY_ASSIGN_OR_RETURN(Numeric n, Numeric::Parse(buf));
  return Value::Num(std::move(n));
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string PgTypeName(Oid t) {
  switch (t) {
    case pgtype::kInt2:
      return "smallint";
    case pgtype::kInt4:
      return "integer";
    case pgtype::kInt8:
      return "bigint";
    case pgtype::kFloat4:
      return "real";
    case pgtype::kFloat8:
      return "double precision";
    case pgtype::kBool:
      return "boolean";
    case pgtype::kTimestamp:
      return "timestamp";
    case pgtype::kTimestampTz:
      return "timestamp with time zone";
    default:
      return std::string(TypeName(t));
  }
}

Status BadInput(Oid t, std::string_view text) {
  return Err("invalid input syntax for type " + PgTypeName(t) + ": \"" + std::string(text) + "\"");
}

Result<Value> ParseInt(Oid target, std::string_view text) {
  std::string_view s = TrimSpace(text);
  bool neg = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    neg = s[i] == '-';
    ++i;
  }
  if (i >= s.size()) return BadInput(target, text);
  __int128 v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return BadInput(target, text);
    v = v * 10 + (s[i] - '0');
    if (v > (static_cast<__int128>(1) << 64)) break;
  }
  if (neg) v = -v;
  if (v < INT64_MIN || v > INT64_MAX || !IntFits(target, static_cast<int64_t>(v))) {
    return Err("value \"" + std::string(text) + "\" is out of range for type " +
               PgTypeName(target));
  }
  return Value::Int(target, static_cast<int64_t>(v));
}

Result<Value> ParseFloat(Oid target, std::string_view text) {
  std::string s(TrimSpace(text));
  std::string lower;
  for (char ch : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  double d;
  if (lower == "nan") {
    d = NAN;
  } else if (lower == "infinity" || lower == "+infinity" || lower == "inf" || lower == "+inf") {
    d = INFINITY;
  } else if (lower == "-infinity" || lower == "-inf") {
    d = -INFINITY;
  } else {
    if (s.empty()) return BadInput(target, text);
    char* end = nullptr;
    errno = 0;
    d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || lower.find_first_of("xp") != std::string::npos) {
      return BadInput(target, text);
    }
    if (errno == ERANGE || (target == pgtype::kFloat4 && std::isinf(static_cast<float>(d)))) {
      return Err("\"" + s + "\" is out of range for type " + PgTypeName(target));
    }
  }
  if (target == pgtype::kFloat4) d = static_cast<float>(d);
  return Value::Float(target, d);
}

Result<Value> ParseBool(std::string_view text) {
  std::string s;
  for (char ch : TrimSpace(text))
    s += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto prefix_of = [&](std::string_view word, size_t min_len) {
    return s.size() >= min_len && s.size() <= word.size() && word.substr(0, s.size()) == s;
  };
  if (prefix_of("true", 1) || prefix_of("yes", 1) || s == "on" || s == "1")
    return Value::Bool(true);
  if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0") {
    return Value::Bool(false);
  }
  return BadInput(pgtype::kBool, text);
}

Result<Value> ApplyNumericTypmod(Numeric n, int32_t typmod) {
  if (typmod < 4) return Value::Num(std::move(n));
  int precision = ((typmod - 4) >> 16) & 0xffff;
  int scale = (typmod - 4) & 0x7ff;
  if (scale & 0x400) scale -= 0x800;  // PG15 allows negative scales
  if (n.kind() == Numeric::Kind::kNaN) return Value::Num(std::move(n));
  if (!n.is_finite()) return Err("numeric field overflow");
  Numeric r = RoundNumeric(n, scale, RoundMode::kRound);
  if (r.is_small() && scale >= 0 && precision <= 18) {
    uint64_t limit = 1;
    for (int i = 0; i < precision; ++i) limit *= 10;
    int64_t u = r.small_unscaled();
    uint64_t magnitude = u < 0 ? uint64_t{0} - static_cast<uint64_t>(u) : static_cast<uint64_t>(u);
    if (magnitude >= limit) return Err("numeric field overflow");
    return Value::Num(std::move(r));
  }
  mpz_class limit = Pow10(precision);
  mpz_class unscaled = r.unscaled();
  if (scale < 0) unscaled /= Pow10(-scale);
  if (abs(unscaled) >= limit) return Err("numeric field overflow");
  return Value::Num(std::move(r));
}

int64_t RoundTimestampTypmod(int64_t ts, int32_t typmod) {
  if (typmod < 0 || typmod >= 6 || ts == INT64_MAX || ts == INT64_MIN) return ts;
  static const int64_t kScales[6] = {1000000, 100000, 10000, 1000, 100, 10};
  int64_t scale = kScales[typmod];
  int64_t offset = scale / 2;
  if (ts >= 0) return ((ts + offset) / scale) * scale;
  return -((((-ts) + offset) / scale) * scale);
}

std::string TruncateChars(std::string s, int32_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (static_cast<int32_t>(chars) == n) {
        s.resize(i);
        return s;
      }
      ++chars;
    }
  }
  return s;
}

}  // namespace

namespace internal {

int CompareValues(const Value& a, const Value& b, const EvalContext& ctx) {
  switch (ReprOf(a.type())) {
    case Repr::kBool:
      return static_cast<int>(a.as_bool()) - static_cast<int>(b.as_bool());
    case Repr::kInt:
    case Repr::kDate:
    case Repr::kTimestamp: {
      int64_t x = a.as_int(), y = b.as_int();
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    case Repr::kFloat:
      return CompareFloats(a.as_float(), b.as_float());
    case Repr::kNumeric:
      return a.as_numeric().Compare(b.as_numeric());
    case Repr::kText: {
      std::string_view x = a.as_text(), y = b.as_text();
      if (a.type() == pgtype::kBpchar) {
        while (!x.empty() && x.back() == ' ') x.remove_suffix(1);
        while (!y.empty() && y.back() == ' ') y.remove_suffix(1);
      }
      int c = 0;
      if (ctx.collation != nullptr && IsTextType(a.type())) c = ctx.collation->Compare(x, y);
      if (c == 0) c = x.compare(y);  // deterministic collations break ties bytewise
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case Repr::kInterval:
      return CompareIntervals(a.as_interval(), b.as_interval());
  }
  return 0;
}

Result<Value> CastValue(const Value& v, Oid target, int32_t typmod, const EvalContext& ctx) {
  Oid src = v.type();
  Repr from = ReprOf(src);
  Repr to = ReprOf(target);
  // Anything to text: its output form.
  if (IsTextType(target)) {
    std::string s = from == Repr::kText ? v.as_text() : FormatValue(v, ctx.session_zone);
    if (src == pgtype::kBpchar && target != pgtype::kBpchar) {
      while (!s.empty() && s.back() == ' ') s.pop_back();
    }
    if (typmod >= 4 && (target == pgtype::kVarchar || target == pgtype::kBpchar)) {
      s = TruncateChars(std::move(s), typmod - 4);
      if (target == pgtype::kBpchar) {
        size_t chars = Utf8Length(s);
        if (static_cast<int32_t>(chars) < typmod - 4) s.append(typmod - 4 - chars, ' ');
      }
    }
    return Value::Text(target, std::move(s));
  }
  // Text (or an unknown literal) to anything: the type's input function.
  if (from == Repr::kText) {
    const std::string& s = v.as_text();
    switch (to) {
      case Repr::kInt:
        return ParseInt(target, s);
      case Repr::kFloat:
        return ParseFloat(target, s);
      case Repr::kBool:
        return ParseBool(s);
      case Repr::kNumeric: {
        auto n = Numeric::Parse(TrimSpace(s));
        if (!n.ok()) return BadInput(target, s);
        return ApplyNumericTypmod(std::move(n).value(), typmod);
      }
      case Repr::kDate: {
        TALLY_ASSIGN_OR_RETURN(int64_t d, dt::ParseDate(s));
        return Value::Date(d);
      }
      case Repr::kTimestamp: {
        TALLY_ASSIGN_OR_RETURN(dt::ParsedTimestamp p, dt::ParseTimestamp(s, PgTypeName(target)));
        int64_t ts = p.local;
        if (target == pgtype::kTimestampTz && ts != INT64_MAX && ts != INT64_MIN) {
          if (p.offset_seconds) {
            ts -= *p.offset_seconds * dt::kUsecsPerSec;
          } else {
            ts = dt::LocalToUtc(p.zone != nullptr ? p.zone : ctx.session_zone, ts);
          }
        }
        return Value::Timestamp(target, RoundTimestampTypmod(ts, typmod));
      }
      case Repr::kText:
        return Value::Text(target, s);
      case Repr::kInterval: {
        TALLY_ASSIGN_OR_RETURN(Interval iv, dt::ParseInterval(s));
        return Value::Interv(iv);
      }
      default:
        return Err("cannot cast text to " + PgTypeName(target));
    }
  }
  switch (to) {
    case Repr::kInt: {
      if (from == Repr::kInt) {
        if (!IntFits(target, v.as_int())) return Err(IntRangeError(target));
        return Value::Int(target, v.as_int());
      }
      if (from == Repr::kBool) {
        if (target != pgtype::kInt4) break;
        return Value::Int(target, v.as_bool() ? 1 : 0);
      }
      if (from == Repr::kFloat) {
        double d = std::nearbyint(v.as_float());
        bool fits = !std::isnan(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0;
        if (!fits || !IntFits(target, static_cast<int64_t>(d))) return Err(IntRangeError(target));
        return Value::Int(target, static_cast<int64_t>(d));
      }
      if (from == Repr::kNumeric) {
        const Numeric& n = v.as_numeric();
        if (n.kind() == Numeric::Kind::kNaN) {
          return Err("cannot convert NaN to " + PgTypeName(target));
        }
        if (!n.is_finite()) return Err("cannot convert infinity to " + PgTypeName(target));
        Numeric r = RoundNumeric(n, 0, RoundMode::kRound);
        if (!r.is_small() || !IntFits(target, r.small_unscaled())) {
          return Err(IntRangeError(target));
        }
        return Value::Int(target, r.small_unscaled());
      }
      break;
    }
    case Repr::kNumeric: {
      if (from == Repr::kInt) return ApplyNumericTypmod(Numeric::FromInt(v.as_int()), typmod);
      if (from == Repr::kNumeric) return ApplyNumericTypmod(v.as_numeric(), typmod);
      if (from == Repr::kFloat) {
        TALLY_ASSIGN_OR_RETURN(Value n, NumericFromDouble(v.as_float(), src == pgtype::kFloat4));
        return ApplyNumericTypmod(n.as_numeric(), typmod);
      }
      break;
    }
    case Repr::kFloat: {
      double d;
      if (from == Repr::kInt) {
        d = static_cast<double>(v.as_int());
      } else if (from == Repr::kFloat) {
        d = v.as_float();
      } else if (from == Repr::kNumeric) {
        d = v.as_numeric().ToDouble();
      } else {
        break;
      }
      if (target == pgtype::kFloat4) {
        float f = static_cast<float>(d);
        if (std::isinf(f) && !std::isinf(d)) return Err("value out of range: overflow");
        if (f == 0.0f && d != 0.0) return Err("value out of range: underflow");
        d = f;
      }
      return Value::Float(target, d);
    }
    case Repr::kBool:
      if (from == Repr::kBool) return v;
      if (from == Repr::kInt && src == pgtype::kInt4) return Value::Bool(v.as_int() != 0);
      break;
    case Repr::kDate: {
      if (from == Repr::kDate) return v;
      if (from == Repr::kTimestamp) {
        int64_t ts = v.as_int();
        if (ts == INT64_MAX || ts == INT64_MIN) return Value::Date(ts);
        if (src == pgtype::kTimestampTz) ts = dt::UtcToLocal(ctx.session_zone, ts);
        return Value::Date(dt::FloorDiv(ts, dt::kUsecsPerDay));
      }
      break;
    }
    case Repr::kTimestamp: {
      int64_t ts;
      if (from == Repr::kDate) {
        ts = v.as_int() * dt::kUsecsPerDay;
        if (target == pgtype::kTimestampTz) ts = dt::LocalToUtc(ctx.session_zone, ts);
      } else if (from == Repr::kTimestamp) {
        ts = v.as_int();
        if (ts != INT64_MAX && ts != INT64_MIN) {
          if (src == pgtype::kTimestamp && target == pgtype::kTimestampTz) {
            ts = dt::LocalToUtc(ctx.session_zone, ts);
          } else if (src == pgtype::kTimestampTz && target == pgtype::kTimestamp) {
            ts = dt::UtcToLocal(ctx.session_zone, ts);
          }
        }
      } else {
        break;
      }
      return Value::Timestamp(target, RoundTimestampTypmod(ts, typmod));
    }
    case Repr::kText:
      // Types tally holds as text (uuid, json...): only identity casts.
      if (src == target) return v;
      break;
    case Repr::kInterval:
      if (from == Repr::kInterval) return v;
      break;
    default:
      break;
  }
  return Err("cannot cast type " + PgTypeName(src) + " to " + PgTypeName(target));
}

}  // namespace internal

std::string FormatValue(const Value& v, const date::time_zone* zone) {
  if (v.is_null()) return "NULL";
  switch (ReprOf(v.type())) {
    case Repr::kBool:
      return v.as_bool() ? "true" : "false";
    case Repr::kInt:
      return std::to_string(v.as_int());
    case Repr::kFloat:
      return FormatFloat(v.type(), v.as_float());
    case Repr::kNumeric:
      return v.as_numeric().ToString();
    case Repr::kText:
      return v.as_text();
    case Repr::kDate:
      return dt::FormatDate(v.as_int());
    case Repr::kTimestamp:
      return v.type() == pgtype::kTimestampTz ? dt::FormatTimestampTz(v.as_int(), zone)
                                              : dt::FormatTimestamp(v.as_int());
    case Repr::kInterval:
      return v.FormatText();
  }
  return "?";
}

Result<const date::time_zone*> FindTimeZone(std::string_view name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    // Postgres matches zone names case-insensitively ("utc", "america/new_york").
  }
  std::string lower;
  for (char ch : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  try {
    const auto& db = date::get_tzdb();
    for (const auto& z : db.zones) {
      std::string zn(z.name());
      std::string zl;
      for (char ch : zn) zl += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (zl == lower) return &z;
    }
  } catch (const std::exception&) {
  }
  return Status::InvalidArgument("time zone \"" + std::string(name) + "\" not recognized");
}

Result<Value> Evaluate(const Expr& e, const EvalContext& ctx) {
  Evaluator ev(ctx);
  Value tmp;
  const Value* out;
  TALLY_RETURN_IF_ERROR(ev.Eval(e, tmp, out));
  if (out == &tmp) return Result<Value>(std::move(tmp));
  return *out;
}

Status EvaluateInPlace(const Expr& e, const EvalContext& ctx, Value* tmp, const Value** out) {
  Evaluator ev(ctx);
  return ev.Eval(e, *tmp, *out);
}

Result<bool> EvaluatePredicate(const Expr& e, const EvalContext& ctx) {
  Evaluator ev(ctx);
  TALLY_ASSIGN_OR_RETURN(int t, ev.Truth(e));
  return t == 1;
}

}  // namespace tally::compiler
