// RFC 3339 timestamps <-> epoch milliseconds (UTC). Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tailbus {

// "2026-11-22T01:48:29.123Z". Always UTC, always millisecond precision.
std::string FormatRfc3339Millis(int64_t epoch_ms);
// The same, appended to `out` (no temporary string: the append and delivery
// paths format one per event).
void AppendRfc3339Millis(std::string* out, int64_t epoch_ms);

// Parses an RFC 3339 date-time ("2026-11-22T01:48:29Z", "…29.5+02:00",
// lower-case 't'/'z' and a space separator accepted). Fractions beyond
// milliseconds are truncated. Returns nullopt when malformed or out of range
// (years 0000..9999).
std::optional<int64_t> ParseRfc3339Millis(std::string_view text);

// Wall-clock now, epoch milliseconds.
int64_t NowMillis();

}  // namespace tailbus
