#include "core/json_numbers.h"

namespace tailbus {

void ZeroExponentDigits(char* buffer, size_t end, size_t e) {
  size_t i = e + 1;
  if (i < end && (buffer[i] == '+' || buffer[i] == '-')) ++i;
  for (; i < end && buffer[i] >= '0' && buffer[i] <= '9'; ++i) buffer[i] = '0';
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
