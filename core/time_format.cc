#include "core/time_format.h"

#include <chrono>

namespace tailbus {
namespace {

constexpr int64_t kMillisPerSecond = 1000;
constexpr int64_t kMillisPerMinute = 60 * kMillisPerSecond;
constexpr int64_t kMillisPerHour = 60 * kMillisPerMinute;
constexpr int64_t kMillisPerDay = 24 * kMillisPerHour;

// Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic
// Gregorian date. Valid for every year an int64 day count can hold.
constexpr int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                 // [0, 399]
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct CivilDate {
  int64_t year;
  unsigned month;
  unsigned day;
};

// Howard Hinnant's civil_from_days, the inverse of DaysFromCivil.
constexpr CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                    // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;                             // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                                // [1, 12]
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  return {y, m, d};
}

constexpr bool IsLeapYear(int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }

constexpr unsigned DaysInMonth(int64_t y, unsigned m) {
  constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z.
constexpr int64_t kMinMillis = DaysFromCivil(0, 1, 1) * kMillisPerDay;
constexpr int64_t kMaxMillis = DaysFromCivil(10000, 1, 1) * kMillisPerDay - 1;
static_assert(DaysFromCivil(1970, 1, 1) == 0);
static_assert(kMinMillis == -62167219200000);
static_assert(kMaxMillis == 253402300799999);

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

void PutDigits(char* out, unsigned value, int width) {
  for (int i = width - 1; i >= 0; --i) {
    out[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `width` ASCII digits at text[pos...]; advances pos.
bool ReadDigits(std::string_view text, size_t& pos, int width, unsigned& value) {
  if (text.size() - pos < static_cast<size_t>(width)) return false;
  unsigned v = 0;
  for (int i = 0; i < width; ++i) {
    const char c = text[pos + static_cast<size_t>(i)];
    if (!IsDigit(c)) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  pos += static_cast<size_t>(width);
  value = v;
  return true;
}

bool ReadChar(std::string_view text, size_t& pos, char expected) {
  if (pos >= text.size() || text[pos] != expected) return false;
  ++pos;
  return true;
}

}  // namespace

std::string FormatRfc3339Millis(int64_t epoch_ms) {
  std::string out;
  AppendRfc3339Millis(&out, epoch_ms);
  return out;
}

void AppendRfc3339Millis(std::string* out, int64_t epoch_ms) {
  // The output format has four year digits: clamp to the years it can express.
  if (epoch_ms < kMinMillis) epoch_ms = kMinMillis;
  if (epoch_ms > kMaxMillis) epoch_ms = kMaxMillis;
  const int64_t days = FloorDiv(epoch_ms, kMillisPerDay);
  auto in_day = static_cast<unsigned>(epoch_ms - days * kMillisPerDay);
  const CivilDate date = CivilFromDays(days);

  char buf[24];  // YYYY-MM-DDTHH:MM:SS.mmmZ
  PutDigits(buf, static_cast<unsigned>(date.year), 4);
  buf[4] = '-';
  PutDigits(buf + 5, date.month, 2);
  buf[7] = '-';
  PutDigits(buf + 8, date.day, 2);
  buf[10] = 'T';
  PutDigits(buf + 11, in_day / 3'600'000, 2);
  in_day %= 3'600'000;
  buf[13] = ':';
  PutDigits(buf + 14, in_day / 60'000, 2);
  in_day %= 60'000;
  buf[16] = ':';
  PutDigits(buf + 17, in_day / 1'000, 2);
  buf[19] = '.';
  PutDigits(buf + 20, in_day % 1'000, 3);
  buf[23] = 'Z';
  out->append(buf, sizeof(buf));
}

std::optional<int64_t> ParseRfc3339Millis(std::string_view text) {
  size_t pos = 0;
  unsigned year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!ReadDigits(text, pos, 4, year) || !ReadChar(text, pos, '-') ||
      !ReadDigits(text, pos, 2, month) || !ReadChar(text, pos, '-') ||
      !ReadDigits(text, pos, 2, day)) {
    return std::nullopt;
  }
  if (pos >= text.size() || (text[pos] != 'T' && text[pos] != 't' && text[pos] != ' ')) {
    return std::nullopt;
  }
  ++pos;
  if (!ReadDigits(text, pos, 2, hour) || !ReadChar(text, pos, ':') ||
      !ReadDigits(text, pos, 2, minute) || !ReadChar(text, pos, ':') ||
      !ReadDigits(text, pos, 2, second)) {
    return std::nullopt;
  }
  unsigned millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const size_t start = pos;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (pos - start < 3) millis = millis * 10 + static_cast<unsigned>(text[pos] - '0');
      ++pos;
    }
    const size_t digits = pos - start;
    if (digits == 0) return std::nullopt;
    for (size_t i = digits; i < 3; ++i) millis *= 10;  // ".5" is 500 ms
  }
  int64_t offset_ms = 0;
  if (pos >= text.size()) return std::nullopt;
  const char zone = text[pos++];
  if (zone == '+' || zone == '-') {
    unsigned off_hour = 0, off_minute = 0;
    if (!ReadDigits(text, pos, 2, off_hour) || !ReadChar(text, pos, ':') ||
        !ReadDigits(text, pos, 2, off_minute) || off_hour > 23 || off_minute > 59) {
      return std::nullopt;
    }
    offset_ms = static_cast<int64_t>(off_hour) * kMillisPerHour +
                static_cast<int64_t>(off_minute) * kMillisPerMinute;
    if (zone == '-') offset_ms = -offset_ms;
  } else if (zone != 'Z' && zone != 'z') {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;

  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  if (second == 60) {  // leap second: the last representable instant of the minute
    second = 59;
    millis = 999;
  }
  const int64_t local_ms = DaysFromCivil(year, month, day) * kMillisPerDay +
                           static_cast<int64_t>(hour) * kMillisPerHour +
                           static_cast<int64_t>(minute) * kMillisPerMinute +
                           static_cast<int64_t>(second) * kMillisPerSecond + millis;
  const int64_t utc_ms = local_ms - offset_ms;
  // The offset can carry a local date at the edge of the range outside it.
  if (utc_ms < kMinMillis || utc_ms > kMaxMillis) return std::nullopt;
  return utc_ms;
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tailbus
