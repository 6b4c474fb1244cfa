#include "datetime.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "tally/compiler/eval.h"

namespace tally::compiler::dt {

using datetime::kDaysPerMonth;
using datetime::kMonthsPerYear;
using datetime::kPostgresEpochJdate;
using datetime::kSecsPerDay;
using datetime::kUsecsPerHour;
using datetime::kUsecsPerMinute;

namespace {

// j2date into a Civil's int fields.
void J2Date(int64_t jd, int* year, int* month, int* day) {
  int64_t y;
  datetime::J2Date(jd, &y, month, day);
  *year = static_cast<int>(y);
}

}  // namespace

Civil CivilFromDays(int64_t days) {
  Civil c;
  int64_t jd = days + kPostgresEpochJdate;
  if (jd >= 0) {
    J2Date(jd, &c.year, &c.month, &c.day);
    return c;
  }
  // Before 4713 BC (not a valid Postgres date): the proleptic calendar of the date library.
  date::year_month_day ymd{date::sys_days{date::days{days + kUnixEpochDays}}};
  c.year = static_cast<int>(ymd.year());
  c.month = static_cast<int>(static_cast<unsigned>(ymd.month()));
  c.day = static_cast<int>(static_cast<unsigned>(ymd.day()));
  return c;
}

int64_t DaysFromCivil(int year, int month, int day) {
  return datetime::Date2J(year, month, day) - kPostgresEpochJdate;
}

Civil CivilFromTimestamp(int64_t ts) {
  datetime::DayAndTime split = datetime::SplitTimestamp(ts);
  datetime::TimeFields t = datetime::SplitTime(split.time);
  Civil c = CivilFromDays(split.days);
  c.hour = static_cast<int>(t.hour);
  c.minute = static_cast<int>(t.minute);
  c.second = static_cast<int>(t.second);
  c.usec = static_cast<int>(t.usec);
  return c;
}

int64_t TimestampFromCivil(const Civil& c) {
  return DaysFromCivil(c.year, c.month, c.day) * kUsecsPerDay +
         ((c.hour * 60LL + c.minute) * 60 + c.second) * kUsecsPerSec + c.usec;
}

namespace {

// The offset in force over one stretch [begin, end) of UTC time (seconds since 1970) of one
// zone: the last one looked up, per thread. A zone changes its offset once or twice a year, so
// the instants of a batch mostly fall in one stretch; date::time_zone::get_info searches the
// zone's transitions and builds the abbreviation's string on every call (3% of the apply
// worker's time in bench/core, one date_trunc view).
struct OffsetStretch {
  const date::time_zone* zone = nullptr;
  int64_t begin = 0;
  int64_t end = 0;
  int64_t offset = 0;
};
thread_local OffsetStretch last_stretch;

// Two days: more than any zone's offset has ever jumped (Pacific/Apia skipped one day in 2011).
constexpr int64_t kStretchMargin = 2 * kSecsPerDay;

const OffsetStretch& StretchAt(const date::time_zone* zone, int64_t utc_secs) {
  OffsetStretch& s = last_stretch;
  if (s.zone == zone && utc_secs >= s.begin && utc_secs < s.end) return s;
  const date::sys_info info = zone->get_info(date::sys_seconds{std::chrono::seconds{utc_secs}});
  s.zone = zone;
  s.begin = info.begin.time_since_epoch().count();
  s.end = info.end.time_since_epoch().count();
  s.offset = info.offset.count();
  return s;
}

}  // namespace

int64_t OffsetAt(const date::time_zone* zone, int64_t utc_usec) {
  if (zone == nullptr) return 0;
  return StretchAt(zone, FloorDiv(utc_usec + kUnixEpochUsecs, kUsecsPerSec)).offset;
}

int64_t LocalOffset(const date::time_zone* zone, int64_t local_usec) {
  if (zone == nullptr) return 0;
  const int64_t local_secs = FloorDiv(local_usec + kUnixEpochUsecs, kUsecsPerSec);
  const OffsetStretch& s = last_stretch;
  if (s.zone == zone) {
    // Read with the last stretch's offset, the local time falls well inside that stretch: no
    // other offset of the zone can reach it, so it has this one reading.
    const int64_t utc = local_secs - s.offset;
    if (utc - kStretchMargin >= s.begin && utc + kStretchMargin < s.end) return s.offset;
  }
  auto info = zone->get_info(date::local_seconds{std::chrono::seconds{local_secs}});
  int64_t offset = info.first.offset.count();
  switch (info.result) {
    case date::local_info::unique:
    case date::local_info::nonexistent:
      break;
    case date::local_info::ambiguous:
      offset = info.second.offset.count();
      break;
  }
  // The next local time of the batch is most likely in the same stretch.
  StretchAt(zone, local_secs - offset);
  return offset;
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
  std::string out;
  datetime::AppendDate(&out, c.year, c.month, c.day);
  if (c.year <= 0) out += " BC";
  return out;
}

// "YYYY-MM-DD HH:MM:SS[.ffffff]"; " BC" is the caller's.
static std::string FormatCivil(const Civil& c) {
  std::string out;
  datetime::AppendDate(&out, c.year, c.month, c.day);
  out.push_back(' ');
  datetime::AppendTime(&out, static_cast<uint64_t>(c.hour), static_cast<uint64_t>(c.minute),
                       static_cast<uint64_t>(c.second), static_cast<uint64_t>(c.usec));
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
  Civil c = CivilFromTimestamp(utc + off * kUsecsPerSec);
  std::string out = FormatCivil(c);
  datetime::AppendTzOffset(&out, off);
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
    return FloorDiv(ts.local, kUsecsPerDay);
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
    out.local = -kUnixEpochUsecs;
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
  out.local = TimestampFromCivil(cv);
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
      return monday * kUsecsPerDay;
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

// ---- intervals ----

namespace {

Status IntervalSyntax(std::string_view text) {
  return Status::InvalidArgument("invalid input syntax for type interval: \"" + std::string(text) +
                                 "\"");
}
Status IntervalFieldOverflow(std::string_view text) {
  return Status::InvalidArgument("interval field value out of range: \"" + std::string(text) +
                                 "\"");
}
Status IntervalOutOfRange() { return Status::InvalidArgument("interval out of range"); }
Status TimestampOutOfRange() { return Status::InvalidArgument("timestamp out of range"); }

// pg_itm_in: the parts DecodeInterval accumulates.
struct ItmIn {
  int64_t usec = 0;
  int32_t mday = 0;
  int32_t mon = 0;
  int32_t year = 0;
};

bool MulAdd(int64_t val, int64_t multiplier, int64_t* sum) {
  int64_t product;
  return !__builtin_mul_overflow(val, multiplier, &product) &&
         !__builtin_add_overflow(*sum, product, sum);
}

bool AdjustFractMicroseconds(double frac, int64_t scale, ItmIn* itm) {
  if (frac == 0) return true;
  frac *= static_cast<double>(scale);
  int64_t usec = static_cast<int64_t>(frac);
  frac -= static_cast<double>(usec);
  if (frac > 0.5) {
    ++usec;
  } else if (frac < -0.5) {
    --usec;
  }
  return !__builtin_add_overflow(itm->usec, usec, &itm->usec);
}

bool AdjustFractDays(double frac, int scale, ItmIn* itm) {
  if (frac == 0) return true;
  frac *= scale;
  int extra_days = static_cast<int>(frac);
  if (__builtin_add_overflow(itm->mday, extra_days, &itm->mday)) return false;
  frac -= extra_days;
  return AdjustFractMicroseconds(frac, kUsecsPerDay, itm);
}

bool AdjustFractYears(double frac, int scale, ItmIn* itm) {
  int extra_months = static_cast<int>(std::rint(frac * scale * kMonthsPerYear));
  return !__builtin_add_overflow(itm->mon, extra_months, &itm->mon);
}

bool AdjustMicroseconds(int64_t val, double fval, int64_t scale, ItmIn* itm) {
  if (!MulAdd(val, scale, &itm->usec)) return false;
  return AdjustFractMicroseconds(fval, scale, itm);
}

bool AdjustDays(int64_t val, int scale, ItmIn* itm) {
  if (val < INT32_MIN || val > INT32_MAX) return false;
  int32_t days;
  return !__builtin_mul_overflow(static_cast<int32_t>(val), scale, &days) &&
         !__builtin_add_overflow(itm->mday, days, &itm->mday);
}

bool AdjustMonths(int64_t val, ItmIn* itm) {
  if (val < INT32_MIN || val > INT32_MAX) return false;
  return !__builtin_add_overflow(itm->mon, static_cast<int32_t>(val), &itm->mon);
}

bool AdjustYears(int64_t val, int scale, ItmIn* itm) {
  if (val < INT32_MIN || val > INT32_MAX) return false;
  int32_t years;
  return !__builtin_mul_overflow(static_cast<int32_t>(val), scale, &years) &&
         !__builtin_add_overflow(itm->year, years, &itm->year);
}

enum class Dterr { kOk, kBadFormat, kFieldOverflow, kNotSupported };

// ParseDateTime's field types.
enum class Ftype { kNumber, kDate, kTime, kString, kSpecial, kTz };

struct Field {
  std::string text;
  Ftype type;
};

// Keywords of datetktbl that end a text field followed by a digit or '+' (ParseDateTime).
bool IsDateKeyword(std::string_view w) {
  static const char* const kWords[] = {
      "ad",      "allballs", "am",       "apr",       "april",    "at",        "aug",      "august",
      "bc",      "d",        "dec",      "december",  "dow",      "doy",       "dst",      "epoch",
      "feb",     "february", "fri",      "friday",    "h",        "infinity",  "invalid",  "isodow",
      "isoyear", "j",        "jan",      "january",   "jd",       "jul",       "julian",   "july",
      "jun",     "june",     "m",        "mar",       "march",    "may",       "mm",       "mon",
      "monday",  "nov",      "november", "now",       "oct",      "october",   "on",       "pm",
      "s",       "sat",      "saturday", "sep",       "sept",     "september", "sun",      "sunday",
      "t",       "thu",      "thur",     "thurs",     "thursday", "today",     "tomorrow", "tue",
      "tues",    "tuesday",  "wed",      "wednesday", "weds",     "y",         "yesterday"};
  for (const char* k : kWords) {
    if (w == k) return true;
  }
  return false;
}

char Lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }
bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool IsAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

Dterr ParseDateTimeFields(std::string_view str, std::vector<Field>* out) {
  size_t i = 0;
  auto at = [&](size_t k) { return k < str.size() ? str[k] : '\0'; };
  while (i < str.size()) {
    char c = str[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    Field f;
    if (IsDigit(c)) {
      f.text += str[i++];
      while (IsDigit(at(i))) f.text += str[i++];
      if (at(i) == ':') {
        f.type = Ftype::kTime;
        f.text += str[i++];
        while (IsDigit(at(i)) || at(i) == ':' || at(i) == '.') f.text += str[i++];
      } else if (at(i) == '-' || at(i) == '/' || at(i) == '.') {
        char delim = str[i];
        f.text += str[i++];
        if (IsDigit(at(i))) {
          f.type = delim == '.' ? Ftype::kNumber : Ftype::kDate;
          while (IsDigit(at(i))) f.text += str[i++];
          if (at(i) == delim) {
            f.type = Ftype::kDate;
            f.text += str[i++];
            while (IsDigit(at(i)) || at(i) == delim) f.text += str[i++];
          }
        } else {
          f.type = Ftype::kDate;
          while (std::isalnum(static_cast<unsigned char>(at(i))) || at(i) == delim) {
            f.text += Lower(str[i++]);
          }
        }
      } else {
        f.type = Ftype::kNumber;
      }
    } else if (c == '.') {
      f.text += str[i++];
      while (IsDigit(at(i))) f.text += str[i++];
      f.type = Ftype::kNumber;
    } else if (IsAlpha(c)) {
      f.type = Ftype::kString;
      f.text += Lower(str[i++]);
      while (IsAlpha(at(i))) f.text += Lower(str[i++]);
      bool is_date = false;
      if (at(i) == '-' || at(i) == '/' || at(i) == '.') {
        is_date = true;
      } else if (at(i) == '+' || IsDigit(at(i))) {
        is_date = !IsDateKeyword(f.text);
      }
      if (is_date) {
        f.type = Ftype::kDate;
        do {
          f.text += Lower(str[i++]);
        } while (at(i) == '+' || at(i) == '-' || at(i) == '/' || at(i) == '_' || at(i) == '.' ||
                 at(i) == ':' || std::isalnum(static_cast<unsigned char>(at(i))));
      }
    } else if (c == '+' || c == '-') {
      f.text += str[i++];
      while (std::isspace(static_cast<unsigned char>(at(i)))) ++i;
      if (IsDigit(at(i))) {
        f.type = Ftype::kTz;
        f.text += str[i++];
        while (IsDigit(at(i)) || at(i) == ':' || at(i) == '.' || at(i) == '-') f.text += str[i++];
      } else if (IsAlpha(at(i))) {
        f.type = Ftype::kSpecial;
        f.text += Lower(str[i++]);
        while (IsAlpha(at(i))) f.text += Lower(str[i++]);
      } else {
        return Dterr::kBadFormat;
      }
    } else if (std::ispunct(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    } else {
      return Dterr::kBadFormat;
    }
    out->push_back(std::move(f));
  }
  return Dterr::kOk;
}

// DecodeUnits over deltatktbl.
enum class Dtk {
  kNone,
  kIgnore,
  kAgo,
  kMicrosec,
  kMillisec,
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
  kTz,
};

Dtk DecodeUnits(std::string_view token) {
  std::string t(token.substr(0, 10));  // TOKMAXLEN: longer tokens match by prefix
  static const struct {
    const char* name;
    Dtk dtk;
  } kUnits[] = {{"@", Dtk::kIgnore},
                {"ago", Dtk::kAgo},
                {"c", Dtk::kCentury},
                {"cent", Dtk::kCentury},
                {"centuries", Dtk::kCentury},
                {"century", Dtk::kCentury},
                {"d", Dtk::kDay},
                {"day", Dtk::kDay},
                {"days", Dtk::kDay},
                {"dec", Dtk::kDecade},
                {"decade", Dtk::kDecade},
                {"decades", Dtk::kDecade},
                {"decs", Dtk::kDecade},
                {"h", Dtk::kHour},
                {"hour", Dtk::kHour},
                {"hours", Dtk::kHour},
                {"hr", Dtk::kHour},
                {"hrs", Dtk::kHour},
                {"m", Dtk::kMinute},
                {"microsecon", Dtk::kMicrosec},
                {"mil", Dtk::kMillennium},
                {"millennia", Dtk::kMillennium},
                {"millennium", Dtk::kMillennium},
                {"millisecon", Dtk::kMillisec},
                {"mils", Dtk::kMillennium},
                {"min", Dtk::kMinute},
                {"mins", Dtk::kMinute},
                {"minute", Dtk::kMinute},
                {"minutes", Dtk::kMinute},
                {"mon", Dtk::kMonth},
                {"mons", Dtk::kMonth},
                {"month", Dtk::kMonth},
                {"months", Dtk::kMonth},
                {"ms", Dtk::kMillisec},
                {"msec", Dtk::kMillisec},
                {"msecond", Dtk::kMillisec},
                {"mseconds", Dtk::kMillisec},
                {"msecs", Dtk::kMillisec},
                {"qtr", Dtk::kQuarter},
                {"quarter", Dtk::kQuarter},
                {"s", Dtk::kSecond},
                {"sec", Dtk::kSecond},
                {"second", Dtk::kSecond},
                {"seconds", Dtk::kSecond},
                {"secs", Dtk::kSecond},
                {"timezone", Dtk::kTz},
                {"timezone_h", Dtk::kTz},
                {"timezone_m", Dtk::kTz},
                {"us", Dtk::kMicrosec},
                {"usec", Dtk::kMicrosec},
                {"usecond", Dtk::kMicrosec},
                {"useconds", Dtk::kMicrosec},
                {"usecs", Dtk::kMicrosec},
                {"w", Dtk::kWeek},
                {"week", Dtk::kWeek},
                {"weeks", Dtk::kWeek},
                {"y", Dtk::kYear},
                {"year", Dtk::kYear},
                {"years", Dtk::kYear},
                {"yr", Dtk::kYear},
                {"yrs", Dtk::kYear}};
  for (const auto& u : kUnits) {
    if (t == u.name) return u.dtk;
  }
  return Dtk::kNone;
}

// Field masks (DTK_M) for the duplicate-field check.
enum : int {
  kMYear = 1 << 0,
  kMMonth = 1 << 1,
  kMDay = 1 << 2,
  kMHour = 1 << 3,
  kMMinute = 1 << 4,
  kMSecond = 1 << 5,
  kMMillisecond = 1 << 6,
  kMMicrosecond = 1 << 7,
  kMWeek = 1 << 8,
  kMDecade = 1 << 9,
  kMCentury = 1 << 10,
  kMMillennium = 1 << 11,
  kMAllSecs = kMSecond | kMMillisecond | kMMicrosecond,
  kMTime = kMHour | kMMinute | kMAllSecs,
};

// strtoll with errno-based range reporting, as strtoi64.
bool StrToI64(const char* s, char** end, int64_t* out) {
  errno = 0;
  long long v = std::strtoll(s, end, 10);
  *out = v;
  return errno != ERANGE;
}

bool StrToInt(const char* s, char** end, int* out) {
  errno = 0;
  long v = std::strtol(s, end, 10);
  if (errno == ERANGE || v < INT32_MIN || v > INT32_MAX) {
    *out = 0;
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

Dterr ParseFraction(const char* cp, double* frac) {
  if (cp[1] == '\0') {
    *frac = 0;
    return Dterr::kOk;
  }
  errno = 0;
  char* end = nullptr;
  *frac = std::strtod(cp, &end);
  if (*end != '\0' || errno != 0) return Dterr::kBadFormat;
  return Dterr::kOk;
}

Dterr DecodeTimeForInterval(const char* str, int* tmask, ItmIn* itm) {
  *tmask = kMTime;
  char* cp = nullptr;
  int64_t hour;
  if (!StrToI64(str, &cp, &hour)) return Dterr::kFieldOverflow;
  if (*cp != ':') return Dterr::kBadFormat;
  int min = 0, sec = 0;
  int64_t fsec = 0;
  if (!StrToInt(cp + 1, &cp, &min)) return Dterr::kFieldOverflow;
  if (*cp == '\0') {
    sec = 0;
  } else if (*cp == '.') {
    double frac;
    if (ParseFraction(cp, &frac) != Dterr::kOk) return Dterr::kBadFormat;
    fsec = static_cast<int64_t>(std::rint(frac * 1000000));
    if (hour > INT32_MAX || hour < INT32_MIN) return Dterr::kFieldOverflow;
    sec = min;
    min = static_cast<int>(hour);
    hour = 0;
  } else if (*cp == ':') {
    if (!StrToInt(cp + 1, &cp, &sec)) return Dterr::kFieldOverflow;
    if (*cp == '.') {
      double frac;
      if (ParseFraction(cp, &frac) != Dterr::kOk) return Dterr::kBadFormat;
      fsec = static_cast<int64_t>(std::rint(frac * 1000000));
    } else if (*cp != '\0') {
      return Dterr::kBadFormat;
    }
  } else {
    return Dterr::kBadFormat;
  }
  if (hour < 0 || min < 0 || min > 59 || sec < 0 || sec > 60 || fsec < 0 || fsec > kUsecsPerSec) {
    return Dterr::kFieldOverflow;
  }
  itm->usec = fsec;
  if (!MulAdd(hour, kUsecsPerHour, &itm->usec) || !MulAdd(min, kUsecsPerMinute, &itm->usec) ||
      !MulAdd(sec, kUsecsPerSec, &itm->usec)) {
    return Dterr::kFieldOverflow;
  }
  return Dterr::kOk;
}

Dterr DecodeInterval(const std::vector<Field>& fields, ItmIn* itm) {
  int fmask = 0;
  Dtk type = Dtk::kIgnore;
  bool is_before = false;
  int nf = static_cast<int>(fields.size());
  for (int i = nf - 1; i >= 0; --i) {
    const Field& f = fields[static_cast<size_t>(i)];
    const char* field = f.text.c_str();
    int tmask = 0;
    bool number = false;
    switch (f.type) {
      case Ftype::kTime: {
        Dterr e = DecodeTimeForInterval(field, &tmask, itm);
        if (e != Dterr::kOk) return e;
        type = Dtk::kDay;
        break;
      }
      case Ftype::kTz:
        if (std::strchr(field + 1, ':') != nullptr) {
          ItmIn copy = *itm;
          if (DecodeTimeForInterval(field + 1, &tmask, &copy) == Dterr::kOk) {
            *itm = copy;
            if (*field == '-') {
              if (itm->usec == INT64_MIN) return Dterr::kFieldOverflow;
              itm->usec = -itm->usec;
            }
            type = Dtk::kDay;
            break;
          }
        }
        number = true;
        break;
      case Ftype::kDate:
      case Ftype::kNumber:
        number = true;
        break;
      case Ftype::kString:
      case Ftype::kSpecial: {
        // PostgreSQL 15 accepts "ago" anywhere and a unit without a number ("1 day day").
        Dtk u = DecodeUnits(f.text);
        if (u == Dtk::kIgnore) continue;
        if (u == Dtk::kNone) return Dterr::kBadFormat;
        if (u == Dtk::kAgo) {
          is_before = true;
          type = Dtk::kNone;  // a bare number right before "ago" has no unit
          break;
        }
        type = u;
        break;
      }
    }
    if (number) {
      if (type == Dtk::kIgnore) type = Dtk::kSecond;  // no typmod: a bare number is seconds
      char* cp = nullptr;
      int64_t val;
      double fval = 0;
      if (!StrToI64(field, &cp, &val)) return Dterr::kFieldOverflow;
      if (*cp == '-') {
        int val2;
        if (!StrToInt(cp + 1, &cp, &val2) || val2 < 0 || val2 >= kMonthsPerYear) {
          return Dterr::kFieldOverflow;
        }
        if (*cp != '\0') return Dterr::kBadFormat;
        type = Dtk::kMonth;
        if (*field == '-') val2 = -val2;
        if (__builtin_mul_overflow(val, int64_t{kMonthsPerYear}, &val)) {
          return Dterr::kFieldOverflow;
        }
        if (__builtin_add_overflow(val, int64_t{val2}, &val)) return Dterr::kFieldOverflow;
        fval = 0;
      } else if (*cp == '.') {
        if (ParseFraction(cp, &fval) != Dterr::kOk) return Dterr::kBadFormat;
        if (*field == '-') fval = -fval;
      } else if (*cp != '\0') {
        return Dterr::kBadFormat;
      }
      bool ok = true;
      switch (type) {
        case Dtk::kMicrosec:
          ok = AdjustMicroseconds(val, fval, 1, itm);
          tmask = kMMicrosecond;
          break;
        case Dtk::kMillisec:
          ok = AdjustMicroseconds(val, fval, 1000, itm);
          tmask = kMMillisecond;
          break;
        case Dtk::kSecond:
          ok = AdjustMicroseconds(val, fval, kUsecsPerSec, itm);
          tmask = fval == 0 ? kMSecond : kMAllSecs;
          break;
        case Dtk::kMinute:
          ok = AdjustMicroseconds(val, fval, kUsecsPerMinute, itm);
          tmask = kMMinute;
          break;
        case Dtk::kHour:
          ok = AdjustMicroseconds(val, fval, kUsecsPerHour, itm);
          tmask = kMHour;
          type = Dtk::kDay;
          break;
        case Dtk::kDay:
          ok = AdjustDays(val, 1, itm) && AdjustFractMicroseconds(fval, kUsecsPerDay, itm);
          tmask = kMDay;
          break;
        case Dtk::kWeek:
          ok = AdjustDays(val, 7, itm) && AdjustFractDays(fval, 7, itm);
          tmask = kMWeek;
          break;
        case Dtk::kMonth:
          ok = AdjustMonths(val, itm) && AdjustFractDays(fval, kDaysPerMonth, itm);
          tmask = kMMonth;
          break;
        case Dtk::kYear:
          ok = AdjustYears(val, 1, itm) && AdjustFractYears(fval, 1, itm);
          tmask = kMYear;
          break;
        case Dtk::kDecade:
          ok = AdjustYears(val, 10, itm) && AdjustFractYears(fval, 10, itm);
          tmask = kMDecade;
          break;
        case Dtk::kCentury:
          ok = AdjustYears(val, 100, itm) && AdjustFractYears(fval, 100, itm);
          tmask = kMCentury;
          break;
        case Dtk::kMillennium:
          ok = AdjustYears(val, 1000, itm) && AdjustFractYears(fval, 1000, itm);
          tmask = kMMillennium;
          break;
        default:
          return Dterr::kBadFormat;
      }
      if (!ok) return Dterr::kFieldOverflow;
    }
    if (tmask & fmask) return Dterr::kBadFormat;
    fmask |= tmask;
  }
  if (fmask == 0) return Dterr::kBadFormat;
  if (is_before) {
    if (itm->usec == INT64_MIN || itm->mday == INT32_MIN || itm->mon == INT32_MIN ||
        itm->year == INT32_MIN) {
      return Dterr::kFieldOverflow;
    }
    itm->usec = -itm->usec;
    itm->mday = -itm->mday;
    itm->mon = -itm->mon;
    itm->year = -itm->year;
  }
  return Dterr::kOk;
}

// ParseISO8601Number: a strtod number split into integral and fractional parts.
Dterr ParseIso8601Number(const char* str, char** end, int64_t* ipart, double* fpart) {
  if (!(IsDigit(*str) || *str == '-' || *str == '.')) return Dterr::kBadFormat;
  errno = 0;
  double val = std::strtod(str, end);
  if (*end == str || errno != 0) return Dterr::kBadFormat;
  if (std::isnan(val) || val < -1.0e15 || val > 1.0e15) return Dterr::kFieldOverflow;
  *ipart =
      val >= 0 ? static_cast<int64_t>(std::floor(val)) : static_cast<int64_t>(-std::floor(-val));
  *fpart = val - static_cast<double>(*ipart);
  return Dterr::kOk;
}

// DecodeISO8601Interval, format with designators only.
Dterr DecodeIso8601Interval(const std::string& s, ItmIn* itm) {
  *itm = ItmIn();
  if (s.size() < 2 || s[0] != 'P') return Dterr::kBadFormat;
  const char* str = s.c_str() + 1;
  bool datepart = true;
  while (*str) {
    if (*str == 'T') {
      datepart = false;
      ++str;
      continue;
    }
    char* end = nullptr;
    int64_t val;
    double fval;
    Dterr e = ParseIso8601Number(str, &end, &val, &fval);
    if (e != Dterr::kOk) return e;
    str = end;
    char unit = *str;
    if (unit != '\0') ++str;
    bool ok = true;
    if (datepart) {
      switch (unit) {
        case 'Y':
          ok = AdjustYears(val, 1, itm) && AdjustFractYears(fval, 1, itm);
          break;
        case 'M':
          ok = AdjustMonths(val, itm) && AdjustFractDays(fval, kDaysPerMonth, itm);
          break;
        case 'W':
          ok = AdjustDays(val, 7, itm) && AdjustFractDays(fval, 7, itm);
          break;
        case 'D':
          ok = AdjustDays(val, 1, itm) && AdjustFractMicroseconds(fval, kUsecsPerDay, itm);
          break;
        case 'T':
        case '\0':
        case '-':
          return Dterr::kNotSupported;  // the alternative format
        default:
          return Dterr::kBadFormat;
      }
    } else {
      switch (unit) {
        case 'H':
          ok = AdjustMicroseconds(val, fval, kUsecsPerHour, itm);
          break;
        case 'M':
          ok = AdjustMicroseconds(val, fval, kUsecsPerMinute, itm);
          break;
        case 'S':
          ok = AdjustMicroseconds(val, fval, kUsecsPerSec, itm);
          break;
        case '\0':
        case ':':
          return Dterr::kNotSupported;
        default:
          return Dterr::kBadFormat;
      }
    }
    if (!ok) return Dterr::kFieldOverflow;
  }
  return Dterr::kOk;
}

// TSROUND: rounds to 6 decimal places to make near-integers integral.
double TsRound(double j) { return std::rint(j * 1000000.0) / 1000000.0; }

bool FitsInt32(double d) { return !std::isnan(d) && d >= INT32_MIN && d <= INT32_MAX; }

}  // namespace

Result<Interval> ParseInterval(std::string_view text) {
  std::string str(text);
  std::vector<Field> fields;
  ItmIn itm;
  Dterr e = ParseDateTimeFields(str, &fields);
  if (e == Dterr::kOk) e = DecodeInterval(fields, &itm);
  if (e == Dterr::kBadFormat) {
    e = DecodeIso8601Interval(str, &itm);
    if (e == Dterr::kNotSupported) {
      return Status::NotSupported("interval literal \"" + str +
                                  "\" in ISO 8601's alternative format");
    }
  }
  if (e == Dterr::kFieldOverflow) return IntervalFieldOverflow(text);
  if (e != Dterr::kOk) return IntervalSyntax(text);
  int64_t months = static_cast<int64_t>(itm.year) * kMonthsPerYear + itm.mon;
  if (months > INT32_MAX || months < INT32_MIN) return IntervalOutOfRange();
  Interval iv;
  iv.months = static_cast<int32_t>(months);
  iv.days = itm.mday;
  iv.micros = itm.usec;
  return iv;
}

namespace {

bool ValidTimestamp(int64_t ts) { return ts >= kMinTimestamp && ts < kEndTimestamp; }

// Rebuilds a local timestamp from a date and a time of day (tm2timestamp), applying the zone
// for timestamptz (DetermineTimeZoneOffset). Out of range: false.
bool FromLocal(int64_t year, int month, int day, int64_t time_of_day, bool zone_aware,
               const date::time_zone* zone, int64_t* out) {
  // IS_VALID_JULIAN: 4714-11-24 BC .. 5874898-06-01
  if (year < -4713 || (year == -4713 && month < 11) || year > 5874898 ||
      (year == 5874898 && month >= 6)) {
    return false;
  }
  int64_t days = datetime::Date2J(year, month, day) - kPostgresEpochJdate;
  int64_t local = days * kUsecsPerDay + time_of_day;
  if (zone_aware) {
    if (!ValidTimestamp(local)) return false;
    local = LocalToUtc(zone, local);
  }
  if (!ValidTimestamp(local)) return false;
  *out = local;
  return true;
}

}  // namespace

Result<int64_t> AddInterval(int64_t ts, const Interval& iv, bool zone_aware,
                            const date::time_zone* zone) {
  if (ts == INT64_MAX || ts == INT64_MIN) return ts;
  if (iv.months != 0) {
    datetime::DayAndTime local = datetime::SplitTimestamp(zone_aware ? UtcToLocal(zone, ts) : ts);
    Civil c = CivilFromDays(local.days);
    int64_t year = c.year;
    int64_t mon = static_cast<int64_t>(c.month) + iv.months;
    if (mon > kMonthsPerYear) {
      year += (mon - 1) / kMonthsPerYear;
      mon = ((mon - 1) % kMonthsPerYear) + 1;
    } else if (mon < 1) {
      year += mon / kMonthsPerYear - 1;
      mon = mon % kMonthsPerYear + kMonthsPerYear;
    }
    int day = c.day;
    if (year >= -4713 && year <= 5874898) {
      day = std::min(day, datetime::DaysInMonth(year, static_cast<int>(mon)));
    }
    if (!FromLocal(year, static_cast<int>(mon), day, local.time, zone_aware, zone, &ts)) {
      return TimestampOutOfRange();
    }
  }
  if (iv.days != 0) {
    datetime::DayAndTime local = datetime::SplitTimestamp(zone_aware ? UtcToLocal(zone, ts) : ts);
    int64_t jd = local.days + iv.days + kPostgresEpochJdate;
    if (jd < 0) return TimestampOutOfRange();
    int y, m, d;
    J2Date(jd, &y, &m, &d);
    if (!FromLocal(y, m, d, local.time, zone_aware, zone, &ts)) return TimestampOutOfRange();
  }
  if (__builtin_add_overflow(ts, iv.micros, &ts) || !ValidTimestamp(ts)) {
    return TimestampOutOfRange();
  }
  return ts;
}

Result<Interval> IntervalAdd(const Interval& a, const Interval& b) {
  Interval r;
  if (__builtin_add_overflow(a.months, b.months, &r.months) ||
      __builtin_add_overflow(a.days, b.days, &r.days) ||
      __builtin_add_overflow(a.micros, b.micros, &r.micros)) {
    return IntervalOutOfRange();
  }
  return r;
}

Result<Interval> IntervalSub(const Interval& a, const Interval& b) {
  Interval r;
  if (__builtin_sub_overflow(a.months, b.months, &r.months) ||
      __builtin_sub_overflow(a.days, b.days, &r.days) ||
      __builtin_sub_overflow(a.micros, b.micros, &r.micros)) {
    return IntervalOutOfRange();
  }
  return r;
}

Result<Interval> IntervalNegate(const Interval& a) {
  if (a.months == INT32_MIN || a.days == INT32_MIN || a.micros == INT64_MIN) {
    return IntervalOutOfRange();
  }
  return Interval{-a.micros, -a.days, -a.months};
}

namespace {

// interval_mul and interval_div once months, days and microseconds are scaled: the fractional
// months and days cascade down (30-day months, TSROUND at each step). `checked` is
// interval_mul's range check; interval_div converts unchecked, as Postgres 15 does.
Result<Interval> ScaledInterval(double months, double days, double micros, bool checked) {
  Interval r;
  if (checked && !FitsInt32(months)) return IntervalOutOfRange();
  r.months = static_cast<int32_t>(months);
  if (checked && !FitsInt32(days)) return IntervalOutOfRange();
  r.days = static_cast<int32_t>(days);
  double month_remainder_days = TsRound((months - r.months) * kDaysPerMonth);
  double sec_remainder =
      TsRound((days - r.days + month_remainder_days - static_cast<int>(month_remainder_days)) *
              kSecsPerDay);
  if (std::fabs(sec_remainder) >= kSecsPerDay) {
    r.days += static_cast<int>(sec_remainder / kSecsPerDay);
    sec_remainder -= static_cast<int>(sec_remainder / kSecsPerDay) * kSecsPerDay;
  }
  r.days += static_cast<int32_t>(month_remainder_days);
  double result_double = std::rint(micros + sec_remainder * static_cast<double>(kUsecsPerSec));
  if (checked && (std::isnan(result_double) || !(result_double >= -9223372036854775808.0 &&
                                                 result_double < 9223372036854775808.0))) {
    return IntervalOutOfRange();
  }
  r.micros = static_cast<int64_t>(result_double);
  return r;
}

}  // namespace

Result<Interval> IntervalMul(const Interval& span, double factor) {
  return ScaledInterval(span.months * factor, span.days * factor,
                        static_cast<double>(span.micros) * factor, true);
}

Result<Interval> IntervalDiv(const Interval& span, double factor) {
  if (factor == 0.0) return Status::InvalidArgument("division by zero");
  return ScaledInterval(span.months / factor, span.days / factor,
                        static_cast<double>(span.micros) / factor, false);
}

Result<Interval> TimestampDiff(int64_t a, int64_t b) {
  if (a == INT64_MAX || a == INT64_MIN || b == INT64_MAX || b == INT64_MIN) {
    return Status::InvalidArgument("cannot subtract infinite timestamps");
  }
  Interval r;
  r.micros = a - b;
  // interval_justify_hours: whole days move out of the time part.
  int64_t wholeday = r.micros / kUsecsPerDay;
  r.micros -= wholeday * kUsecsPerDay;
  r.days = static_cast<int32_t>(wholeday);
  if (r.days > 0 && r.micros < 0) {
    r.micros += kUsecsPerDay;
    r.days--;
  } else if (r.days < 0 && r.micros > 0) {
    r.micros -= kUsecsPerDay;
    r.days++;
  }
  return r;
}

namespace {

Status IntervalUnitError(Unit unit, std::string_view unit_text) {
  std::string lower;
  for (char ch : unit_text) lower += Lower(ch);
  (void)unit;
  return Status::InvalidArgument("unit \"" + lower + "\" not supported for type interval");
}

Numeric NumericFrom128(__int128 v, int scale) {
  bool neg = v < 0;
  unsigned __int128 u =
      neg ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  } while (u != 0);
  mpz_class z(digits, 10);
  if (neg) z = -z;
  return Numeric(z, scale);
}

}  // namespace

Result<Numeric> IntervalField(Unit unit, std::string_view unit_text, const Interval& iv) {
  datetime::IntervalFields f = datetime::SplitInterval(iv);
  const datetime::TimeFields& t = f.time;
  int64_t r;
  switch (unit) {
    case Unit::kMicroseconds:
      r = t.second * 1000000 + t.usec;
      break;
    case Unit::kMilliseconds:
      return NumericFrom128(t.second * 1000000 + t.usec, 3);
    case Unit::kSecond:
      return NumericFrom128(t.second * 1000000 + t.usec, 6);
    case Unit::kMinute:
      r = t.minute;
      break;
    case Unit::kHour:
      r = t.hour;
      break;
    case Unit::kDay:
      r = f.mday;
      break;
    case Unit::kMonth:
      r = f.mon;
      break;
    case Unit::kQuarter:
      r = f.mon / 3 + 1;
      break;
    case Unit::kYear:
      r = f.year;
      break;
    case Unit::kDecade:
      r = f.year / 10;
      break;
    case Unit::kCentury:
      r = f.year / 100;
      break;
    case Unit::kMillennium:
      r = f.year / 1000;
      break;
    case Unit::kEpoch: {
      // 365.25-day years, 30-day months, counted in quarter days to stay in integers.
      __int128 secs_from_day_month =
          (static_cast<__int128>(4 * 36525 / 100) * (iv.months / kMonthsPerYear) +
           static_cast<__int128>(4 * kDaysPerMonth) * (iv.months % kMonthsPerYear) +
           static_cast<__int128>(4) * iv.days) *
          (kSecsPerDay / 4);
      return NumericFrom128(secs_from_day_month * 1000000 + iv.micros, 6);
    }
    default:
      return IntervalUnitError(unit, unit_text);
  }
  return NumericFrom128(r, 0);
}

Result<double> IntervalFieldFloat(Unit unit, std::string_view unit_text, const Interval& iv) {
  datetime::IntervalFields f = datetime::SplitInterval(iv);
  const datetime::TimeFields& t = f.time;
  switch (unit) {
    case Unit::kMilliseconds:
      return static_cast<double>(t.second) * 1000.0 + static_cast<double>(t.usec) / 1000.0;
    case Unit::kSecond:
      return static_cast<double>(t.second) + static_cast<double>(t.usec) / 1000000.0;
    case Unit::kEpoch: {
      double result = static_cast<double>(iv.micros) / 1000000.0;
      result += (365.25 * kSecsPerDay) * (iv.months / kMonthsPerYear);
      result += (static_cast<double>(kDaysPerMonth) * kSecsPerDay) * (iv.months % kMonthsPerYear);
      result += static_cast<double>(kSecsPerDay) * iv.days;
      return result;
    }
    default: {
      TALLY_ASSIGN_OR_RETURN(Numeric n, IntervalField(unit, unit_text, iv));
      return n.ToDouble();
    }
  }
}

}  // namespace tally::compiler::dt
