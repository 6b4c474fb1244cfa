// Postgres's calendar arithmetic (backend/utils/adt/datetime.c and timestamp.c).
#include "tally/core/datetime.h"

#include <charconv>

namespace tally::datetime {
namespace {

void AppendZeroPadded(std::string* out, uint64_t v, int width) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  int len = static_cast<int>(r.ptr - buf);
  for (int i = len; i < width; ++i) out->push_back('0');
  out->append(buf, r.ptr);
}

}  // namespace

int64_t Date2J(int64_t year, int64_t month, int64_t day) {
  if (month > 2) {
    month += 1;
    year += 4800;
  } else {
    month += 13;
    year += 4799;
  }
  int64_t century = year / 100;
  int64_t julian = year * 365 - 32167;
  julian += year / 4 - century + century / 4;
  julian += 7834 * month / 256 + day;
  return julian;
}

void J2Date(int64_t jd, int64_t* year, int* month, int* day) {
  uint64_t julian = static_cast<uint64_t>(jd) + 32044;
  uint64_t quad = julian / 146097;
  uint64_t extra = (julian - quad * 146097) * 4 + 3;
  julian += 60 + quad * 3 + extra / 146097;
  quad = julian / 1461;
  julian -= quad * 1461;
  int64_t y = static_cast<int64_t>(julian * 4 / 1461);
  julian = ((y != 0) ? ((julian + 305) % 365) : ((julian + 306) % 366)) + 123;
  y += static_cast<int64_t>(quad * 4);
  *year = y - 4800;
  quad = julian * 2141 / 65536;
  *day = static_cast<int>(julian - 7834 * quad / 256);
  *month = static_cast<int>((quad + 10) % 12 + 1);
}

bool IsLeapYear(int64_t year) {
  return (year % 4 == 0) && ((year % 100 != 0) || (year % 400 == 0));
}

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && IsLeapYear(year)) return 29;
  return kDays[month - 1];
}

DayAndTime SplitTimestamp(int64_t ts) {
  DayAndTime r;
  r.days = FloorDiv(ts, kUsecsPerDay);
  r.time = ts - r.days * kUsecsPerDay;
  return r;
}

TimeFields SplitTime(int64_t usecs) {
  TimeFields f;
  f.hour = usecs / kUsecsPerHour;
  usecs -= f.hour * kUsecsPerHour;
  f.minute = usecs / kUsecsPerMinute;
  usecs -= f.minute * kUsecsPerMinute;
  f.second = usecs / kUsecsPerSec;
  f.usec = usecs - f.second * kUsecsPerSec;
  return f;
}

IntervalFields SplitInterval(const Interval& iv) {
  IntervalFields f;
  f.year = iv.months / kMonthsPerYear;
  f.mon = iv.months % kMonthsPerYear;
  f.mday = iv.days;
  f.time = SplitTime(iv.micros);
  return f;
}

void AppendDate(std::string* out, int64_t year, int month, int day) {
  AppendZeroPadded(out, static_cast<uint64_t>(year > 0 ? year : 1 - year), 4);
  out->push_back('-');
  AppendZeroPadded(out, static_cast<uint64_t>(month), 2);
  out->push_back('-');
  AppendZeroPadded(out, static_cast<uint64_t>(day), 2);
}

void AppendTime(std::string* out, uint64_t hour, uint64_t minute, uint64_t second, uint64_t usec) {
  AppendZeroPadded(out, hour, 2);
  out->push_back(':');
  AppendZeroPadded(out, minute, 2);
  out->push_back(':');
  AppendZeroPadded(out, second, 2);
  if (usec == 0) return;
  char digits[6];
  for (int i = 5; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + usec % 10);
    usec /= 10;
  }
  int len = 6;
  while (len > 0 && digits[len - 1] == '0') --len;
  out->push_back('.');
  out->append(digits, static_cast<size_t>(len));
}

void AppendTzOffset(std::string* out, int64_t offset_secs) {
  uint64_t a = static_cast<uint64_t>(offset_secs < 0 ? -offset_secs : offset_secs);
  out->push_back(offset_secs < 0 ? '-' : '+');
  AppendZeroPadded(out, a / 3600, 2);
  if (a % 3600 == 0) return;
  out->push_back(':');
  AppendZeroPadded(out, (a / 60) % 60, 2);
  if (a % 60 == 0) return;
  out->push_back(':');
  AppendZeroPadded(out, a % 60, 2);
}

}  // namespace tally::datetime
