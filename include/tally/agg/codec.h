// Binary encodings of Values and Accumulators as stored in RocksDB. Frozen formats:
// change them only with a new version number and a reader for the old one.
//
// Value (EncodeValue), no version byte of its own (the record holding it has one):
//   header   varint64: (type_oid << 3) | tag, tag = 0 NULL, 1 bool, 2 int64 (ints, oid,
//            date, timestamps), 3 float (float4/float8), 4 numeric, 5 text form,
//            6 interval
//   payload  bool: 1 byte 0/1 | int64: zigzag varint | float: 8 bytes little-endian IEEE
//            double | text: varint length + bytes | interval: zigzag varints micros,
//            days, months | numeric: 1 byte kind (0 finite with int64 unscaled, 1 finite
//            big, 2 NaN, 3 +Infinity, 4 -Infinity); finite: varint scale, then for kind 0
//            a zigzag varint unscaled value, for kind 1 varint (byte_count << 1 | negative)
//            and the magnitude's bytes little-endian
// Row (EncodeValues): 1 byte kValueFormatVersion, varint count, count Values.
// Accumulator (EncodeAccumulator): 1 byte kAccumulatorFormatVersion, 1 byte presence
//   flags (bit 0 count, 1 int_sum, 2 numeric, 3 float, 4 specials, 5 interval), then the
//   present groups in that order: count zigzag varint | int_sum zigzag varint128 |
//   num_scale varint, num_sum bigint, varint n, n x (scale varint, count zigzag varint) |
//   float_exp zigzag varint, float_mant bigint | nan, +inf, -inf zigzag varints |
//   months, days, micros zigzag varint128. bigint = varint (byte_count << 1 | negative)
//   + magnitude little-endian.
//
// Decoding never trusts its input: malformed bytes give Corruption, never a crash.
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tally/agg/aggregate.h"
#include "tally/core/status.h"
#include "tally/core/value.h"

namespace tally::agg {

inline constexpr uint8_t kValueFormatVersion = 1;
inline constexpr uint8_t kAccumulatorFormatVersion = 1;

void EncodeValue(const Value& v, std::string* out);
// Decodes one Value from the front of *in and advances *in past it.
Result<Value> DecodeValue(std::string_view* in);

// Unsigned LEB128 varints, as the encodings above use. GetVarint64 advances *in past the
// varint; false (nothing consumed that matters) when it is truncated or over 64 bits.
void PutVarint64(uint64_t v, std::string* out);
bool GetVarint64(std::string_view* in, uint64_t* v);

// A row: version byte, count, values.
void EncodeValues(const std::vector<Value>& values, std::string* out);
// Replaces *values with the decoded row (reusing its capacity); the whole input must be
// one row.
Status DecodeValues(std::string_view in, std::vector<Value>* values);

void EncodeAccumulator(const Accumulator& acc, std::string* out);
// The whole input must be one accumulator.
Status DecodeAccumulator(std::string_view in, Accumulator* acc);

}  // namespace tally::agg
