#include "core/json_numbers.h"

namespace tailbus {

void ZeroExponentDigits(char* buffer, size_t end, size_t e) {
  size_t i = e + 1;
  if (i < end && (buffer[i] == '+' || buffer[i] == '-')) ++i;
  for (; i < end && buffer[i] >= '0' && buffer[i] <= '9'; ++i) buffer[i] = '0';
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (size_t k = 2; k < len; ++k) {
      const auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

bool ExponentOverflowsDouble(std::string_view text, size_t first, size_t e) {
  // Decimal place of the first non-zero digit: 0 for "1.5", 2 for "123", -3 for "0.001".
  bool seen_point = false;
  long place = 0;
  bool nonzero = false;
  long int_digits = 0;
  long leading_fraction_zeros = 0;
  for (size_t i = first; i < e; ++i) {
    const char c = text[i];
    if (c == '.') {
      seen_point = true;
    } else if (!seen_point) {
      if (nonzero || c != '0') {
        nonzero = true;
        ++int_digits;
      }
    } else if (!nonzero) {
      if (c == '0') {
        ++leading_fraction_zeros;
      } else {
        nonzero = true;
      }
    }
  }
  if (!nonzero) return false;
  place = int_digits > 0 ? int_digits - 1 : -(leading_fraction_zeros + 1);
  size_t i = e + 1;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  long exponent = 0;
  bool digits = false;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    digits = true;
    if (exponent < 1'000'000) exponent = exponent * 10 + (text[i] - '0');
  }
  if (!digits) return false;  // a syntax error the parser reports
  if (negative) exponent = -exponent;
  return place + exponent > 308;
}

size_t FindOverflowingNumber(std::string_view s) {
  bool in_string = false;
  bool escaped = false;
  size_t run = std::string_view::npos;  // start of the current run of [0-9.]
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if ((c >= '0' && c <= '9') || c == '.') {
      if (run == std::string_view::npos) run = i;
      continue;
    }
    if ((c == 'e' || c == 'E') && run != std::string_view::npos &&
        ExponentOverflowsDouble(s, run, i)) {
      return run > 0 && s[run - 1] == '-' ? run - 1 : run;
    }
    run = std::string_view::npos;
    if (c == '"') in_string = true;
  }
  return std::string_view::npos;
}

void NeutraliseZeroExponents(std::string* json) {
  std::string& s = *json;
  bool in_string = false;
  bool escaped = false;
  bool digits = false;  // the current run of [0-9.] has a digit
  bool zero = true;     // ... and all of them are 0
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if ((c == 'e' || c == 'E') && digits && zero) {
      ZeroExponentDigits(s.data(), s.size(), i);
    }
    if ((c >= '0' && c <= '9') || c == '.') {
      digits |= c != '.';
      zero &= c == '0' || c == '.';
    } else {
      digits = false;
      zero = true;
    }
  }
}

}  // namespace tailbus
