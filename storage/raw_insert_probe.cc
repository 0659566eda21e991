#include "storage/raw_insert_probe.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/offset_list.h"

namespace tailbus {
namespace {

Status Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::IoError(sql + ": " + msg);
  }
  return Status::Ok();
}

Status Insert(sqlite3* db, const RawInsertProbeOptions& o) {
  TAILBUS_RETURN_IF_ERROR(Exec(db, "PRAGMA page_size=" + std::to_string(o.page_size)));
  TAILBUS_RETURN_IF_ERROR(Exec(db, "PRAGMA journal_mode=WAL"));
  TAILBUS_RETURN_IF_ERROR(Exec(db, "PRAGMA synchronous=NORMAL"));
  TAILBUS_RETURN_IF_ERROR(Exec(db, "PRAGMA cache_size=-" + std::to_string(o.cache_kib)));
  TAILBUS_RETURN_IF_ERROR(
      Exec(db, "PRAGMA wal_autocheckpoint=" + std::to_string(o.wal_autocheckpoint)));
  TAILBUS_RETURN_IF_ERROR(
      Exec(db, "CREATE TABLE t(off INTEGER PRIMARY KEY, session INTEGER NOT NULL, body TEXT)"));
  if (o.session_index) TAILBUS_RETURN_IF_ERROR(Exec(db, "CREATE INDEX t_s ON t(session, off)"));
  const bool segments = o.segment_flush_rows > 0;
  if (segments) {
    // As session_segments (WITHOUT ROWID) unless rows carry bodies, which are
    // too large for a WITHOUT ROWID row.
    TAILBUS_RETURN_IF_ERROR(
        Exec(db, std::string("CREATE TABLE seg(session INTEGER NOT NULL, first INTEGER NOT NULL, "
                             "last INTEGER NOT NULL, offsets BLOB NOT NULL, bodies BLOB, "
                             "PRIMARY KEY(session, first))") +
                     (o.segment_bodies ? "" : " WITHOUT ROWID")));
  }
  sqlite3_stmt* stmt = nullptr;
  sqlite3_stmt* seg = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?,?,?)", -1, &stmt, nullptr) != SQLITE_OK ||
      (segments && sqlite3_prepare_v2(db, "INSERT INTO seg VALUES(?,?,?,?,?)", -1, &seg, nullptr) !=
                       SQLITE_OK)) {
    Status st = Status::IoError(sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    return st;
  }
  const std::string body(o.row_bytes, 'x');
  std::vector<std::vector<int64_t>> pending(segments ? static_cast<size_t>(o.sessions) : 0);
  std::vector<std::string> bodies(o.segment_bodies ? pending.size() : 0);
  std::string blob;
  // One row per session with offsets since the last flush (the log splits
  // rows at kMaxSegmentOffsets; at these rates no session reaches it).
  auto flush = [&]() -> Status {
    for (size_t session = 0; session < pending.size(); ++session) {
      std::vector<int64_t>& offsets = pending[session];
      if (offsets.empty()) continue;
      blob.clear();
      sqlite::EncodeOffsetList(offsets, blob);
      sqlite3_bind_int64(seg, 1, static_cast<int64_t>(session));
      sqlite3_bind_int64(seg, 2, offsets.front());
      sqlite3_bind_int64(seg, 3, offsets.back());
      sqlite3_bind_blob(seg, 4, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
      if (o.segment_bodies) {
        sqlite3_bind_blob(seg, 5, bodies[session].data(), static_cast<int>(bodies[session].size()),
                          SQLITE_STATIC);
      } else {
        sqlite3_bind_null(seg, 5);
      }
      const int rc = sqlite3_step(seg);
      sqlite3_reset(seg);
      if (rc != SQLITE_DONE) return Status::IoError(sqlite3_errmsg(db));
      offsets.clear();
      if (o.segment_bodies) bodies[session].clear();
    }
    return Status::Ok();
  };
  Status st;
  for (int64_t off = 1; off <= o.rows && st.ok(); ++off) {
    if ((off - 1) % o.rows_per_transaction == 0) st = Exec(db, "BEGIN");
    const int64_t session = off % o.sessions;
    sqlite3_bind_int64(stmt, 1, off);
    sqlite3_bind_int64(stmt, 2, session);
    sqlite3_bind_text(stmt, 3, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE) st = Status::IoError(sqlite3_errmsg(db));
    sqlite3_reset(stmt);
    if (segments) pending[static_cast<size_t>(session)].push_back(off);
    if (o.segment_bodies) bodies[static_cast<size_t>(session)] += body;
    const bool commit = off % o.rows_per_transaction == 0 || off == o.rows;
    if (st.ok() && segments && commit && (off % o.segment_flush_rows == 0 || off == o.rows)) {
      st = flush();
    }
    if (st.ok() && commit) st = Exec(db, "COMMIT");
  }
  sqlite3_finalize(stmt);
  sqlite3_finalize(seg);
  return st;
}

}  // namespace

Result<double> MeasureRawInsertRate(const std::string& path, const RawInsertProbeOptions& options) {
  if (std::filesystem::exists(path)) return Status::InvalidArgument(path + ": already exists");
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return Status::IoError(path + ": " + msg);
  }
  auto start = std::chrono::steady_clock::now();
  Status st = Insert(db, options);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  sqlite3_close(db);
  if (!st.ok()) return st;
  return static_cast<double>(options.rows) / seconds;
}

}  // namespace tailbus
