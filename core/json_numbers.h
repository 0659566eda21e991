// A work-around for RapidJSON 1.1.0 (Debian 12): with kParseFullPrecisionFlag
// it reads a zero with a large exponent ("0e308", "-0.0E+400") as garbage, a
// tiny number that differs from run to run (DiyFp::Normalize calls clz(0),
// which is undefined; found by fuzz/filter_fuzz and fuzz/event_decoder_fuzz).
// Zero times any power of ten is zero, so setting the exponent's digits to 0
// before parsing ("0e000") gives the same value and sign by the path
// RapidJSON gets right, without changing any offset in the text.
#pragma once

#include <cstddef>
#include <string>

namespace tailbus {

// Sets to '0' the exponent digits of the number whose 'e'/'E' is at
// `buffer[e]` (the digits end at a non-digit or at `end`).
void ZeroExponentDigits(char* buffer, size_t end, size_t e);

// The same for every number in JSON text whose digits are all zero (strings
// are skipped). For callers without a pre-scan of their own.
void NeutraliseZeroExponents(std::string* json);

}  // namespace tailbus
