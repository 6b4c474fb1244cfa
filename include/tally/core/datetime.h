// Calendar arithmetic on Postgres's date/time representations: dates are days and timestamps
// microseconds since 2000-01-01 (the Postgres epoch), Julian day numbers follow date2j/j2date
// of backend/utils/adt/datetime.c (proleptic Gregorian, year 0 is 1 BC). Shared by core's
// text I/O (value.cc) and the compiler's date/time functions so that both agree to the digit.
//
// Pure functions without state: safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "tally/core/value.h"

namespace tally::datetime {

inline constexpr int64_t kUsecsPerSec = 1000000;
inline constexpr int64_t kUsecsPerMinute = 60 * kUsecsPerSec;
inline constexpr int64_t kUsecsPerHour = 60 * kUsecsPerMinute;
inline constexpr int64_t kUsecsPerDay = 24 * kUsecsPerHour;
inline constexpr int64_t kSecsPerDay = 86400;
inline constexpr int kMonthsPerYear = 12;
inline constexpr int kDaysPerMonth = 30;  // an interval's month, as Postgres counts it
inline constexpr int64_t kPostgresEpochJdate = 2451545;  // Date2J(2000, 1, 1)
inline constexpr int64_t kUnixEpochDays = 10957;         // 1970-01-01 -> 2000-01-01
inline constexpr int64_t kUnixEpochUsecs = kUnixEpochDays * kUsecsPerDay;

// Division rounding toward minus infinity: the day of a timestamp before 2000.
inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Postgres's date2j and j2date, in 64-bit arithmetic so that years beyond 32-bit day counts
// still convert. J2Date is meant for jd >= 0 (4714-11-24 BC, Postgres's first date).
int64_t Date2J(int64_t year, int64_t month, int64_t day);
void J2Date(int64_t jd, int64_t* year, int* month, int* day);

bool IsLeapYear(int64_t year);
int DaysInMonth(int64_t year, int month);  // month 1..12

// A timestamp as its day (rounded down) and the microseconds into that day (0 ..
// kUsecsPerDay - 1), as timestamp2tm splits it.
struct DayAndTime {
  int64_t days = 0;
  int64_t time = 0;
};
DayAndTime SplitTimestamp(int64_t ts);

// A span of microseconds as hours, minutes, seconds and microseconds, by truncating division
// (a negative span gives fields that are all <= 0), as interval2itm and time2tm do.
struct TimeFields {
  int64_t hour = 0;
  int64_t minute = 0;
  int64_t second = 0;
  int64_t usec = 0;
};
TimeFields SplitTime(int64_t usecs);

// interval2itm: the broken-down fields that interval output and EXTRACT read.
struct IntervalFields {
  int64_t year = 0;
  int64_t mon = 0;
  int64_t mday = 0;
  TimeFields time;
};
IntervalFields SplitInterval(const Interval& iv);

// Text pieces of DateStyle=ISO output (EncodeDateOnly / EncodeDateTime / EncodeTimezone).
// "YYYY-MM-DD", a year <= 0 written as 1 - year (the caller appends " BC").
void AppendDate(std::string* out, int64_t year, int month, int day);
// "HH:MM:SS" and, when usec != 0, ".ffffff" without trailing zeros. Magnitudes only: the
// caller writes any sign.
void AppendTime(std::string* out, uint64_t hour, uint64_t minute, uint64_t second, uint64_t usec);
// "+HH", "-HH:MM" or "+HH:MM:SS" of an offset in seconds east of UTC.
void AppendTzOffset(std::string* out, int64_t offset_secs);

}  // namespace tally::datetime
