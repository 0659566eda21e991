// Calibration probe: the raw SQLite read ceiling for a tailbus log on this
// machine, measured with plain prepared statements and no tailbus logic (no
// header decoding, no event objects, no filter), so benchmarks can report
// tailbus's replay rate as a ratio of it (docs/BENCHMARKS.md). Reads the same
// columns, with the same queries and index, as storage's reader.
// Lives in storage/ because only storage/ may include sqlite3.h.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "storage/raw_insert_probe.h"

namespace tailbus {

struct RawReadRates {
  double all_rows_per_s = 0;      // every row in offset order, 1,000 per query
  double all_rows_per_cpu_s = 0;  // the same per CPU-second of this thread
  double session_rows_per_s = 0;  // every session in turn, by its segments
  double session_rows_per_cpu_s = 0;
  int64_t rows = 0;  // rows read by each of the two passes (they must agree)
};

// Reads the whole log at `path` (a tailbus log, opened read-only) twice:
// by offset, and one session at a time through session_segments. The log
// must be flushed (LogStore::Flush) or closed: offsets still buffered by a
// writer are listed nowhere on disk.
Result<RawReadRates> MeasureRawReadRate(const std::string& path);

// After MeasureRawInsertRate with segment_bodies into `path`: reads every
// session's rows from its segments alone, one session after another; rows
// per second.
Result<double> MeasureRawClusteredReadRate(const std::string& path,
                                           const RawInsertProbeOptions& options);

}  // namespace tailbus
