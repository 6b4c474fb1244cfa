// Private: calendar and time-zone arithmetic on Postgres's representations (dates as days and
// timestamps as microseconds since 2000-01-01), following backend/utils/adt/{date,timestamp}.c.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tally/core/datetime.h"
#include "tally/core/status.h"
#include "tally/core/value.h"

namespace date {
class time_zone;
}

namespace tally::compiler::dt {

using datetime::FloorDiv;
using datetime::kUnixEpochDays;
using datetime::kUnixEpochUsecs;
using datetime::kUsecsPerDay;
using datetime::kUsecsPerSec;

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
  return utc_usec + OffsetAt(zone, utc_usec) * kUsecsPerSec;
}
// Postgres's DetermineTimeZoneOffset: a local time in a spring-forward gap takes the offset
// before the transition, an ambiguous one (fall back) the offset after it.
int64_t LocalOffset(const date::time_zone* zone, int64_t local_usec);
inline int64_t LocalToUtc(const date::time_zone* zone, int64_t local_usec) {
  return local_usec - LocalOffset(zone, local_usec) * kUsecsPerSec;
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

// ---- intervals (backend/utils/adt/timestamp.c and datetime.c) ----

// Valid timestamps: [4714-11-24 BC, 294277-01-01) (IS_VALID_TIMESTAMP).
inline constexpr int64_t kMinTimestamp = -211813488000000000LL;
inline constexpr int64_t kEndTimestamp = 9223371331200000000LL;

// interval_in without a type modifier: DecodeInterval's forms ("1 day 02:00", "-1.5 hours",
// "1-2", "@ 3 days ago", a bare number of seconds) and ISO 8601's format with designators
// ("P1Y2M3DT4H"). InvalidArgument with Postgres's message; NotSupported for ISO 8601's
// alternative format ("P0001-02-03").
Result<Interval> ParseInterval(std::string_view text);

// timestamp_pl_interval (zone_aware false) and timestamptz_pl_interval (true: the month and
// day steps happen in local time of `zone`, null meaning UTC). Infinite timestamps pass
// through; anything else out of range is "timestamp out of range".
Result<int64_t> AddInterval(int64_t ts, const Interval& iv, bool zone_aware,
                            const date::time_zone* zone);
Result<Interval> IntervalAdd(const Interval& a, const Interval& b);
Result<Interval> IntervalSub(const Interval& a, const Interval& b);
Result<Interval> IntervalNegate(const Interval& a);
Result<Interval> IntervalMul(const Interval& a, double factor);
Result<Interval> IntervalDiv(const Interval& a, double factor);
// timestamp_mi (timestamps or timestamptz values): the difference, justified to < 24 hours.
Result<Interval> TimestampDiff(int64_t a, int64_t b);

// EXTRACT / date_part over an interval: the value as unscaled / 10^scale. Units Postgres
// refuses for intervals give its error.
Result<Numeric> IntervalField(Unit unit, std::string_view unit_text, const Interval& iv);
// date_part's float8 result for an interval.
Result<double> IntervalFieldFloat(Unit unit, std::string_view unit_text, const Interval& iv);

}  // namespace tally::compiler::dt
