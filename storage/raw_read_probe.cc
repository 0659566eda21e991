#include "storage/raw_read_probe.h"

#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <vector>

#include "storage/session_segments.h"
#include "storage/sqlite_util.h"

namespace tailbus {
namespace {

using Clock = std::chrono::steady_clock;

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

Status Error(sqlite3* db, const std::string& what) {
  return Status::IoError(what + ": " + sqlite3_errmsg(db));
}

// Fetches what every reader must: the offset, the session key and both
// payload columns (the accessors materialise the values).
void Touch(sqlite3_stmt* s, int64_t* offset) {
  *offset = sqlite3_column_int64(s, 0);
  (void)sqlite3_column_int64(s, 1);
  (void)sqlite3_column_blob(s, 2);
  (void)sqlite3_column_bytes(s, 2);
  (void)sqlite3_column_text(s, 3);
  (void)sqlite3_column_bytes(s, 3);
}

// Steps `s` (bound) to the end, touching every row; advances `after` to the
// last offset read. Returns the rows read, or -1 on a SQLite error.
int64_t ReadPage(sqlite3_stmt* s, int64_t* after) {
  int64_t rows = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    Touch(s, after);
    ++rows;
  }
  sqlite3_reset(s);
  return rc == SQLITE_DONE ? rows : -1;
}

Result<int64_t> ReadAll(sqlite3* db) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT log_offset, session_key, header, body FROM events "
                         "WHERE log_offset > ?1 ORDER BY log_offset LIMIT 1000",
                         -1, &s, nullptr) != SQLITE_OK) {
    return Error(db, "prepare (all)");
  }
  int64_t rows = 0, after = 0, page = 0;
  do {
    sqlite3_bind_int64(s, 1, after);
    page = ReadPage(s, &after);
    rows += page;
  } while (page > 0);
  sqlite3_finalize(s);
  if (page < 0) return Error(db, "read (all)");
  return rows;
}

// One session at a time, as storage's reader does: its offsets from
// session_segments, then each row by rowid.
Result<int64_t> ReadBySession(sqlite3* db) {
  std::vector<int64_t> sessions;
  sqlite3_stmt* list = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT session_key FROM sessions", -1, &list, nullptr) != SQLITE_OK) {
    return Error(db, "prepare (sessions)");
  }
  while (sqlite3_step(list) == SQLITE_ROW) sessions.push_back(sqlite3_column_int64(list, 0));
  sqlite3_finalize(list);
  sqlite3_stmt* segments = nullptr;
  sqlite3_stmt* row = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT first_offset, last_offset, offsets FROM session_segments "
                         "WHERE session_key = ?1 ORDER BY first_offset",
                         -1, &segments, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "SELECT log_offset, session_key, header, body FROM events "
                         "WHERE log_offset = ?1",
                         -1, &row, nullptr) != SQLITE_OK) {
    sqlite3_finalize(segments);
    return Error(db, "prepare (session)");
  }
  int64_t rows = 0;
  bool ok = true;
  std::vector<int64_t> offsets;
  for (int64_t key : sessions) {
    sqlite3_bind_int64(segments, 1, key);
    while (ok && sqlite3_step(segments) == SQLITE_ROW) {
      offsets.clear();
      ok = sqlite::DecodeSegmentRow(segments, key, 0, std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<size_t>::max(), offsets, "raw read probe")
               .ok();
      for (int64_t offset : offsets) {
        sqlite3_bind_int64(row, 1, offset);
        int64_t after = 0;
        const int64_t n = ReadPage(row, &after);
        ok = ok && n >= 0;
        rows += std::max<int64_t>(n, 0);
      }
    }
    sqlite3_reset(segments);
  }
  sqlite3_finalize(segments);
  sqlite3_finalize(row);
  if (!ok) return Error(db, "read (session)");
  return rows;
}

// `path` opened read-only with the reader's settings
// (storage/sqlite_log_reader.cc): a large cache, no mmap.
Result<sqlite::DbPtr> OpenForReading(const std::string& path) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  sqlite::DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return Status::IoError(path + ": " + (raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  sqlite3_exec(raw, "PRAGMA cache_size=-262144; PRAGMA mmap_size=0;", nullptr, nullptr, nullptr);
  return db;
}

}  // namespace

Result<RawReadRates> MeasureRawReadRate(const std::string& path) {
  auto opened = OpenForReading(path);
  if (!opened.ok()) return opened.status();
  sqlite3* db = opened->get();
  RawReadRates out;
  auto start = Clock::now();
  double cpu = ThreadCpuSeconds();
  auto all = ReadAll(db);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu_secs = ThreadCpuSeconds() - cpu;
  if (!all.ok()) return all.status();
  out.rows = *all;
  out.all_rows_per_s = static_cast<double>(*all) / secs;
  out.all_rows_per_cpu_s = static_cast<double>(*all) / cpu_secs;

  start = Clock::now();
  cpu = ThreadCpuSeconds();
  auto by_session = ReadBySession(db);
  secs = std::chrono::duration<double>(Clock::now() - start).count();
  cpu_secs = ThreadCpuSeconds() - cpu;
  if (!by_session.ok()) return by_session.status();
  if (*by_session != *all) {
    return Status::Corruption("raw read probe: " + std::to_string(*by_session) +
                              " rows by session, " + std::to_string(*all) + " by offset");
  }
  out.session_rows_per_s = static_cast<double>(*by_session) / secs;
  out.session_rows_per_cpu_s = static_cast<double>(*by_session) / cpu_secs;
  return out;
}

Result<double> MeasureRawClusteredReadRate(const std::string& path,
                                           const RawInsertProbeOptions& options) {
  auto opened = OpenForReading(path);
  if (!opened.ok()) return opened.status();
  sqlite3* db = opened->get();
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT bodies FROM seg WHERE session = ?1 ORDER BY first", -1, &s,
                         nullptr) != SQLITE_OK) {
    return Status::IoError(path + ": " + sqlite3_errmsg(db));
  }
  auto start = std::chrono::steady_clock::now();
  int64_t bytes = 0;
  for (int session = 0; session < options.sessions; ++session) {
    sqlite3_bind_int64(s, 1, session);
    while (sqlite3_step(s) == SQLITE_ROW) {
      (void)sqlite3_column_blob(s, 0);
      bytes += sqlite3_column_bytes(s, 0);
    }
    sqlite3_reset(s);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  sqlite3_finalize(s);
  const int64_t rows = bytes / std::max(options.row_bytes, 1);
  if (rows != options.rows) {
    return Status::Corruption(path + ": read " + std::to_string(rows) + " clustered rows of " +
                              std::to_string(options.rows));
  }
  return static_cast<double>(rows) / seconds;
}

}  // namespace tailbus
