// Private to storage/: writing the session_segments table (schema.sql), the
// per-session index the writer fills in bulk at each summary flush.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tailbus::sqlite {

// INSERT of one segment row: ?1 session_key, ?2 first_offset, ?3 last_offset,
// ?4 offsets blob. OR ROLLBACK: a failure ends the whole transaction.
inline constexpr const char* kInsertSegmentSql =
    "INSERT OR ROLLBACK INTO session_segments(session_key, first_offset, last_offset, offsets) "
    "VALUES(?1, ?2, ?3, ?4)";

// Inside a transaction: lists `offsets` (ascending, non-empty) of session `key`
// in rows of at most kMaxSegmentOffsets, with `insert` (kInsertSegmentSql).
// `scratch` is reused for the blobs.
[[nodiscard]] Status InsertSegments(sqlite3* db, sqlite3_stmt* insert, int64_t key,
                                    std::span<const int64_t> offsets, std::string& scratch,
                                    std::string_view context);

// The offsets in (after, through], at most `max`, of the current row of `s`,
// a query whose columns 0, 1 and 2 are a session_segments row's first_offset,
// last_offset and offsets, appended to `out`. Corruption (naming `context`,
// session `key` and the row) when the row is malformed.
[[nodiscard]] Status DecodeSegmentRow(sqlite3_stmt* s, int64_t key, int64_t after, int64_t through,
                                      size_t max, std::vector<int64_t>& out,
                                      std::string_view context);

// Migration to schema version 4, inside its transaction: creates the table and
// its index exactly as schema.sql spells them and lists every session's
// offsets <= `through`, read from events in offset order.
[[nodiscard]] Status CreateSegmentsFromEvents(sqlite3* db, int64_t through,
                                              std::string_view context);

}  // namespace tailbus::sqlite
