// Private helpers of storage/: thin RAII wrappers over the SQLite C API and the
// mapping of SQLite result codes to Status. Not part of any public contract.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace tailbus::sqlite {

// Process-wide SQLite settings, applied before SQLite initialises (storage/ is
// the only user of SQLite in the process): memory statistics off, which takes
// a global mutex off every SQLite allocation. Idempotent; a no-op if SQLite
// was already initialised.
void ConfigureProcessOnce();

// SQLITE_FULL -> DiskFull, SQLITE_BUSY/LOCKED -> Busy, SQLITE_IOERR* -> IoError,
// SQLITE_CORRUPT/NOTADB -> Corruption, SQLITE_NOMEM -> ResourceExhausted,
// anything else -> IoError. The message is "<context>: <sqlite3_errmsg> (<code>)".
Status ToStatus(int rc, sqlite3* db, std::string_view context);

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

// A prepared statement, finalised on destruction. Declare Stmt members AFTER
// the DbPtr they use so they are finalised first.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(Stmt&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Stmt& operator=(Stmt&& other) noexcept {
    if (this != &other) {
      sqlite3_finalize(stmt_);
      stmt_ = other.stmt_;
      other.stmt_ = nullptr;
    }
    return *this;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Prepares `sql` (one statement) for repeated use.
  Status Prepare(sqlite3* db, std::string_view sql);

  sqlite3_stmt* get() const { return stmt_; }
  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement (and so releases its read snapshot or locks) on scope exit.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() { sqlite3_reset(stmt_); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Binds text with SQLITE_STATIC (the caller keeps it alive until the step);
// an empty value binds NULL when `empty_is_null`.
inline int BindText(sqlite3_stmt* s, int index, std::string_view text, bool empty_is_null) {
  if (text.empty() && empty_is_null) return sqlite3_bind_null(s, index);
  // A default string_view has data() == nullptr, which SQLite would bind as NULL.
  const char* data = text.data() != nullptr ? text.data() : "";
  return sqlite3_bind_text(s, index, data, static_cast<int>(text.size()), SQLITE_STATIC);
}

// Column text as a view (empty for NULL). Valid until the next step/reset.
inline std::string_view ColumnText(sqlite3_stmt* s, int col) {
  const unsigned char* p = sqlite3_column_text(s, col);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s, col))};
}

// Column blob as bytes (empty for NULL). Valid until the next step/reset.
inline std::string_view ColumnBlob(sqlite3_stmt* s, int col) {
  const void* p = sqlite3_column_blob(s, col);
  if (p == nullptr) return {};
  return {static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s, col))};
}

// Runs SQL without results (may hold several statements).
Status Exec(sqlite3* db, const char* sql, std::string_view context);

// Runs a one-row, one-column query; nullopt when it returns no row.
Result<std::optional<int64_t>> QueryInt(sqlite3* db, const char* sql, std::string_view context);

// The SQLite header facts we check before letting SQLite touch a file.
struct FileHeader {
  uint32_t page_size = 0;
  uint32_t page_count = 0;  // in-header database size, in pages
  bool page_count_valid = false;
};

// Validates the first bytes of an existing database file of `file_size`
// bytes: the SQLite magic, a sane page size and (unless `wal_has_frames`, when
// the WAL may legitimately hold pages beyond the end of the main file) that the
// file holds every page its header claims. Corruption with one clear line
// otherwise.
Result<FileHeader> CheckFileHeader(const std::string& path, uint64_t file_size,
                                   bool wal_has_frames);

}  // namespace tailbus::sqlite
