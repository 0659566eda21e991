// A work-around for RapidJSON 1.1.0 (Debian 12): with kParseFullPrecisionFlag
// it reads a zero with a large exponent ("0e308", "-0.0E+400") as garbage, a
// tiny number that differs from run to run (DiyFp::Normalize calls clz(0),
// which is undefined; found by fuzz/filter_fuzz and fuzz/event_decoder_fuzz).
// Zero times any power of ten is zero, so setting the exponent's digits to 0
// before parsing ("0e000") gives the same value and sign by the path
// RapidJSON gets right, without changing any offset in the text.
//
// A second defect of the same path: a number beyond the range of a double
// whose exponent alone is in range ("18003…3e308": 130 digits, then e308)
// is not refused but read with an out-of-bounds index into RapidJSON's table
// of cached powers (UBSan, found by fuzz/filter_fuzz). Callers find such
// numbers first (ExponentOverflowsDouble) and refuse them as RapidJSON
// refuses "1e400": "Number too big to be stored in double".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tailbus {

// Sets to '0' the exponent digits of the number whose 'e'/'E' is at
// `buffer[e]` (the digits end at a non-digit or at `end`).
void ZeroExponentDigits(char* buffer, size_t end, size_t e);

// True when the number whose digits ([0-9.], no sign) start at `text[first]`
// and whose 'e'/'E' is at `text[e]` is at least 10^309 in magnitude (its
// first non-zero digit times 10^(its place + exponent) overflows a double).
bool ExponentOverflowsDouble(std::string_view text, size_t first, size_t e);

// The offset of the first number in JSON text (strings skipped) for which
// ExponentOverflowsDouble holds, including its '-', or npos.
size_t FindOverflowingNumber(std::string_view json);

// True when `s` is well-formed UTF-8 (RFC 3629). RapidJSON decodes a lone
// low surrogate escape ("\udc00") into bytes that are not, even when it
// validates its input's encoding; callers check decoded strings with this.
bool IsValidUtf8(std::string_view s);

// The same for every number in JSON text whose digits are all zero (strings
// are skipped). For callers without a pre-scan of their own.
void NeutraliseZeroExponents(std::string* json);

}  // namespace tailbus
