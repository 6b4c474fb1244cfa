#include "datetime.h"

#include <date/date.h>
#include <date/tz.h>

#include <cctype>
#include <chrono>
#include <cstdio>

#include "tally/compiler/eval.h"

namespace tally::compiler::dt {

Civil CivilFromDays(int64_t days) {
  date::year_month_day ymd{date::sys_days{date::days{days + kUnixEpochDays}}};
  Civil c;
  c.year = static_cast<int>(ymd.year());
  c.month = static_cast<int>(static_cast<unsigned>(ymd.month()));
  c.day = static_cast<int>(static_cast<unsigned>(ymd.day()));
  return c;
}

int64_t DaysFromCivil(int year, int month, int day) {
  auto sd = date::sys_days{date::year{year} / date::month{static_cast<unsigned>(month)} /
                           date::day{static_cast<unsigned>(day)}};
  return sd.time_since_epoch().count() - kUnixEpochDays;
}

Civil CivilFromTimestamp(int64_t ts) {
  int64_t days = FloorDiv(ts, kUsecPerDay);
  int64_t rem = ts - days * kUsecPerDay;
  Civil c = CivilFromDays(days);
  c.hour = static_cast<int>(rem / (3600 * kUsecPerSec));
  rem %= 3600 * kUsecPerSec;
  c.minute = static_cast<int>(rem / (60 * kUsecPerSec));
  rem %= 60 * kUsecPerSec;
  c.second = static_cast<int>(rem / kUsecPerSec);
  c.usec = static_cast<int>(rem % kUsecPerSec);
  return c;
}

int64_t TimestampFromCivil(const Civil& c) {
  return DaysFromCivil(c.year, c.month, c.day) * kUsecPerDay +
         ((c.hour * 60LL + c.minute) * 60 + c.second) * kUsecPerSec + c.usec;
}

int64_t OffsetAt(const date::time_zone* zone, int64_t utc_usec) {
  if (zone == nullptr) return 0;
  auto secs = std::chrono::seconds{FloorDiv(utc_usec + kUnixEpochUsec, kUsecPerSec)};
  auto info = zone->get_info(date::sys_seconds{secs});
  return info.offset.count();
}

int64_t LocalOffset(const date::time_zone* zone, int64_t local_usec) {
  if (zone == nullptr) return 0;
  auto secs = std::chrono::seconds{FloorDiv(local_usec + kUnixEpochUsec, kUsecPerSec)};
  auto info = zone->get_info(date::local_seconds{secs});
  switch (info.result) {
    case date::local_info::unique:
    case date::local_info::nonexistent:
      return info.first.offset.count();
    case date::local_info::ambiguous:
      return info.second.offset.count();
  }
  return info.first.offset.count();
}

int DayOfWeek(int64_t days) {
  // 2000-01-01 was a Saturday (6).
  int64_t d = (days + 6) % 7;
  return static_cast<int>(d < 0 ? d + 7 : d);
}

int64_t IsoWeekStart(int year, int month, int day) {
  int64_t days = DaysFromCivil(year, month, day);
  int dow = DayOfWeek(days);     // 0 = Sunday
  int iso = dow == 0 ? 7 : dow;  // 1 = Monday
  return days - (iso - 1);
}

static int64_t IsoYearStart(int year) {
  // The Monday of the week holding January 4th.
  int64_t jan4 = DaysFromCivil(year, 1, 4);
  int dow = DayOfWeek(jan4);
  int iso = dow == 0 ? 7 : dow;
  return jan4 - (iso - 1);
}

int IsoYear(int year, int month, int day) {
  int64_t days = DaysFromCivil(year, month, day);
  if (days >= IsoYearStart(year + 1)) return year + 1;
  if (days < IsoYearStart(year)) return year - 1;
  return year;
}

int IsoWeek(int year, int month, int day) {
  int iy = IsoYear(year, month, day);
  int64_t days = DaysFromCivil(year, month, day);
  return static_cast<int>((days - IsoYearStart(iy)) / 7 + 1);
}

std::string FormatDate(int64_t days) {
  Civil c = CivilFromDays(days);
  char buf[48];
  if (c.year > 0) {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", c.year, c.month, c.day);
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d BC", 1 - c.year, c.month, c.day);
  }
  return buf;
}

static void AppendTime(std::string& out, const Civil& c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, " %02d:%02d:%02d", c.hour, c.minute, c.second);
  out += buf;
  if (c.usec != 0) {
    std::snprintf(buf, sizeof buf, ".%06d", c.usec);
    std::string frac(buf);
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
}

static std::string FormatCivil(const Civil& c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", c.year > 0 ? c.year : 1 - c.year, c.month,
                c.day);
  std::string out(buf);
  AppendTime(out, c);
  return out;
}

std::string FormatTimestamp(int64_t ts) {
  if (ts == INT64_MAX) return "infinity";
  if (ts == INT64_MIN) return "-infinity";
  Civil c = CivilFromTimestamp(ts);
  std::string out = FormatCivil(c);
  if (c.year <= 0) out += " BC";
  return out;
}

std::string FormatTimestampTz(int64_t utc, const date::time_zone* zone) {
  if (utc == INT64_MAX) return "infinity";
  if (utc == INT64_MIN) return "-infinity";
  int64_t off = OffsetAt(zone, utc);
  Civil c = CivilFromTimestamp(utc + off * kUsecPerSec);
  std::string out = FormatCivil(c);
  char buf[16];
  int64_t a = off < 0 ? -off : off;
  std::snprintf(buf, sizeof buf, "%c%02d", off < 0 ? '-' : '+', static_cast<int>(a / 3600));
  out += buf;
  if (a % 3600 != 0) {
    std::snprintf(buf, sizeof buf, ":%02d", static_cast<int>((a / 60) % 60));
    out += buf;
    if (a % 60 != 0) {
      std::snprintf(buf, sizeof buf, ":%02d", static_cast<int>(a % 60));
      out += buf;
    }
  }
  if (c.year <= 0) out += " BC";
  return out;
}

namespace {

struct Cursor {
  std::string_view s;
  size_t i = 0;
  bool done() const { return i >= s.size(); }
  char peek() const { return done() ? '\0' : s[i]; }
  void SkipSpace() {
    while (!done() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  // Reads up to max_digits digits; false if none.
  bool Digits(int64_t* out, int* count, int max_digits = 18) {
    int64_t v = 0;
    int n = 0;
    while (!done() && std::isdigit(static_cast<unsigned char>(s[i])) && n < max_digits) {
      v = v * 10 + (s[i] - '0');
      ++i;
      ++n;
    }
    if (count) *count = n;
    *out = v;
    return n > 0;
  }
};

Status BadInput(std::string_view type_name, std::string_view text) {
  return Status::InvalidArgument("invalid input syntax for type " + std::string(type_name) +
                                 ": \"" + std::string(text) + "\"");
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Parses "YYYY-MM-DD" (also with '/' separators) at the cursor.
bool ParseYmd(Cursor& c, int* y, int* m, int* d) {
  int64_t v;
  int n;
  if (!c.Digits(&v, &n, 9) || n < 1) return false;
  *y = static_cast<int>(v);
  char sep = c.peek();
  if (sep != '-' && sep != '/') return false;
  ++c.i;
  if (!c.Digits(&v, &n, 2)) return false;
  *m = static_cast<int>(v);
  if (c.peek() != sep) return false;
  ++c.i;
  if (!c.Digits(&v, &n, 2)) return false;
  *d = static_cast<int>(v);
  return true;
}

bool ValidDate(int y, int m, int d) {
  if (m < 1 || m > 12 || d < 1) return false;
  auto ymd =
      date::year{y} / date::month{static_cast<unsigned>(m)} / date::day{static_cast<unsigned>(d)};
  return ymd.ok();
}

}  // namespace

Result<int64_t> ParseDate(std::string_view text) {
  std::string_view t = Trim(text);
  Cursor c{t};
  int y, m, d;
  if (!ParseYmd(c, &y, &m, &d)) return BadInput("date", text);
  c.SkipSpace();
  // A time part after the date is accepted and ignored, as date_in does.
  if (!c.done()) {
    TALLY_ASSIGN_OR_RETURN(auto ts, ParseTimestamp(text, "date"));
    return FloorDiv(ts.local, kUsecPerDay);
  }
  if (!ValidDate(y, m, d)) {
    return Status::InvalidArgument("date/time field value out of range: \"" + std::string(text) +
                                   "\"");
  }
  return DaysFromCivil(y, m, d);
}

Result<ParsedTimestamp> ParseTimestamp(std::string_view text, std::string_view type_name) {
  std::string_view t = Trim(text);
  ParsedTimestamp out;
  if (EqualsIgnoreCase(t, "infinity")) {
    out.local = INT64_MAX;
    return out;
  }
  if (EqualsIgnoreCase(t, "-infinity")) {
    out.local = INT64_MIN;
    return out;
  }
  if (EqualsIgnoreCase(t, "epoch")) {
    out.local = -kUnixEpochUsec;
    out.offset_seconds = 0;
    return out;
  }
  Cursor c{t};
  Civil cv;
  if (!ParseYmd(c, &cv.year, &cv.month, &cv.day)) return BadInput(type_name, text);
  if (!ValidDate(cv.year, cv.month, cv.day)) {
    return Status::InvalidArgument("date/time field value out of range: \"" + std::string(text) +
                                   "\"");
  }
  if (c.peek() == 'T' || c.peek() == 't') {
    ++c.i;
  } else {
    c.SkipSpace();
  }
  int64_t v;
  int n;
  if (!c.done() && std::isdigit(static_cast<unsigned char>(c.peek()))) {
    if (!c.Digits(&v, &n, 2)) return BadInput(type_name, text);
    cv.hour = static_cast<int>(v);
    if (c.peek() != ':') return BadInput(type_name, text);
    ++c.i;
    if (!c.Digits(&v, &n, 2)) return BadInput(type_name, text);
    cv.minute = static_cast<int>(v);
    if (c.peek() == ':') {
      ++c.i;
      if (!c.Digits(&v, &n, 2)) return BadInput(type_name, text);
      cv.second = static_cast<int>(v);
      if (c.peek() == '.') {
        ++c.i;
        int64_t frac = 0;
        int digits = 0;
        while (!c.done() && std::isdigit(static_cast<unsigned char>(c.peek()))) {
          if (digits < 7) {
            frac = frac * 10 + (c.peek() - '0');
            ++digits;
          }
          ++c.i;
        }
        // Round to microseconds as Postgres does (half up on the 7th digit).
        while (digits < 7) {
          frac *= 10;
          ++digits;
        }
        cv.usec = static_cast<int>((frac + 5) / 10);
      }
    }
    if (cv.hour > 24 || cv.minute > 59 || cv.second > 60 ||
        (cv.hour == 24 && (cv.minute || cv.second || cv.usec))) {
      return Status::InvalidArgument("date/time field value out of range: \"" + std::string(text) +
                                     "\"");
    }
  }
  int64_t local = DaysFromCivil(cv.year, cv.month, cv.day) * kUsecPerDay +
                  ((cv.hour * 60LL + cv.minute) * 60 + cv.second) * kUsecPerSec + cv.usec;
  out.local = local;
  c.SkipSpace();
  if (c.done()) return out;
  char ch = c.peek();
  if (ch == '+' || ch == '-') {
    ++c.i;
    int sign = ch == '-' ? -1 : 1;
    int64_t hh = 0, mm = 0, ss = 0;
    if (!c.Digits(&v, &n, 4)) return BadInput(type_name, text);
    if (n > 2) {
      hh = v / 100;
      mm = v % 100;
    } else {
      hh = v;
      if (c.peek() == ':') {
        ++c.i;
        if (!c.Digits(&mm, &n, 2)) return BadInput(type_name, text);
        if (c.peek() == ':') {
          ++c.i;
          if (!c.Digits(&ss, &n, 2)) return BadInput(type_name, text);
        }
      }
    }
    out.offset_seconds = sign * (hh * 3600 + mm * 60 + ss);
    c.SkipSpace();
    if (!c.done()) return BadInput(type_name, text);
    return out;
  }
  std::string_view rest = Trim(t.substr(c.i));
  if (rest == "Z" || rest == "z") {
    out.offset_seconds = 0;
    return out;
  }
  auto zone = FindTimeZone(rest);
  if (!zone.ok()) return BadInput(type_name, text);
  out.zone = *zone;
  return out;
}

std::optional<Unit> ParseUnit(std::string_view name) {
  std::string n;
  for (char ch : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  struct Entry {
    const char* name;
    Unit unit;
  };
  static const Entry kUnits[] = {
      {"microseconds", Unit::kMicroseconds},
      {"microsecond", Unit::kMicroseconds},
      {"us", Unit::kMicroseconds},
      {"usec", Unit::kMicroseconds},
      {"usecs", Unit::kMicroseconds},
      {"milliseconds", Unit::kMilliseconds},
      {"millisecond", Unit::kMilliseconds},
      {"ms", Unit::kMilliseconds},
      {"msec", Unit::kMilliseconds},
      {"msecs", Unit::kMilliseconds},
      {"second", Unit::kSecond},
      {"seconds", Unit::kSecond},
      {"sec", Unit::kSecond},
      {"secs", Unit::kSecond},
      {"s", Unit::kSecond},
      {"minute", Unit::kMinute},
      {"minutes", Unit::kMinute},
      {"min", Unit::kMinute},
      {"mins", Unit::kMinute},
      {"m", Unit::kMinute},
      {"hour", Unit::kHour},
      {"hours", Unit::kHour},
      {"hr", Unit::kHour},
      {"hrs", Unit::kHour},
      {"h", Unit::kHour},
      {"day", Unit::kDay},
      {"days", Unit::kDay},
      {"d", Unit::kDay},
      {"week", Unit::kWeek},
      {"weeks", Unit::kWeek},
      {"w", Unit::kWeek},
      {"month", Unit::kMonth},
      {"months", Unit::kMonth},
      {"mon", Unit::kMonth},
      {"mons", Unit::kMonth},
      {"quarter", Unit::kQuarter},
      {"qtr", Unit::kQuarter},
      {"year", Unit::kYear},
      {"years", Unit::kYear},
      {"yr", Unit::kYear},
      {"yrs", Unit::kYear},
      {"y", Unit::kYear},
      {"decade", Unit::kDecade},
      {"decades", Unit::kDecade},
      {"dec", Unit::kDecade},
      {"decs", Unit::kDecade},
      {"century", Unit::kCentury},
      {"centuries", Unit::kCentury},
      {"cent", Unit::kCentury},
      {"c", Unit::kCentury},
      {"millennium", Unit::kMillennium},
      {"millennia", Unit::kMillennium},
      {"mil", Unit::kMillennium},
      {"mils", Unit::kMillennium},
      {"epoch", Unit::kEpoch},
      {"dow", Unit::kDow},
      {"isodow", Unit::kIsoDow},
      {"doy", Unit::kDoy},
      {"isoyear", Unit::kIsoYear},
      {"julian", Unit::kJulian},
      {"j", Unit::kJulian},
      {"timezone", Unit::kTimezone},
      {"timezone_hour", Unit::kTimezoneHour},
      {"timezone_minute", Unit::kTimezoneMinute},
  };
  for (const auto& e : kUnits) {
    if (n == e.name) return e.unit;
  }
  return std::nullopt;
}

Result<int64_t> TruncLocal(Unit unit, int64_t local) {
  if (local == INT64_MAX || local == INT64_MIN) return local;
  Civil c = CivilFromTimestamp(local);
  switch (unit) {
    case Unit::kWeek: {
      int64_t monday = IsoWeekStart(c.year, c.month, c.day);
      return monday * kUsecPerDay;
    }
    case Unit::kMillennium:
      c.year = c.year > 0 ? ((c.year + 999) / 1000) * 1000 - 999
                          : -((999 - (c.year - 1)) / 1000) * 1000 + 1;
      c.month = 1;
      c.day = 1;
      c.hour = c.minute = c.second = c.usec = 0;
      break;
    case Unit::kCentury:
      c.year =
          c.year > 0 ? ((c.year + 99) / 100) * 100 - 99 : -((99 - (c.year - 1)) / 100) * 100 + 1;
      c.month = 1;
      c.day = 1;
      c.hour = c.minute = c.second = c.usec = 0;
      break;
    case Unit::kDecade:
      c.year = c.year > 0 ? (c.year / 10) * 10 : -((8 - (c.year - 1)) / 10) * 10;
      [[fallthrough]];
    case Unit::kYear:
      c.month = 1;
      [[fallthrough]];
    case Unit::kQuarter:
      c.month = (3 * ((c.month - 1) / 3)) + 1;
      [[fallthrough]];
    case Unit::kMonth:
      c.day = 1;
      [[fallthrough]];
    case Unit::kDay:
      c.hour = 0;
      [[fallthrough]];
    case Unit::kHour:
      c.minute = 0;
      [[fallthrough]];
    case Unit::kMinute:
      c.second = 0;
      [[fallthrough]];
    case Unit::kSecond:
      c.usec = 0;
      break;
    case Unit::kMilliseconds:
      c.usec = (c.usec / 1000) * 1000;
      break;
    case Unit::kMicroseconds:
      break;
    default:
      return Status::InvalidArgument("unit is not supported by date_trunc");
  }
  return TimestampFromCivil(c);
}

}  // namespace tally::compiler::dt
