// Private to storage/: the events.header column encoding (schema.sql, "header
// encoding v1"). One blob instead of eleven columns: SQLite's per-column cost
// (decode, copy, API call) dominated both the insert and the read path.
//
//   byte 0       flags: bit 0 cost_tokens present, bit 1 duration_ms present
//   bytes 1..8   timestamp_ms, int64 little-endian
//   [8 bytes]    cost_tokens, int64 little-endian (only with bit 0)
//   [8 bytes]    duration_ms, IEEE-754 binary64 little-endian (only with bit 1)
//   8 strings    each an unsigned LEB128 length then that many UTF-8 bytes, in
//                order: event_type, event_id, agent_id, tool_name, status,
//                model, feature_id, parent_event_id (length 0: absent)
// The blob ends right after the last string.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/event.h"

namespace tailbus::sqlite {

// Appends the encoding of `h` (all fields but session_id) to `out`.
void EncodeHeader(const EventHeader& h, std::string& out);

// Views into an encoded header; valid while the blob is.
struct HeaderView {
  int64_t timestamp_ms = 0;
  std::optional<int64_t> cost_tokens;
  std::optional<double> duration_ms;
  std::string_view event_type;
  std::string_view event_id;
  std::string_view agent_id;
  std::string_view tool_name;
  std::string_view status;
  std::string_view model;
  std::string_view feature_id;
  std::string_view parent_event_id;
};

// False when the blob is not a valid v1 header (truncated, trailing bytes,
// unknown flags).
bool DecodeHeader(const void* data, size_t size, HeaderView& out);

}  // namespace tailbus::sqlite
