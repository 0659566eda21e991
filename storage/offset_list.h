// Private to storage/: the session_segments.offsets column encoding
// (schema.sql, "offset list encoding v1"). A segment row holds one session's
// offsets that one summary flush wrote; the row's first_offset is the first of
// them, and the blob holds each following offset as the unsigned LEB128
// varint of its distance (>= 1) from the one before it. A session writing
// every few offsets costs one or two bytes per event.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tailbus::sqlite {

// Most offsets one segment row holds: a flush splits a session's offsets into
// rows of at most this many, so a row stays a fraction of a page.
constexpr size_t kMaxSegmentOffsets = 1024;

// Appends the encoding of `offsets` (ascending, strictly increasing, at least
// one) after the first, to `out`.
void EncodeOffsetList(std::span<const int64_t> offsets, std::string& out);

// Appends to `out` the offsets of the segment (`first_offset`, `blob`) that
// are greater than `after` and at most `through`, at most `max` of them.
// Returns false when the blob is malformed (a zero or overlong distance, a
// truncated varint, or an offset past `last_offset`, which the row also
// records); `out` may then hold part of the segment.
[[nodiscard]] bool DecodeOffsetList(int64_t first_offset, int64_t last_offset,
                                    std::string_view blob, int64_t after, int64_t through,
                                    size_t max, std::vector<int64_t>& out);

}  // namespace tailbus::sqlite
