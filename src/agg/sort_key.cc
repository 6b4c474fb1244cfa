#include "tally/agg/sort_key.h"

#include <cmath>
#include <cstring>

namespace tally::agg {
namespace {

void AppendBigEndian64(uint64_t v, std::string* out) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  out->append(buf, 8);
}

void AppendOrderedInt(int64_t v, std::string* out) {
  AppendBigEndian64(static_cast<uint64_t>(v) ^ (uint64_t{1} << 63), out);
}

void AppendOrderedDouble(double d, std::string* out) {
  if (std::isnan(d)) {
    AppendBigEndian64(~uint64_t{0}, out);
    return;
  }
  if (d == 0) d = 0;  // -0 sorts and compares as 0
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  bits = (bits >> 63) ? ~bits : (bits | (uint64_t{1} << 63));
  AppendBigEndian64(bits, out);
}

__int128 IntervalSpan(const Interval& i) {
  return static_cast<__int128>(i.micros) +
         (static_cast<__int128>(i.days) + static_cast<__int128>(i.months) * 30) *
             (int64_t{86400} * 1000000);
}

void AppendOrderedInt128(__int128 v, std::string* out) {
  unsigned __int128 u =
      static_cast<unsigned __int128>(v) ^ (static_cast<unsigned __int128>(1) << 127);
  AppendBigEndian64(static_cast<uint64_t>(u >> 64), out);
  AppendBigEndian64(static_cast<uint64_t>(u), out);
}

void AppendNumeric(const Numeric& n, std::string* out) {
  switch (n.kind()) {
    case Numeric::Kind::kNegInf:
      out->push_back('\x00');
      return;
    case Numeric::Kind::kPosInf:
      out->push_back('\x04');
      return;
    case Numeric::Kind::kNaN:
      out->push_back('\x05');
      return;
    case Numeric::Kind::kFinite:
      break;
  }
  int sign = n.sign();
  if (sign == 0) {
    out->push_back('\x02');
    return;
  }
  out->push_back(sign < 0 ? '\x01' : '\x03');
  // Decimal digits of |unscaled|: written from the int64 when it is one, else by GMP.
  thread_local std::string big_digits;
  char small_digits[24];
  std::string_view digits;
  if (n.is_small()) {
    int64_t v = n.small_unscaled();
    uint64_t m = v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    char* p = small_digits + sizeof small_digits;
    do {
      *--p = static_cast<char>('0' + m % 10);
      m /= 10;
    } while (m != 0);
    digits = std::string_view(p, static_cast<size_t>(small_digits + sizeof small_digits - p));
  } else {
    const mpz_class& u = *n.big_unscaled();
    big_digits.resize(mpz_sizeinbase(u.get_mpz_t(), 10) + 2);
    mpz_get_str(big_digits.data(), 10, u.get_mpz_t());
    big_digits.resize(std::strlen(big_digits.c_str()));
    digits = big_digits;
    if (digits[0] == '-') digits.remove_prefix(1);
  }
  // Significant digits without trailing zeros.
  const size_t begin = 0;
  size_t end = digits.size();
  while (end > begin + 1 && digits[end - 1] == '0') --end;
  // value = 0.d1d2... * 10^E with E = (digit count) - scale.
  int64_t e = static_cast<int64_t>(digits.size()) - n.scale();
  uint8_t invert = sign < 0 ? 0xFF : 0x00;
  uint32_t ue = static_cast<uint32_t>(static_cast<int32_t>(e)) ^ 0x80000000u;
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(ue >> shift) ^ invert));
  }
  for (size_t i = begin; i < end; i += 2) {
    uint8_t hi = static_cast<uint8_t>(digits[i] - '0' + 1);
    uint8_t lo = (i + 1 < end) ? static_cast<uint8_t>(digits[i + 1] - '0' + 1) : 0;
    out->push_back(static_cast<char>(static_cast<uint8_t>((hi << 4) | lo) ^ invert));
  }
  if ((end - begin) % 2 == 0) out->push_back(static_cast<char>(invert));  // terminator nibble
}

std::string_view TrimBpchar(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

const Collation& ByteOrder() {
  static const Collation* c = new Collation();
  return *c;
}

}  // namespace

void AppendSortKey(const Value& v, const Collation& coll, std::string* out) {
  if (v.is_null()) return;
  switch (ReprOf(v.type())) {
    case Repr::kBool:
      out->push_back(v.as_bool() ? '\x01' : '\x00');
      return;
    case Repr::kInt:
    case Repr::kDate:
    case Repr::kTimestamp:
      AppendOrderedInt(v.as_int(), out);
      return;
    case Repr::kFloat:
      AppendOrderedDouble(v.as_float(), out);
      return;
    case Repr::kNumeric:
      AppendNumeric(v.as_numeric(), out);
      return;
    case Repr::kInterval:
      AppendOrderedInt128(IntervalSpan(v.as_interval()), out);
      return;
    case Repr::kText:
      if (v.type() == pgtype::kBpchar) {
        coll.AppendSortKey(TrimBpchar(v.as_text()), out);
      } else if (IsTextType(v.type())) {
        coll.AppendSortKey(v.as_text(), out);
      } else {
        ByteOrder().AppendSortKey(v.as_text(), out);
      }
      return;
  }
}

int CompareValues(const Value& a, const Value& b, const Collation& coll) {
  switch (ReprOf(a.type())) {
    case Repr::kBool:
      return static_cast<int>(a.as_bool()) - static_cast<int>(b.as_bool());
    case Repr::kInt:
    case Repr::kDate:
    case Repr::kTimestamp:
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    case Repr::kFloat:
      return CompareFloats(a.as_float(), b.as_float());
    case Repr::kNumeric:
      return a.as_numeric().Compare(b.as_numeric());
    case Repr::kInterval:
      return CompareIntervals(a.as_interval(), b.as_interval());
    case Repr::kText:
      if (a.type() == pgtype::kBpchar) {
        return coll.Compare(TrimBpchar(a.as_text()), TrimBpchar(b.as_text()));
      }
      if (IsTextType(a.type())) return coll.Compare(a.as_text(), b.as_text());
      return ByteOrder().Compare(a.as_text(), b.as_text());
  }
  return 0;
}

}  // namespace tally::agg
