#include "storage/raw_insert_probe.h"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>

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
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO t VALUES(?,?,?)", -1, &stmt, nullptr) != SQLITE_OK) {
    return Status::IoError(sqlite3_errmsg(db));
  }
  const std::string body(o.row_bytes, 'x');
  Status st;
  for (int64_t off = 1; off <= o.rows && st.ok(); ++off) {
    if ((off - 1) % o.rows_per_transaction == 0) st = Exec(db, "BEGIN");
    sqlite3_bind_int64(stmt, 1, off);
    sqlite3_bind_int64(stmt, 2, off % o.sessions);
    sqlite3_bind_text(stmt, 3, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE) st = Status::IoError(sqlite3_errmsg(db));
    sqlite3_reset(stmt);
    if (st.ok() && (off % o.rows_per_transaction == 0 || off == o.rows)) st = Exec(db, "COMMIT");
  }
  sqlite3_finalize(stmt);
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
