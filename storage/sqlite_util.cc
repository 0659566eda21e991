#include "storage/sqlite_util.h"

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <mutex>

namespace tailbus::sqlite {

void ConfigureProcessOnce() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

Status ToStatus(int rc, sqlite3* db, std::string_view context) {
  // sqlite3_errmsg describes the most recent failure on `db`; when the failing
  // call reported nothing there (e.g. a failed open), fall back to the code text.
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (db != nullptr && (sqlite3_extended_errcode(db) & 0xff) != (rc & 0xff)) {
    msg = sqlite3_errstr(rc);
  }
  std::string text = fmt::format("{}: {} (sqlite code {})", context, msg, rc);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Status::DiskFull(std::move(text));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Busy(std::move(text));
    case SQLITE_IOERR:
      return Status::IoError(std::move(text));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(std::move(text));
    case SQLITE_NOMEM:
      return Status::ResourceExhausted(std::move(text));
    default:
      return Status::IoError(std::move(text));
  }
}

Status Stmt::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_finalize(stmt_);
  stmt_ = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    return ToStatus(rc, db, fmt::format("preparing \"{}\"", sql));
  }
  return Status::Ok();
}

Status Exec(sqlite3* db, const char* sql, std::string_view context) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return ToStatus(rc, db, context);
  return Status::Ok();
}

Result<std::optional<int64_t>> QueryInt(sqlite3* db, const char* sql, std::string_view context) {
  Stmt stmt;
  TAILBUS_RETURN_IF_ERROR(stmt.Prepare(db, sql));
  int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW) return std::optional<int64_t>(sqlite3_column_int64(stmt.get(), 0));
  if (rc == SQLITE_DONE) return std::optional<int64_t>();
  return ToStatus(rc, db, context);
}

namespace {

uint32_t Be16(const unsigned char* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

Result<FileHeader> CheckFileHeader(const std::string& path, uint64_t file_size,
                                   bool wal_has_frames) {
  constexpr size_t kHeaderBytes = 100;
  static constexpr char kMagic[] = "SQLite format 3";  // 16 bytes with the NUL
  if (file_size < kHeaderBytes) {
    return Status::Corruption(fmt::format(
        "{}: file is {} bytes, too short to be a SQLite database (truncated or not a tailbus "
        "log); refusing to open",
        path, file_size));
  }
  unsigned char header[kHeaderBytes];
  {
    std::ifstream in(path, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(header), kHeaderBytes)) {
      return Status::IoError(
          fmt::format("{}: cannot read the file header: {}", path, std::strerror(errno)));
    }
  }
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption(fmt::format(
        "{}: not a SQLite database (bad header magic; garbage or another kind of file); refusing "
        "to open",
        path));
  }
  FileHeader out;
  uint32_t page_size = Be16(header + 16);
  if (page_size == 1) page_size = 65536;
  if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)) != 0) {
    return Status::Corruption(fmt::format(
        "{}: SQLite header has an invalid page size {}; refusing to open", path, page_size));
  }
  out.page_size = page_size;
  out.page_count = Be32(header + 28);
  // The in-header size is meaningful only when the change counter (offset 24)
  // equals the version-valid-for number (offset 92).
  out.page_count_valid = out.page_count > 0 && std::memcmp(header + 24, header + 92, 4) == 0;
  if (wal_has_frames) return out;  // the WAL may hold the newest pages; SQLite checks it
  if (file_size % page_size != 0) {
    return Status::Corruption(fmt::format(
        "{}: file is truncated: {} bytes is not a whole number of {}-byte pages; refusing to open",
        path, file_size, page_size));
  }
  if (out.page_count_valid && uint64_t{out.page_count} * page_size > file_size) {
    return Status::Corruption(fmt::format(
        "{}: file is truncated: its header says {} pages of {} bytes ({} bytes) but "
        "the file has {} bytes; refusing to open",
        path, out.page_count, page_size, uint64_t{out.page_count} * page_size, file_size));
  }
  return out;
}

}  // namespace tailbus::sqlite
