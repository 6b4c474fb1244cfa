// Order-preserving, memcomparable keys for Values (RocksDB keys for min/max multisets,
// count(DISTINCT) sets and group keys).
//
// For two non-NULL values a, b of the same column type: memcmp order of their keys equals
// Postgres's btree order of a and b, and the keys are equal exactly when a = b under
// Postgres's = (numeric 1.0 and 1.00, float -0 and 0, NaN and NaN, interval '1 mon' and
// '30 days', bpchar with and without trailing spaces give equal keys). Keys are
// prefix-free, so several can be concatenated into a composite key. Keys of different
// types are not comparable. The encoding is frozen (stored in RocksDB keys):
//   bool                 1 byte, 0 or 1
//   int2/int4/int8/oid,  8 bytes big-endian, sign bit flipped
//   date, timestamp(tz)
//   float4/float8        8 bytes: IEEE bits of the double (-0 as 0), positive: sign bit
//                        set, negative: all bits inverted; every NaN is 0xFF x 8
//   numeric              tag: 0x00 -Infinity, 0x01 negative, 0x02 zero, 0x03 positive,
//                        0x04 +Infinity, 0x05 NaN; finite nonzero values then carry the
//                        decimal exponent E (value = 0.d1d2... * 10^E) as 4 bytes
//                        big-endian with the sign bit flipped, then the significant
//                        digits without trailing zeros as nibbles d+1, two per byte,
//                        ended by a 0 nibble (and padded with 0); negative values have
//                        the exponent and digit bytes inverted
//   text types           Collation::AppendSortKey (bpchar without trailing spaces)
//   other text-form      bytes escaped as Collation "C" does, plus 0x00 (byte order)
//   interval             16 bytes big-endian of the span in microseconds (30-day months,
//                        24-hour days), sign bit flipped
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "tally/core/collation.h"
#include "tally/core/value.h"

namespace tally::agg {

// REQUIRES: !v.is_null() (NULL order is the caller's choice); appends nothing for NULL.
// `coll` is used for text, varchar, bpchar and name only.
void AppendSortKey(const Value& v, const Collation& coll, std::string* out);

// Postgres's btree comparison of two non-NULL values of the same type (<0, 0, >0); the
// reference AppendSortKey agrees with.
int CompareValues(const Value& a, const Value& b, const Collation& coll);

}  // namespace tally::agg
