#include "tally/agg/codec.h"

#include <cstring>
#include <limits>
#include <string>

namespace tally::agg {

void PutVarint64(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(v) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(static_cast<uint8_t>(v)));
}

namespace {

enum Tag : uint8_t {
  kTagNull = 0,
  kTagBool = 1,
  kTagInt = 2,
  kTagFloat = 3,
  kTagNumeric = 4,
  kTagText = 5,
  kTagInterval = 6,
};

enum NumericKind : uint8_t {
  kNumSmall = 0,
  kNumBig = 1,
  kNumNaN = 2,
  kNumPosInf = 3,
  kNumNegInf = 4,
};

constexpr int32_t kMaxScale = 0x3FFF;  // Postgres's NUMERIC_DSCALE_MAX
// Bigger than any numeric Postgres can hold (131072 digits ~ 54 KiB), small enough that a
// corrupt length cannot make us allocate gigabytes.
constexpr uint64_t kMaxBigintBytes = 1 << 20;

void PutVarint(unsigned __int128 v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(v) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(static_cast<uint8_t>(v)));
}

uint64_t ZigZag64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag64(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

unsigned __int128 ZigZag128(__int128 v) {
  return (static_cast<unsigned __int128>(v) << 1) ^ static_cast<unsigned __int128>(v >> 127);
}
__int128 UnZigZag128(unsigned __int128 v) {
  return static_cast<__int128>(v >> 1) ^ -static_cast<__int128>(v & 1);
}

void PutBigint(const mpz_class& v, std::string* out) {
  size_t bytes = (mpz_sizeinbase(v.get_mpz_t(), 2) + 7) / 8;
  if (v == 0) bytes = 0;
  PutVarint64((static_cast<uint64_t>(bytes) << 1) | (v < 0 ? 1 : 0), out);
  if (bytes == 0) return;
  size_t start = out->size();
  out->resize(start + bytes);
  size_t written = 0;
  mpz_export(out->data() + start, &written, -1, 1, -1, 0, v.get_mpz_t());
  out->resize(start + written);
}

// Cursor over encoded bytes; every read checks the bounds.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::string_view rest() const { return in_; }
  bool empty() const { return in_.empty(); }

  bool Byte(uint8_t* b) {
    if (in_.empty()) return false;
    *b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Varint64(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      if (shift == 63 && (b & 0x7E) != 0) return false;  // more than 64 bits
      r |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Varint128(unsigned __int128* v) {
    unsigned __int128 r = 0;
    for (int shift = 0; shift < 128; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      if (shift == 126 && (b & 0x7C) != 0) return false;  // more than 128 bits
      r |= static_cast<unsigned __int128>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool ZigZag64(int64_t* v) {
    uint64_t u;
    if (!Varint64(&u)) return false;
    *v = UnZigZag64(u);
    return true;
  }
  bool ZigZag128(__int128* v) {
    unsigned __int128 u;
    if (!Varint128(&u)) return false;
    *v = UnZigZag128(u);
    return true;
  }
  bool Bytes(size_t n, std::string_view* s) {
    if (in_.size() < n) return false;
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  bool Bigint(mpz_class* v) {
    uint64_t header;
    if (!Varint64(&header)) return false;
    uint64_t bytes = header >> 1;
    bool negative = header & 1;
    if (bytes > kMaxBigintBytes) return false;
    std::string_view mag;
    if (!Bytes(static_cast<size_t>(bytes), &mag)) return false;
    if (bytes == 0) {
      if (negative) return false;
      *v = 0;
      return true;
    }
    mpz_import(v->get_mpz_t(), mag.size(), -1, 1, -1, 0, mag.data());
    if (negative) *v = -*v;
    return true;
  }

 private:
  std::string_view in_;
};

Status Corrupt(std::string_view what) {
  return Status::Corruption("malformed stored " + std::string(what));
}

uint8_t TagOf(Repr repr) {
  switch (repr) {
    case Repr::kBool:
      return kTagBool;
    case Repr::kInt:
    case Repr::kDate:
    case Repr::kTimestamp:
      return kTagInt;
    case Repr::kFloat:
      return kTagFloat;
    case Repr::kNumeric:
      return kTagNumeric;
    case Repr::kText:
      return kTagText;
    case Repr::kInterval:
      return kTagInterval;
  }
  return kTagNull;
}

bool ReadValue(Reader& r, Value* out) {
  uint64_t header;
  if (!r.Varint64(&header)) return false;
  uint64_t oid64 = header >> 3;
  if (oid64 > std::numeric_limits<Oid>::max()) return false;
  Oid oid = static_cast<Oid>(oid64);
  uint8_t tag = static_cast<uint8_t>(header & 7);
  // The representation must be the one the type has, or later accessors would misfire.
  if (tag != kTagNull && tag != TagOf(ReprOf(oid))) return false;
  switch (tag) {
    case kTagNull:
      *out = Value::Null(oid);
      return true;
    case kTagBool: {
      uint8_t b;
      if (!r.Byte(&b) || b > 1) return false;
      *out = Value::Bool(b == 1);
      return true;
    }
    case kTagInt: {
      int64_t v;
      if (!r.ZigZag64(&v)) return false;
      *out = Value::Int(oid, v);
      return true;
    }
    case kTagFloat: {
      std::string_view b;
      if (!r.Bytes(8, &b)) return false;
      uint64_t bits = 0;
      for (int i = 7; i >= 0; --i) bits = (bits << 8) | static_cast<uint8_t>(b[i]);
      double d;
      std::memcpy(&d, &bits, sizeof d);
      *out = Value::Float(oid, d);
      return true;
    }
    case kTagNumeric: {
      uint8_t kind;
      if (!r.Byte(&kind)) return false;
      switch (kind) {
        case kNumNaN:
          *out = Value::Num(Numeric::NaN());
          return true;
        case kNumPosInf:
          *out = Value::Num(Numeric::PosInf());
          return true;
        case kNumNegInf:
          *out = Value::Num(Numeric::NegInf());
          return true;
        case kNumSmall:
        case kNumBig: {
          uint64_t scale;
          if (!r.Varint64(&scale) || scale > kMaxScale) return false;
          if (kind == kNumSmall) {
            int64_t v;
            if (!r.ZigZag64(&v)) return false;
            *out = Value::Num(Numeric::FromUnscaled(v, static_cast<int32_t>(scale)));
            return true;
          }
          mpz_class u;
          if (!r.Bigint(&u)) return false;
          *out = Value::Num(Numeric(std::move(u), static_cast<int32_t>(scale)));
          return true;
        }
        default:
          return false;
      }
    }
    case kTagText: {
      uint64_t len;
      std::string_view s;
      if (!r.Varint64(&len) || len > r.rest().size() || !r.Bytes(static_cast<size_t>(len), &s)) {
        return false;
      }
      *out = Value::Text(oid, std::string(s));
      return true;
    }
    case kTagInterval: {
      int64_t micros, days, months;
      if (!r.ZigZag64(&micros) || !r.ZigZag64(&days) || !r.ZigZag64(&months)) return false;
      if (days < std::numeric_limits<int32_t>::min() ||
          days > std::numeric_limits<int32_t>::max() ||
          months < std::numeric_limits<int32_t>::min() ||
          months > std::numeric_limits<int32_t>::max()) {
        return false;
      }
      *out = Value::Interv({micros, static_cast<int32_t>(days), static_cast<int32_t>(months)});
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

bool GetVarint64(std::string_view* in, uint64_t* v) {
  Reader r(*in);
  if (!r.Varint64(v)) return false;
  *in = r.rest();
  return true;
}

void EncodeValue(const Value& v, std::string* out) {
  uint64_t oid = v.type();
  if (v.is_null()) {
    PutVarint64(oid << 3 | kTagNull, out);
    return;
  }
  switch (ReprOf(v.type())) {
    case Repr::kBool:
      PutVarint64(oid << 3 | kTagBool, out);
      out->push_back(v.as_bool() ? '\x01' : '\x00');
      return;
    case Repr::kInt:
    case Repr::kDate:
    case Repr::kTimestamp:
      PutVarint64(oid << 3 | kTagInt, out);
      PutVarint64(ZigZag64(v.as_int()), out);
      return;
    case Repr::kFloat: {
      PutVarint64(oid << 3 | kTagFloat, out);
      double d = v.as_float();
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      char buf[8];
      for (int i = 0; i < 8; ++i) buf[i] = static_cast<char>(bits >> (8 * i));
      out->append(buf, 8);
      return;
    }
    case Repr::kNumeric: {
      PutVarint64(oid << 3 | kTagNumeric, out);
      const Numeric& n = v.as_numeric();
      switch (n.kind()) {
        case Numeric::Kind::kNaN:
          out->push_back(static_cast<char>(kNumNaN));
          return;
        case Numeric::Kind::kPosInf:
          out->push_back(static_cast<char>(kNumPosInf));
          return;
        case Numeric::Kind::kNegInf:
          out->push_back(static_cast<char>(kNumNegInf));
          return;
        case Numeric::Kind::kFinite:
          break;
      }
      bool small = n.is_small();  // exactly when the unscaled integer fits in int64
      out->push_back(static_cast<char>(small ? kNumSmall : kNumBig));
      PutVarint64(static_cast<uint64_t>(n.scale() < 0 ? 0 : n.scale()), out);
      if (small) {
        PutVarint64(ZigZag64(n.small_unscaled()), out);
      } else {
        PutBigint(*n.big_unscaled(), out);
      }
      return;
    }
    case Repr::kText:
      PutVarint64(oid << 3 | kTagText, out);
      PutVarint64(v.as_text().size(), out);
      out->append(v.as_text());
      return;
    case Repr::kInterval: {
      PutVarint64(oid << 3 | kTagInterval, out);
      const Interval& iv = v.as_interval();
      PutVarint64(ZigZag64(iv.micros), out);
      PutVarint64(ZigZag64(iv.days), out);
      PutVarint64(ZigZag64(iv.months), out);
      return;
    }
  }
}

Result<Value> DecodeValue(std::string_view* in) {
  Reader r(*in);
  Value v;
  if (!ReadValue(r, &v)) return Corrupt("value");
  *in = r.rest();
  return v;
}

void EncodeValues(const std::vector<Value>& values, std::string* out) {
  out->push_back(static_cast<char>(kValueFormatVersion));
  PutVarint64(values.size(), out);
  for (const Value& v : values) EncodeValue(v, out);
}

Status DecodeValues(std::string_view in, std::vector<Value>* values) {
  Reader r(in);
  uint8_t version;
  if (!r.Byte(&version)) return Corrupt("row (empty)");
  if (version != kValueFormatVersion) {
    return Status::Corruption("stored row has unknown format version " + std::to_string(version));
  }
  uint64_t count;
  // Every value takes at least one byte: a count beyond that is corrupt.
  if (!r.Varint64(&count) || count > r.rest().size()) return Corrupt("row (count)");
  values->resize(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) {
    if (!ReadValue(r, &(*values)[i])) {
      return Status::Corruption("malformed stored row: value " + std::to_string(i));
    }
  }
  if (!r.empty()) return Corrupt("row (trailing bytes)");
  return Status::Ok();
}

void EncodeAccumulator(const Accumulator& acc, std::string* out) {
  bool has_numeric = acc.num_sum != 0 || acc.num_scale != 0 || !acc.scale_counts.empty();
  bool has_float = acc.float_mant != 0 || acc.float_exp != 0;
  bool has_special = acc.nan_count != 0 || acc.pinf_count != 0 || acc.ninf_count != 0;
  bool has_interval = acc.iv_months != 0 || acc.iv_days != 0 || acc.iv_micros != 0;
  uint8_t flags = (acc.count != 0 ? 1 : 0) | (acc.int_sum != 0 ? 2 : 0) | (has_numeric ? 4 : 0) |
                  (has_float ? 8 : 0) | (has_special ? 16 : 0) | (has_interval ? 32 : 0);
  out->push_back(static_cast<char>(kAccumulatorFormatVersion));
  out->push_back(static_cast<char>(flags));
  if (flags & 1) PutVarint64(ZigZag64(acc.count), out);
  if (flags & 2) PutVarint(ZigZag128(acc.int_sum), out);
  if (flags & 4) {
    PutVarint64(static_cast<uint64_t>(acc.num_scale), out);
    PutBigint(acc.num_sum, out);
    PutVarint64(acc.scale_counts.size(), out);
    for (const auto& [scale, count] : acc.scale_counts) {
      PutVarint64(static_cast<uint64_t>(scale), out);
      PutVarint64(ZigZag64(count), out);
    }
  }
  if (flags & 8) {
    PutVarint64(ZigZag64(acc.float_exp), out);
    PutBigint(acc.float_mant, out);
  }
  if (flags & 16) {
    PutVarint64(ZigZag64(acc.nan_count), out);
    PutVarint64(ZigZag64(acc.pinf_count), out);
    PutVarint64(ZigZag64(acc.ninf_count), out);
  }
  if (flags & 32) {
    PutVarint(ZigZag128(acc.iv_months), out);
    PutVarint(ZigZag128(acc.iv_days), out);
    PutVarint(ZigZag128(acc.iv_micros), out);
  }
}

Status DecodeAccumulator(std::string_view in, Accumulator* acc) {
  Reader r(in);
  *acc = Accumulator();
  uint8_t version, flags;
  if (!r.Byte(&version)) return Corrupt("aggregate state (empty)");
  if (version != kAccumulatorFormatVersion) {
    return Status::Corruption("stored aggregate state has unknown format version " +
                              std::to_string(version));
  }
  if (!r.Byte(&flags) || (flags & ~0x3F) != 0) return Corrupt("aggregate state (flags)");
  if ((flags & 1) && !r.ZigZag64(&acc->count)) return Corrupt("aggregate state (count)");
  if ((flags & 2) && !r.ZigZag128(&acc->int_sum)) return Corrupt("aggregate state (int sum)");
  if (flags & 4) {
    uint64_t scale, n;
    if (!r.Varint64(&scale) || scale > kMaxScale * 2 || !r.Bigint(&acc->num_sum) ||
        !r.Varint64(&n) || n > r.rest().size()) {
      return Corrupt("aggregate state (numeric sum)");
    }
    acc->num_scale = static_cast<int32_t>(scale);
    acc->scale_counts.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t s;
      int64_t c;
      if (!r.Varint64(&s) || s > kMaxScale || !r.ZigZag64(&c) || c == 0 ||
          (!acc->scale_counts.empty() &&
           static_cast<int32_t>(s) <= acc->scale_counts.back().first)) {
        return Corrupt("aggregate state (numeric scales)");
      }
      acc->scale_counts.emplace_back(static_cast<int32_t>(s), c);
    }
  }
  if (flags & 8) {
    int64_t e;
    if (!r.ZigZag64(&e) || e < std::numeric_limits<int32_t>::min() ||
        e > std::numeric_limits<int32_t>::max() || !r.Bigint(&acc->float_mant)) {
      return Corrupt("aggregate state (float sum)");
    }
    acc->float_exp = static_cast<int32_t>(e);
  }
  if ((flags & 16) && (!r.ZigZag64(&acc->nan_count) || !r.ZigZag64(&acc->pinf_count) ||
                       !r.ZigZag64(&acc->ninf_count))) {
    return Corrupt("aggregate state (NaN/infinity counts)");
  }
  if ((flags & 32) && (!r.ZigZag128(&acc->iv_months) || !r.ZigZag128(&acc->iv_days) ||
                       !r.ZigZag128(&acc->iv_micros))) {
    return Corrupt("aggregate state (interval sum)");
  }
  if (!r.empty()) return Corrupt("aggregate state (trailing bytes)");
  return Status::Ok();
}

}  // namespace tally::agg
