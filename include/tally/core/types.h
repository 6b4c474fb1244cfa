// PostgreSQL type OIDs tally knows, and what it knows about them.
#pragma once

#include <cstdint>
#include <string_view>

namespace tally {

using Oid = uint32_t;

namespace pgtype {
inline constexpr Oid kInvalid = 0;
inline constexpr Oid kBool = 16;
inline constexpr Oid kBytea = 17;
inline constexpr Oid kName = 19;
inline constexpr Oid kInt8 = 20;
inline constexpr Oid kInt2 = 21;
inline constexpr Oid kInt4 = 23;
inline constexpr Oid kText = 25;
inline constexpr Oid kOid = 26;
inline constexpr Oid kJson = 114;
inline constexpr Oid kFloat4 = 700;
inline constexpr Oid kFloat8 = 701;
inline constexpr Oid kUnknown = 705;
inline constexpr Oid kBpchar = 1042;
inline constexpr Oid kVarchar = 1043;
inline constexpr Oid kDate = 1082;
inline constexpr Oid kTime = 1083;
inline constexpr Oid kTimestamp = 1114;
inline constexpr Oid kTimestampTz = 1184;
inline constexpr Oid kInterval = 1186;
inline constexpr Oid kNumeric = 1700;
inline constexpr Oid kUuid = 2950;
inline constexpr Oid kJsonb = 3802;
}  // namespace pgtype

// How a Value of a type is held in memory (see value.h).
enum class Repr : uint8_t {
  kBool,      // bool
  kInt,       // int64_t: int2, int4, int8, oid
  kFloat,     // double: float4, float8
  kNumeric,   // Numeric
  kText,      // std::string: text, varchar, bpchar, name, and any type tally only groups by
              // or compares for equality (uuid, json, ...): its text form, as the server sent it
  kDate,      // int64_t days since 2000-01-01 (Postgres's epoch)
  kTimestamp, // int64_t microseconds since 2000-01-01 00:00 (timestamp: local; timestamptz: UTC)
  kInterval,  // Interval
};

Repr ReprOf(Oid type);
// "integer", "numeric", ... as Postgres's format_type would name it (without typmod).
std::string_view TypeName(Oid type);
bool IsIntegerType(Oid t);   // int2, int4, int8
bool IsNumericCategory(Oid t);  // integers, numeric, float4, float8
bool IsTextType(Oid t);      // text, varchar, bpchar, name

}  // namespace tally
