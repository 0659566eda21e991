// Calibration probe: the raw SQLite insert ceiling on this machine, measured
// with plain prepared statements and no tailbus logic, so benchmarks can
// report tailbus's append rate as a ratio of it (docs/BENCHMARKS.md).
// Lives in storage/ because only storage/ may include sqlite3.h.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace tailbus {

struct RawInsertProbeOptions {
  int64_t rows = 500'000;  // rows to insert
  int rows_per_transaction = 1'000;
  int row_bytes = 300;         // payload bytes per row
  int sessions = 1'000;        // distinct sessions, interleaved round-robin
  bool session_index = false;  // maintain an (integer session, offset) index
  // > 0: no index on the rows; instead each session's offsets are kept in
  // memory and written as one row per session every this many rows, the way
  // the log's session_segments are (schema.sql): the plain-SQLite ceiling of
  // the log's own layout.
  int64_t segment_flush_rows = 0;
  // With segment_flush_rows: each segment row also holds its rows' bodies, a
  // session-clustered second copy of every row (what reading one session at
  // full speed would take).
  bool segment_bodies = false;
  int page_size = 4096;            // bytes
  int cache_kib = 2 * 1024;        // page cache, KiB
  int wal_autocheckpoint = 1'000;  // pages
};

// Creates `path` (which must not exist), inserts, returns rows per second.
// WAL, synchronous=NORMAL, like the log's default.
Result<double> MeasureRawInsertRate(const std::string& path, const RawInsertProbeOptions& options);

}  // namespace tailbus
