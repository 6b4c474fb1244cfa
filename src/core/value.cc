// Value text I/O with Postgres 15's formats (DateStyle=ISO, IntervalStyle=postgres,
// TimeZone=UTC, extra_float_digits>=1), and GROUP BY equality.
#include "tally/core/value.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "tally/core/datetime.h"

namespace tally {
namespace {

using datetime::AppendDate;
using datetime::Date2J;
using datetime::DaysInMonth;
using datetime::kPostgresEpochJdate;
using datetime::kUsecsPerDay;
using datetime::kUsecsPerHour;
using datetime::kUsecsPerMinute;
using datetime::kUsecsPerSec;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

Status SyntaxError(Oid type, std::string_view text) {
  return Status::InvalidArgument("invalid input syntax for type " + std::string(TypeName(type)) +
                                 ": \"" + std::string(text) + "\"");
}

// ---- dates and timestamps ----

// Appends "YYYY-MM-DD" of a Julian day; returns true when the year is BC.
bool AppendIsoDate(std::string* out, int64_t jd) {
  int64_t year;
  int month, day;
  datetime::J2Date(jd, &year, &month, &day);
  AppendDate(out, year, month, day);
  return year <= 0;
}

// Parses "YYYY-MM-DD" at the start of s; on success advances s and sets the Julian day.
// The year may have more than 4 digits; " BC" is handled by the caller.
bool ParseIsoDatePart(std::string_view* s, int64_t* year, int64_t* month, int64_t* day) {
  std::string_view t = *s;
  auto read_int = [&t](int64_t* v, size_t max_digits) {
    size_t i = 0;
    int64_t x = 0;
    while (i < t.size() && IsDigit(t[i]) && i < max_digits) x = x * 10 + (t[i++] - '0');
    if (i == 0) return false;
    *v = x;
    t.remove_prefix(i);
    return true;
  };
  if (!read_int(year, 9)) return false;
  if (t.empty() || t[0] != '-') return false;
  t.remove_prefix(1);
  if (!read_int(month, 2)) return false;
  if (t.empty() || t[0] != '-') return false;
  t.remove_prefix(1);
  if (!read_int(day, 2)) return false;
  *s = t;
  return true;
}

bool ConsumeBc(std::string_view* s) {
  std::string_view t = Trim(*s);
  if (t.size() >= 2 && EqualsNoCase(t.substr(t.size() - 2), "bc")) {
    *s = Trim(t.substr(0, t.size() - 2));
    return true;
  }
  if (t.size() >= 2 && EqualsNoCase(t.substr(t.size() - 2), "ad")) {
    *s = Trim(t.substr(0, t.size() - 2));
  }
  return false;
}

Result<int64_t> ParseDate(std::string_view text) {
  std::string_view s = Trim(text);
  if (EqualsNoCase(s, "infinity") || EqualsNoCase(s, "+infinity")) return kDateNoEnd;
  if (EqualsNoCase(s, "-infinity")) return kDateNoBegin;
  if (EqualsNoCase(s, "epoch")) return -datetime::kUnixEpochDays;
  bool bc = ConsumeBc(&s);
  int64_t y, m, d;
  std::string_view rest = s;
  if (!ParseIsoDatePart(&rest, &y, &m, &d) || !Trim(rest).empty()) {
    return SyntaxError(pgtype::kDate, text);
  }
  if (bc) {
    if (y == 0) return SyntaxError(pgtype::kDate, text);
    y = 1 - y;
  }
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) {
    return Status::InvalidArgument("date/time field value out of range: \"" + std::string(text) +
                                   "\"");
  }
  int64_t jd = Date2J(y, m, d);
  // Postgres's date range: 4713-11-24 BC .. 5874897-12-31.
  if (jd < 0 || jd > Date2J(5874898, 1, 1) - 1) {
    return Status::InvalidArgument("date out of range: \"" + std::string(text) + "\"");
  }
  return jd - kPostgresEpochJdate;
}

std::string FormatDate(int64_t days) {
  if (days == kDateNoBegin) return "-infinity";
  if (days == kDateNoEnd) return "infinity";
  std::string out;
  if (AppendIsoDate(&out, days + kPostgresEpochJdate)) out += " BC";
  return out;
}

// Parses "HH:MM[:SS[.ffffff]]" into microseconds; advances s.
bool ParseTimeOfDay(std::string_view* s, int64_t* micros) {
  std::string_view t = *s;
  auto read_int = [&t](int64_t* v) {
    size_t i = 0;
    int64_t x = 0;
    while (i < t.size() && IsDigit(t[i])) {
      if (x > (std::numeric_limits<int64_t>::max() - 9) / 10) return false;
      x = x * 10 + (t[i++] - '0');
    }
    if (i == 0) return false;
    *v = x;
    t.remove_prefix(i);
    return true;
  };
  int64_t h = 0, m = 0, sec = 0, frac = 0;
  if (!read_int(&h)) return false;
  if (t.empty() || t[0] != ':') return false;
  t.remove_prefix(1);
  if (!read_int(&m)) return false;
  if (!t.empty() && t[0] == ':') {
    t.remove_prefix(1);
    if (!read_int(&sec)) return false;
    if (!t.empty() && t[0] == '.') {
      t.remove_prefix(1);
      // Up to 6 digits, rounded at the 7th as Postgres rounds to microseconds.
      int n = 0;
      int64_t scale = 100000;
      while (!t.empty() && IsDigit(t[0])) {
        int digit = t[0] - '0';
        if (n < 6) {
          frac += digit * scale;
          scale /= 10;
        } else if (n == 6 && digit >= 5) {
          frac += 1;
        }
        ++n;
        t.remove_prefix(1);
      }
    }
  }
  if (h > std::numeric_limits<int64_t>::max() / kUsecsPerHour - 1 || m > 59 || sec > 60) {
    return false;
  }
  *micros = h * kUsecsPerHour + m * kUsecsPerMinute + sec * kUsecsPerSec + frac;
  *s = t;
  return true;
}

// Parses a time zone offset "+HH[:MM[:SS]]", "+HHMM", "Z"; returns seconds east of UTC.
bool ParseTzOffset(std::string_view* s, int64_t* offset_secs) {
  std::string_view t = *s;
  if (!t.empty() && (t[0] == 'Z' || t[0] == 'z')) {
    *offset_secs = 0;
    s->remove_prefix(1);
    return true;
  }
  if (t.empty() || (t[0] != '+' && t[0] != '-')) return false;
  bool neg = t[0] == '-';
  t.remove_prefix(1);
  int64_t parts[3] = {0, 0, 0};
  size_t digits = 0;
  while (digits < t.size() && IsDigit(t[digits])) ++digits;
  if (digits == 0) return false;
  if (digits == 4 && (t.size() == 4 || !IsDigit(t[4]))) {  // +HHMM
    parts[0] = (t[0] - '0') * 10 + (t[1] - '0');
    parts[1] = (t[2] - '0') * 10 + (t[3] - '0');
    t.remove_prefix(4);
  } else {
    if (digits > 2) return false;
    for (size_t i = 0; i < digits; ++i) parts[0] = parts[0] * 10 + (t[i] - '0');
    t.remove_prefix(digits);
    for (int p = 1; p < 3 && t.size() >= 3 && t[0] == ':' && IsDigit(t[1]) && IsDigit(t[2]); ++p) {
      parts[p] = (t[1] - '0') * 10 + (t[2] - '0');
      t.remove_prefix(3);
    }
  }
  if (parts[0] > 15 * 24 || parts[1] > 59 || parts[2] > 59) return false;
  int64_t secs = parts[0] * 3600 + parts[1] * 60 + parts[2];
  *offset_secs = neg ? -secs : secs;
  *s = t;
  return true;
}

// The form Postgres prints (DateStyle ISO): "YYYY-MM-DD HH:MM:SS", then up to 6 fraction digits
// and, for timestamptz, a zone offset ("+HH" or "+HH:MM"). It is what pgoutput sends, and a stream
// parses one per changed row; anything else (and any field out of range) takes the general parser.
std::optional<int64_t> ParseCanonicalTimestamp(Oid type, std::string_view s) {
  auto digits = [&](size_t at, size_t n) -> int64_t {
    int64_t v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (!IsDigit(s[i])) return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  const int64_t y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2);
  const int64_t h = digits(11, 2), mi = digits(14, 2), sec = digits(17, 2);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h < 0 || h > 23 || mi < 0 ||
      mi > 59 || sec < 0 || sec > 59) {
    return std::nullopt;
  }
  size_t i = 19;
  int64_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    size_t n = 0;
    for (++i; i < s.size() && IsDigit(s[i]) && n < 6; ++i, ++n) frac = frac * 10 + (s[i] - '0');
    if (n == 0 || (i < s.size() && IsDigit(s[i]))) return std::nullopt;
    for (; n < 6; ++n) frac *= 10;
  }
  int64_t offset = 0;
  std::string_view zone = s.substr(i);
  if (!zone.empty() && (!ParseTzOffset(&zone, &offset) || !zone.empty())) return std::nullopt;
  int64_t micros = (Date2J(y, mo, d) - kPostgresEpochJdate) * kUsecsPerDay + h * kUsecsPerHour +
                   mi * kUsecsPerMinute + sec * kUsecsPerSec + frac;
  if (type == pgtype::kTimestampTz) micros -= offset * kUsecsPerSec;
  return micros;
}

Result<int64_t> ParseTimestamp(Oid type, std::string_view text) {
  if (auto canonical = ParseCanonicalTimestamp(type, text)) return *canonical;
  std::string_view s = Trim(text);
  if (EqualsNoCase(s, "infinity") || EqualsNoCase(s, "+infinity")) return kTimestampNoEnd;
  if (EqualsNoCase(s, "-infinity")) return kTimestampNoBegin;
  if (EqualsNoCase(s, "epoch")) return -datetime::kUnixEpochDays * kUsecsPerDay;
  bool bc = ConsumeBc(&s);
  int64_t y, m, d;
  if (!ParseIsoDatePart(&s, &y, &m, &d)) return SyntaxError(type, text);
  int64_t time = 0;
  int64_t offset = 0;
  if (!s.empty() && (s[0] == ' ' || s[0] == 'T' || s[0] == 't')) {
    std::string_view t = s.substr(1);
    while (!t.empty() && t[0] == ' ') t.remove_prefix(1);
    if (!t.empty() && IsDigit(t[0])) {
      if (!ParseTimeOfDay(&t, &time)) return SyntaxError(type, text);
      s = t;
    }
  }
  while (!s.empty() && s[0] == ' ') s.remove_prefix(1);
  if (!s.empty()) {
    if (!ParseTzOffset(&s, &offset) || !Trim(s).empty()) return SyntaxError(type, text);
  }
  if (bc) {
    if (y == 0) return SyntaxError(type, text);
    y = 1 - y;
  }
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m) || time > kUsecsPerDay) {
    return Status::InvalidArgument("date/time field value out of range: \"" + std::string(text) +
                                   "\"");
  }
  int64_t days = Date2J(y, m, d) - kPostgresEpochJdate;
  if (days < -2451545 - 1 || days > 2147483647LL - 2451545) {
    return Status::InvalidArgument("timestamp out of range: \"" + std::string(text) + "\"");
  }
  int64_t micros = days * kUsecsPerDay + time;
  // timestamp without time zone ignores a zone, as Postgres does.
  if (type == pgtype::kTimestampTz) micros -= offset * kUsecsPerSec;
  return micros;
}

std::string FormatTimestamp(Oid type, int64_t micros) {
  if (micros == kTimestampNoBegin) return "-infinity";
  if (micros == kTimestampNoEnd) return "infinity";
  datetime::DayAndTime split = datetime::SplitTimestamp(micros);
  datetime::TimeFields t = datetime::SplitTime(split.time);
  std::string out;
  bool bc = AppendIsoDate(&out, split.days + kPostgresEpochJdate);
  out.push_back(' ');
  datetime::AppendTime(&out, static_cast<uint64_t>(t.hour), static_cast<uint64_t>(t.minute),
                       static_cast<uint64_t>(t.second), static_cast<uint64_t>(t.usec));
  // tally's sessions run with TimeZone=UTC.
  if (type == pgtype::kTimestampTz) datetime::AppendTzOffset(&out, 0);
  if (bc) out += " BC";
  return out;
}

// ---- interval ----

void AddPostgresIntPart(std::string* out, int64_t value, const char* units, bool* is_zero,
                        bool* is_before) {
  if (value == 0) return;
  if (!*is_zero) out->push_back(' ');
  if (*is_before && value > 0) out->push_back('+');
  *out += std::to_string(value);
  out->push_back(' ');
  *out += units;
  if (value != 1) out->push_back('s');
  *is_before = value < 0;
  *is_zero = false;
}

uint64_t Magnitude(int64_t v) {
  return v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
}

std::string FormatInterval(const Interval& iv) {
  // interval2itm + EncodeInterval(INTSTYLE_POSTGRES).
  datetime::IntervalFields f = datetime::SplitInterval(iv);
  const datetime::TimeFields& t = f.time;
  std::string out;
  bool is_zero = true;
  bool is_before = false;
  AddPostgresIntPart(&out, f.year, "year", &is_zero, &is_before);
  AddPostgresIntPart(&out, f.mon, "mon", &is_zero, &is_before);
  AddPostgresIntPart(&out, f.mday, "day", &is_zero, &is_before);
  if (is_zero || t.hour != 0 || t.minute != 0 || t.second != 0 || t.usec != 0) {
    bool minus = t.hour < 0 || t.minute < 0 || t.second < 0 || t.usec < 0;
    if (!is_zero) out.push_back(' ');
    if (minus) {
      out.push_back('-');
    } else if (is_before) {
      out.push_back('+');
    }
    datetime::AppendTime(&out, Magnitude(t.hour), Magnitude(t.minute), Magnitude(t.second),
                         Magnitude(t.usec));
  }
  return out;
}

// Units Postgres's DecodeInterval knows (the common spellings).
enum class IUnit {
  kNone,
  kMicro,
  kMilli,
  kSecond,
  kMinute,
  kHour,
  kDay,
  kWeek,
  kMonth,
  kYear,
  kDecade,
  kCentury,
  kMillennium
};

IUnit LookupUnit(std::string_view w) {
  std::string lw;
  for (char c : w) lw.push_back(Lower(c));
  static const struct {
    const char* name;
    IUnit unit;
  } kUnits[] = {
      {"microsecond", IUnit::kMicro},
      {"microseconds", IUnit::kMicro},
      {"us", IUnit::kMicro},
      {"usec", IUnit::kMicro},
      {"usecs", IUnit::kMicro},
      {"usecond", IUnit::kMicro},
      {"useconds", IUnit::kMicro},
      {"millisecond", IUnit::kMilli},
      {"milliseconds", IUnit::kMilli},
      {"ms", IUnit::kMilli},
      {"msec", IUnit::kMilli},
      {"msecs", IUnit::kMilli},
      {"msecond", IUnit::kMilli},
      {"mseconds", IUnit::kMilli},
      {"second", IUnit::kSecond},
      {"seconds", IUnit::kSecond},
      {"sec", IUnit::kSecond},
      {"secs", IUnit::kSecond},
      {"s", IUnit::kSecond},
      {"minute", IUnit::kMinute},
      {"minutes", IUnit::kMinute},
      {"min", IUnit::kMinute},
      {"mins", IUnit::kMinute},
      {"m", IUnit::kMinute},
      {"hour", IUnit::kHour},
      {"hours", IUnit::kHour},
      {"hr", IUnit::kHour},
      {"hrs", IUnit::kHour},
      {"h", IUnit::kHour},
      {"day", IUnit::kDay},
      {"days", IUnit::kDay},
      {"d", IUnit::kDay},
      {"week", IUnit::kWeek},
      {"weeks", IUnit::kWeek},
      {"w", IUnit::kWeek},
      {"month", IUnit::kMonth},
      {"months", IUnit::kMonth},
      {"mon", IUnit::kMonth},
      {"mons", IUnit::kMonth},
      {"year", IUnit::kYear},
      {"years", IUnit::kYear},
      {"yr", IUnit::kYear},
      {"yrs", IUnit::kYear},
      {"y", IUnit::kYear},
      {"decade", IUnit::kDecade},
      {"decades", IUnit::kDecade},
      {"dec", IUnit::kDecade},
      {"decs", IUnit::kDecade},
      {"century", IUnit::kCentury},
      {"centuries", IUnit::kCentury},
      {"c", IUnit::kCentury},
      {"cent", IUnit::kCentury},
      {"millennium", IUnit::kMillennium},
      {"millennia", IUnit::kMillennium},
      {"mil", IUnit::kMillennium},
      {"mils", IUnit::kMillennium},
  };
  for (const auto& u : kUnits) {
    if (lw == u.name) return u.unit;
  }
  return IUnit::kNone;
}

// Adds `ival + fval` units; fractions cascade down as DecodeInterval does: months -> days
// (30) -> microseconds.
void Apply(IUnit unit, int64_t ival, double fval, __int128* months_p, __int128* days_p,
           __int128* micros_p) {
  __int128& months = *months_p;
  __int128& days = *days_p;
  __int128& micros = *micros_p;
  auto frac_micros = [](double f, double usecs) {
    return static_cast<__int128>(std::rint(f * usecs));
  };
  auto add_micros = [&](int64_t scale) {
    micros += static_cast<__int128>(ival) * scale + frac_micros(fval, static_cast<double>(scale));
  };
  // Fractions cascade as DecodeInterval does: months -> days (30) -> seconds.
  auto add_frac_days = [&](double f) {
    double whole = std::trunc(f);
    days += static_cast<__int128>(whole);
    micros += frac_micros(f - whole, static_cast<double>(kUsecsPerDay));
  };
  auto add_days = [&](int scale) {
    days += static_cast<__int128>(ival) * scale;
    add_frac_days(fval * scale);
  };
  auto add_months = [&](int scale) {  // years and up: the fraction rounds to whole months
    months += static_cast<__int128>(ival) * scale + static_cast<__int128>(std::rint(fval * scale));
  };
  switch (unit) {
    case IUnit::kMicro:
      add_micros(1);
      break;
    case IUnit::kMilli:
      add_micros(1000);
      break;
    case IUnit::kSecond:
      add_micros(kUsecsPerSec);
      break;
    case IUnit::kMinute:
      add_micros(kUsecsPerMinute);
      break;
    case IUnit::kHour:
      add_micros(kUsecsPerHour);
      break;
    case IUnit::kDay:
      add_days(1);
      break;
    case IUnit::kWeek:
      add_days(7);
      break;
    case IUnit::kMonth:
      months += ival;
      add_frac_days(fval * datetime::kDaysPerMonth);
      break;
    case IUnit::kYear:
      add_months(12);
      break;
    case IUnit::kDecade:
      add_months(120);
      break;
    case IUnit::kCentury:
      add_months(1200);
      break;
    case IUnit::kMillennium:
      add_months(12000);
      break;
    case IUnit::kNone:
      break;
  }
}

// ISO 8601 "format with designators": P[nY][nM][nW][nD][T[nH][nM][nS]].
bool ParseIso8601Interval(std::string_view s, __int128* months, __int128* days, __int128* micros) {
  if (s.size() < 2 || (s[0] != 'P' && s[0] != 'p')) return false;
  s.remove_prefix(1);
  bool time_part = false;
  while (!s.empty()) {
    if (s[0] == 'T' || s[0] == 't') {
      if (time_part) return false;
      time_part = true;
      s.remove_prefix(1);
      continue;
    }
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
      neg = s[0] == '-';
      s.remove_prefix(1);
    }
    size_t n = 0;
    while (n < s.size() && IsDigit(s[n])) ++n;
    size_t end = n;
    if (end < s.size() && s[end] == '.') {
      ++end;
      while (end < s.size() && IsDigit(s[end])) ++end;
    }
    if (end == 0 || end >= s.size()) return false;
    int64_t ival = 0;
    if (n > 0 && std::from_chars(s.data(), s.data() + n, ival).ec != std::errc()) return false;
    double fval = 0;
    if (end > n + 1) fval = std::strtod(("0" + std::string(s.substr(n, end - n))).c_str(), nullptr);
    if (neg) {
      ival = -ival;
      fval = -fval;
    }
    IUnit unit;
    switch (Lower(s[end])) {
      case 'y':
        unit = time_part ? IUnit::kNone : IUnit::kYear;
        break;
      case 'm':
        unit = time_part ? IUnit::kMinute : IUnit::kMonth;
        break;
      case 'w':
        unit = time_part ? IUnit::kNone : IUnit::kWeek;
        break;
      case 'd':
        unit = time_part ? IUnit::kNone : IUnit::kDay;
        break;
      case 'h':
        unit = time_part ? IUnit::kHour : IUnit::kNone;
        break;
      case 's':
        unit = time_part ? IUnit::kSecond : IUnit::kNone;
        break;
      default:
        unit = IUnit::kNone;
        break;
    }
    if (unit == IUnit::kNone) return false;
    Apply(unit, ival, fval, months, days, micros);
    s.remove_prefix(end + 1);
  }
  return true;
}

Result<Interval> ParseInterval(std::string_view text) {
  std::string_view s = Trim(text);
  if (s.empty()) return SyntaxError(pgtype::kInterval, text);
  // Exact integer parts plus fractional leftovers cascaded down as Postgres does.
  __int128 months = 0, days = 0, micros = 0;
  bool ago = false;
  bool any = false;
  auto fail = [&]() -> Result<Interval> { return SyntaxError(pgtype::kInterval, text); };
  if (s[0] == 'P' || s[0] == 'p') {
    if (!ParseIso8601Interval(s, &months, &days, &micros)) return fail();
    s = std::string_view();
    any = true;
  }
  while (true) {
    while (!s.empty() && IsSpace(s[0])) s.remove_prefix(1);
    if (s.empty()) break;
    if (s[0] == '@') {
      s.remove_prefix(1);
      continue;
    }
    // A word: "ago" or a stray unit.
    if (!IsDigit(s[0]) && s[0] != '+' && s[0] != '-' && s[0] != '.') {
      size_t n = 0;
      while (n < s.size() && !IsSpace(s[n])) ++n;
      if (EqualsNoCase(s.substr(0, n), "ago") && any) {
        ago = true;
        s.remove_prefix(n);
        continue;
      }
      return fail();
    }
    // Signed number, possibly a time "[+-]HH:MM[:SS[.f]]".
    bool neg = false;
    std::string_view t = s;
    if (t[0] == '+' || t[0] == '-') {
      neg = t[0] == '-';
      t.remove_prefix(1);
    }
    size_t n = 0;
    while (n < t.size() && IsDigit(t[n])) ++n;
    if (n < t.size() && t[n] == ':') {
      int64_t tm;
      if (!ParseTimeOfDay(&t, &tm)) return fail();
      micros += neg ? -tm : tm;
      s = t;
      any = true;
      continue;
    }
    // Number with optional fraction.
    size_t end = n;
    if (end < t.size() && t[end] == '.') {
      ++end;
      while (end < t.size() && IsDigit(t[end])) ++end;
    }
    if (end == 0 || (end == 1 && t[0] == '.')) return fail();
    std::string_view int_part = t.substr(0, n);
    std::string_view frac_part = n < end ? t.substr(n + 1, end - n - 1) : std::string_view();
    int64_t ival = 0;
    if (!int_part.empty()) {
      auto r = std::from_chars(int_part.data(), int_part.data() + int_part.size(), ival);
      if (r.ec != std::errc()) {
        return Status::InvalidArgument("interval field value out of range: \"" + std::string(text) +
                                       "\"");
      }
    }
    double fval = 0;
    if (!frac_part.empty()) {
      std::string f = "0." + std::string(frac_part);
      fval = std::strtod(f.c_str(), nullptr);
    }
    if (neg) {
      ival = -ival;
      fval = -fval;
    }
    t.remove_prefix(end);
    // Unit: attached or after spaces.
    while (!t.empty() && IsSpace(t[0])) t.remove_prefix(1);
    size_t w = 0;
    while (w < t.size() && !IsSpace(t[w]) && !IsDigit(t[w]) && t[w] != '+' && t[w] != '-') ++w;
    IUnit unit = IUnit::kNone;
    if (w > 0) {
      unit = LookupUnit(t.substr(0, w));
      if (unit == IUnit::kNone) {
        if (EqualsNoCase(t.substr(0, w), "ago")) {
          w = 0;  // a bare number, then "ago"
        } else {
          return fail();
        }
      }
    }
    if (unit == IUnit::kNone) unit = IUnit::kSecond;  // a bare number is seconds
    t.remove_prefix(w);
    Apply(unit, ival, fval, &months, &days, &micros);
    s = t;
    any = true;
  }
  if (!any) return fail();
  if (ago) {
    months = -months;
    days = -days;
    micros = -micros;
  }
  if (months > std::numeric_limits<int32_t>::max() ||
      months < std::numeric_limits<int32_t>::min() || days > std::numeric_limits<int32_t>::max() ||
      days < std::numeric_limits<int32_t>::min() || micros > std::numeric_limits<int64_t>::max() ||
      micros < std::numeric_limits<int64_t>::min()) {
    return Status::InvalidArgument("interval out of range: \"" + std::string(text) + "\"");
  }
  Interval iv;
  iv.months = static_cast<int32_t>(months);
  iv.days = static_cast<int32_t>(days);
  iv.micros = static_cast<int64_t>(micros);
  return iv;
}

// ---- numbers ----

Result<int64_t> ParseInt(Oid type, std::string_view text) {
  std::string_view s = Trim(text);
  bool neg = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    neg = s[i] == '-';
    ++i;
  }
  if (i >= s.size()) return SyntaxError(type, text);
  // Accumulate negatively so INT64_MIN parses.
  int64_t v = 0;
  bool overflow = false;
  for (; i < s.size(); ++i) {
    if (!IsDigit(s[i])) return SyntaxError(type, text);
    int digit = s[i] - '0';
    if (v < (std::numeric_limits<int64_t>::min() + digit) / 10) overflow = true;
    if (!overflow) v = v * 10 - digit;
  }
  if (!neg) {
    if (v == std::numeric_limits<int64_t>::min()) overflow = true;
    v = -v;
  }
  int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  if (type == pgtype::kInt2) {
    lo = -32768;
    hi = 32767;
  } else if (type == pgtype::kInt4) {
    lo = std::numeric_limits<int32_t>::min();
    hi = std::numeric_limits<int32_t>::max();
  } else if (type == pgtype::kOid) {
    // oidin accepts -2^31 .. 2^32-1 and wraps negatives.
    lo = std::numeric_limits<int32_t>::min();
    hi = std::numeric_limits<uint32_t>::max();
  }
  if (overflow || v < lo || v > hi) {
    return Status::InvalidArgument("value \"" + std::string(text) + "\" is out of range for type " +
                                   std::string(TypeName(type)));
  }
  if (type == pgtype::kOid && v < 0) v += int64_t{1} << 32;
  return v;
}

Result<double> ParseFloat(Oid type, std::string_view text) {
  std::string_view s = Trim(text);
  if (s.empty()) return SyntaxError(type, text);
  std::string buf(s);
  errno = 0;
  char* end = nullptr;
  double v;
  if (type == pgtype::kFloat4) {
    v = std::strtof(buf.c_str(), &end);
  } else {
    v = std::strtod(buf.c_str(), &end);
  }
  if (end == buf.c_str() || *end != '\0') return SyntaxError(type, text);
  if (errno == ERANGE && (v == 0 || std::isinf(v))) {
    return Status::InvalidArgument("\"" + std::string(text) + "\" is out of range for type " +
                                   std::string(TypeName(type)));
  }
  return v;
}

Result<bool> ParseBool(std::string_view text) {
  std::string_view s = Trim(text);
  auto prefix_of = [&s](std::string_view word, size_t min_len) {
    if (s.size() < min_len || s.size() > word.size()) return false;
    return EqualsNoCase(s, word.substr(0, s.size()));
  };
  if (!s.empty()) {
    switch (Lower(s[0])) {
      case 't':
        if (prefix_of("true", 1)) return true;
        break;
      case 'f':
        if (prefix_of("false", 1)) return false;
        break;
      case 'y':
        if (prefix_of("yes", 1)) return true;
        break;
      case 'n':
        if (prefix_of("no", 1)) return false;
        break;
      case 'o':
        if (prefix_of("on", 2)) return true;
        if (prefix_of("off", 2)) return false;
        break;
      case '1':
        if (s.size() == 1) return true;
        break;
      case '0':
        if (s.size() == 1) return false;
        break;
      default:
        break;
    }
  }
  return SyntaxError(pgtype::kBool, text);
}

}  // namespace

// Shortest text that reads back as the same float (what float4out/float8out print with
// extra_float_digits >= 1): fixed notation for decimal exponents -4 .. 14 (float4: -4 .. 5),
// otherwise d.ddde+XX.
std::string FormatFloat(Oid type, double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  char buf[64];
  std::to_chars_result r;
  bool is_float4 = type == pgtype::kFloat4;
  if (is_float4) {
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<float>(v), std::chars_format::scientific);
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  }
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));
  std::string out;
  if (sci[0] == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exp = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exp);
  int fixed_limit = is_float4 ? 6 : 15;
  if (exp >= -4 && exp < fixed_limit) {
    if (exp < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exp - 1), '0');
      out += digits;
    } else if (digits.size() <= static_cast<size_t>(exp) + 1) {
      out += digits;
      out.append(static_cast<size_t>(exp) + 1 - digits.size(), '0');
    } else {
      out.append(digits, 0, static_cast<size_t>(exp) + 1);
      out.push_back('.');
      out.append(digits, static_cast<size_t>(exp) + 1, std::string::npos);
    }
    return out;
  }
  out.push_back(digits[0]);
  if (digits.size() > 1) {
    out.push_back('.');
    out.append(digits, 1, std::string::npos);
  }
  out.push_back('e');
  out.push_back(exp < 0 ? '-' : '+');
  int abs_exp = exp < 0 ? -exp : exp;
  if (abs_exp < 10) out.push_back('0');
  out += std::to_string(abs_exp);
  return out;
}

Result<Value> Value::ParseText(Oid type, std::string_view text) {
  Value v;
  TALLY_RETURN_IF_ERROR(ParseTextInto(type, text, &v));
  return v;
}

Status Value::ParseTextInto(Oid type, std::string_view text, Value* out) {
  out->type_ = type;
  Data& d = out->data_;
  switch (ReprOf(type)) {
    case Repr::kBool: {
      TALLY_ASSIGN_OR_RETURN(bool b, ParseBool(text));
      d = b;
      return Status::Ok();
    }
    case Repr::kInt: {
      TALLY_ASSIGN_OR_RETURN(int64_t v, ParseInt(type, text));
      d = v;
      return Status::Ok();
    }
    case Repr::kFloat: {
      TALLY_ASSIGN_OR_RETURN(double v, ParseFloat(type, text));
      d = v;
      return Status::Ok();
    }
    case Repr::kNumeric: {
      TALLY_ASSIGN_OR_RETURN(Numeric n, Numeric::Parse(text));
      d = std::move(n);
      return Status::Ok();
    }
    case Repr::kText:
      // A fresh string, not the slot's old buffer: a slot that once held a large value would
      // keep its memory for good. (Emplacing over a string would move-assign a temporary into
      // it, and a short string's move copies into the old buffer.)
      d.emplace<std::monostate>();
      d.emplace<std::string>(text);
      return Status::Ok();
    case Repr::kDate: {
      TALLY_ASSIGN_OR_RETURN(int64_t days, ParseDate(text));
      d = days;
      return Status::Ok();
    }
    case Repr::kTimestamp: {
      TALLY_ASSIGN_OR_RETURN(int64_t t, ParseTimestamp(type, text));
      d = t;
      return Status::Ok();
    }
    case Repr::kInterval: {
      TALLY_ASSIGN_OR_RETURN(Interval iv, ParseInterval(text));
      d = iv;
      return Status::Ok();
    }
  }
  return Status::Internal("unknown representation");
}

std::string Value::FormatText() const {
  switch (data_.index()) {
    case 0:  // NULL: callers handle it; an empty string keeps this total.
      return std::string();
    case 1:
      return as_bool() ? "t" : "f";
    case 2: {
      int64_t v = as_int();
      if (type_ == pgtype::kDate) return FormatDate(v);
      if (type_ == pgtype::kTimestamp || type_ == pgtype::kTimestampTz) {
        return FormatTimestamp(type_, v);
      }
      return std::to_string(v);
    }
    case 3:
      return FormatFloat(type_, as_float());
    case 4:
      return as_numeric().ToString();
    case 5:
      return as_text();
    case 6:
      return FormatInterval(as_interval());
  }
  return std::string();
}

namespace {

// Postgres's float ordering: NaN equals NaN and sorts last; -0 equals 0.
int CompareFloat(double a, double b) {
  bool na = std::isnan(a), nb = std::isnan(b);
  if (na || nb) return na == nb ? 0 : (na ? 1 : -1);
  return a < b ? -1 : (a > b ? 1 : 0);
}

__int128 IntervalSpan(const Interval& i) {
  return static_cast<__int128>(i.micros) +
         (static_cast<__int128>(i.days) +
          static_cast<__int128>(i.months) * datetime::kDaysPerMonth) *
             kUsecsPerDay;
}

std::string_view BpcharTrim(std::string_view s) {
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

int CompareIntervals(const Interval& a, const Interval& b) {
  __int128 x = IntervalSpan(a), y = IntervalSpan(b);
  return x < y ? -1 : (x > y ? 1 : 0);
}

int CompareFloats(double a, double b) { return CompareFloat(a, b); }

bool Value::Identical(const Value& o) const {
  if (type_ != o.type_ || data_.index() != o.data_.index()) return false;
  switch (data_.index()) {
    case 0:
      return true;
    case 1:
      return as_bool() == o.as_bool();
    case 2:
      return as_int() == o.as_int();
    case 3: {
      double a = as_float(), b = o.as_float();
      return std::memcmp(&a, &b, sizeof a) == 0;
    }
    case 4: {
      return as_numeric().Identical(o.as_numeric());
    }
    case 5:
      return as_text() == o.as_text();
    case 6:
      return as_interval() == o.as_interval();
  }
  return false;
}

bool Value::GroupEquals(const Value& o) const {
  if (is_null() || o.is_null()) return is_null() && o.is_null();
  if (data_.index() != o.data_.index()) return false;
  switch (data_.index()) {
    case 1:
      return as_bool() == o.as_bool();
    case 2:
      return as_int() == o.as_int();
    case 3:
      return CompareFloat(as_float(), o.as_float()) == 0;
    case 4:
      return as_numeric().Compare(o.as_numeric()) == 0;
    case 5:
      if (type_ == pgtype::kBpchar && o.type_ == pgtype::kBpchar) {
        return BpcharTrim(as_text()) == BpcharTrim(o.as_text());  // bpchareq ignores padding
      }
      return as_text() == o.as_text();
    case 6:
      return CompareIntervals(as_interval(), o.as_interval()) == 0;
  }
  return false;
}

}  // namespace tally
