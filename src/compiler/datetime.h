// Private: calendar and time-zone arithmetic on Postgres's representations (dates as days and
// timestamps as microseconds since 2000-01-01), following backend/utils/adt/{date,timestamp}.c.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tally/core/status.h"

namespace date {
class time_zone;
}

namespace tally::compiler::dt {

inline constexpr int64_t kUsecPerSec = 1000000;
inline constexpr int64_t kUsecPerDay = 86400LL * kUsecPerSec;
inline constexpr int64_t kUnixEpochDays = 10957;  // 1970-01-01 -> 2000-01-01
inline constexpr int64_t kUnixEpochUsec = kUnixEpochDays * kUsecPerDay;

inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

struct Civil {
  int year = 2000;
  int month = 1;  // 1..12
  int day = 1;    // 1..31
  int hour = 0;
  int minute = 0;
  int second = 0;
  int usec = 0;  // 0..999999
};

Civil CivilFromDays(int64_t days);
int64_t DaysFromCivil(int year, int month, int day);
Civil CivilFromTimestamp(int64_t ts);
int64_t TimestampFromCivil(const Civil& c);

// Offset (seconds east of UTC) in force at the UTC instant; 0 for a null zone.
int64_t OffsetAt(const date::time_zone* zone, int64_t utc_usec);
inline int64_t UtcToLocal(const date::time_zone* zone, int64_t utc_usec) {
  return utc_usec + OffsetAt(zone, utc_usec) * kUsecPerSec;
}
// Postgres's DetermineTimeZoneOffset: a local time in a spring-forward gap takes the offset
// before the transition, an ambiguous one (fall back) the offset after it.
int64_t LocalOffset(const date::time_zone* zone, int64_t local_usec);
inline int64_t LocalToUtc(const date::time_zone* zone, int64_t local_usec) {
  return local_usec - LocalOffset(zone, local_usec) * kUsecPerSec;
}

int DayOfWeek(int64_t days);  // 0 = Sunday
int IsoWeek(int year, int month, int day);
int IsoYear(int year, int month, int day);
int64_t IsoWeekStart(int year, int month, int day);  // days of the Monday of that ISO week

// Text forms (DateStyle ISO).
std::string FormatDate(int64_t days);
std::string FormatTimestamp(int64_t ts);  // local
std::string FormatTimestampTz(int64_t utc, const date::time_zone* zone);

// Text input. A timestamp may carry a zone ("+02", "-05:30", "Z", "UTC" or an IANA name);
// ParseTimestamp reports it so that the caller can apply or ignore it as Postgres does.
struct ParsedTimestamp {
  int64_t local = 0;                      // the date and time as written
  std::optional<int64_t> offset_seconds;  // explicit numeric offset or Z
  const date::time_zone* zone = nullptr;  // explicit zone name
};
Result<int64_t> ParseDate(std::string_view text);
Result<ParsedTimestamp> ParseTimestamp(std::string_view text, std::string_view type_name);

// Units of date_trunc / extract, lower-cased Postgres names ("day", "epoch"...).
enum class Unit : uint8_t {
  kMicroseconds,
  kMilliseconds,
  kSecond,
  kMinute,
  kHour,
  kDay,
  kWeek,
  kMonth,
  kQuarter,
  kYear,
  kDecade,
  kCentury,
  kMillennium,
  kEpoch,
  kDow,
  kIsoDow,
  kDoy,
  kIsoYear,
  kJulian,
  kTimezone,
  kTimezoneHour,
  kTimezoneMinute,
};
std::optional<Unit> ParseUnit(std::string_view name);

// Truncates a local timestamp (date_trunc over timestamp). Units above kMillennium are invalid.
Result<int64_t> TruncLocal(Unit unit, int64_t local);

}  // namespace tally::compiler::dt
