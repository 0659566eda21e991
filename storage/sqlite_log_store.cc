// LogStore over SQLite: the single write connection.
//
// Append path (the hot one): validate offsets, aggregate the batch per session
// in scratch structures reused across batches, then ONE transaction:
//   BEGIN IMMEDIATE; one INSERT per NEW session; the events in multi-row
//   INSERTs (cached statements, SQLITE_STATIC binds, the indexed fields packed
//   into one header blob); when a flush is due, per buffered session one
//   UPDATE of its row and its session_segments rows, and meta
//   sessions_through; UPDATE meta head/retained_bytes/event_count; COMMIT.
// In-memory state (head, counters, session cache, buffered session deltas)
// changes only after COMMIT, so a failed batch leaves nothing behind.
//
// Session summaries invariant (schema.sql, meta 'sessions_through' = S): a
// sessions row's event_count/total_cost_tokens/error_count count exactly its
// events with offset <= S; last_offset and the times cover at least those.
// shared_->pending.deltas holds the rest (events > S), so row + delta is exact.
// New sessions' rows are inserted with zero counters (their events are > S).
// Likewise session_segments lists every session's offsets <= S and
// shared_->pending.offsets the ones after S (the events table has no
// secondary index: see schema.sql for why).
#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/event_id.h"
#include "core/string_hash.h"
#include "storage/header_codec.h"
#include "storage/log_store.h"
#include "storage/session_flush_queue.h"
#include "storage/session_segments.h"
#include "storage/sqlite_log_internal.h"
#include "storage/sqlite_util.h"
#include "storage/wal_checkpointer.h"
#include "storage/writer_lock.h"

namespace tailbus {

namespace {

using sqlite::BindText;
using sqlite::ColumnText;
using sqlite::DbPtr;
using sqlite::PendingSessions;
using sqlite::ResetOnExit;
using sqlite::SessionDelta;
using sqlite::SharedState;
using sqlite::Stmt;
using sqlite::ToStatus;
using sqlite::WriterLock;

constexpr int kSchemaVersion = 5;
// The oldest version this build migrates (or, read-only, reads as it is).
constexpr int kOldestReadableVersion = 1;
constexpr std::string_view kApplication = "tailbus";
// Bound on the writer's session_id -> session_key cache; past it the cache is
// dropped and refilled from the sessions_visible_id index on demand.
constexpr size_t kMaxCachedSessions = 1 << 20;
// Rows per multi-row INSERT on the append path (5 parameters each).
constexpr size_t kRowsPerInsert = 32;

int64_t WallClockMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// EventHeader or sqlite::HeaderView.
template <typename Header>
bool IsErrorEvent(const Header& h) {
  return h.event_type == "error" || h.status == "error" || h.status == "failed" ||
         h.status == "timeout";
}

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Applies the per-connection settings every writer connection gets.
// secure_delete is OFF (Debian builds SQLite with it ON): zeroing every freed
// cell cost ~5% of the append path and more on retention. Deleted rows' bytes
// may linger in free pages until reused: a hard delete is not a secure erase.
Status ApplyWriterPragmas(sqlite3* db, const StorageOptions& o, const std::string& path) {
  auto page_size = sqlite::QueryInt(db, "PRAGMA page_size", path + ": reading the page size");
  if (!page_size.ok()) return page_size.status();
  std::string sql = fmt::format(
      "PRAGMA synchronous={}; PRAGMA cache_size=-{}; PRAGMA temp_store=MEMORY; "
      "PRAGMA secure_delete=OFF; PRAGMA wal_autocheckpoint={}; PRAGMA journal_size_limit={};",
      o.synchronous == Synchronous::kFull ? "FULL" : "NORMAL", std::max(o.cache_kib, 0),
      std::max(o.wal_autocheckpoint_pages, 0),
      sqlite::WalSizeLimitBytes(page_size->value_or(4096), o));
  if (o.max_page_count > 0) sql += fmt::format("PRAGMA max_page_count={};", o.max_page_count);
  return sqlite::Exec(db, sql.c_str(), path + ": configuring the connection");
}

Status EnsureWal(sqlite3* db, const std::string& path) {
  Stmt stmt;
  TAILBUS_RETURN_IF_ERROR(stmt.Prepare(db, "PRAGMA journal_mode=WAL"));
  int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return ToStatus(rc, db, path + ": switching to WAL mode");
  std::string_view mode = ColumnText(stmt.get(), 0);
  if (mode != "wal") {
    return Status::IoError(
        fmt::format("{}: cannot switch to WAL mode (journal_mode is '{}')", path, mode));
  }
  return Status::Ok();
}

// Brings a file of schema version `from` to kSchemaVersion in ONE transaction
// (schema.sql's header lists the steps), so a crash leaves either version.
Status Migrate(sqlite3* db, int from, const std::string& path) {
  const std::string context =
      fmt::format("{}: migrating the schema from version {} to {}", path, from, kSchemaVersion);
  TAILBUS_RETURN_IF_ERROR(sqlite::Exec(db, "BEGIN IMMEDIATE", context));
  std::string sql;
  if (from <= 2) {
    // Version 2 wrote every session row in the commit of its events: exact at head.
    sql +=
        "INSERT INTO meta(key, value) SELECT 'sessions_through', value FROM meta "
        "WHERE key = 'head';";
  }
  Status st = sql.empty() ? Status::Ok() : sqlite::Exec(db, sql.c_str(), context);
  if (st.ok() && from <= 3) {
    // Version 3 and older indexed events row by row; list the offsets up to
    // sessions_through (a writable open lists the rest from the recovered
    // buffer), then drop the old index.
    auto through =
        sqlite::QueryInt(db, "SELECT value FROM meta WHERE key = 'sessions_through'", context);
    st = through.ok() ? sqlite::CreateSegmentsFromEvents(db, through->value_or(0), context)
                      : through.status();
  }
  if (st.ok()) {
    sql = fmt::format(
        "DROP INDEX IF EXISTS events_by_session; DROP INDEX IF EXISTS events_by_session_chunk; "
        "PRAGMA user_version = {};",
        kSchemaVersion);
    st = sqlite::Exec(db, sql.c_str(), context);
  }
  if (st.ok()) st = sqlite::Exec(db, "COMMIT", context);
  if (!st.ok() && !sqlite3_get_autocommit(db)) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return st;
}

class SqliteLogStore final : public LogStore {
 public:
  static Result<std::unique_ptr<LogStore>> Open(const std::string& path,
                                                const StorageOptions& options);

  ~SqliteLogStore() override {
    // Best effort: a failure here loses nothing (the next writable open
    // rebuilds the buffered summaries from the events).
    if (!shared_->options.read_only && db_ != nullptr) (void)Flush();
  }

  Status Append(std::span<const AppendRecord> records) override;
  Status Flush() override;
  Status DeleteSession(std::string_view session_id, bool hard) override;
  Result<int64_t> RunRetentionStep(const RetentionPolicy& policy, int64_t now_ms,
                                   size_t max_rows) override;
  Result<std::vector<std::pair<std::string, int64_t>>> RecentEventIds(int64_t since_ms,
                                                                      size_t max_ids) override;
  std::unique_ptr<LogReader> NewReader() override { return sqlite::NewSqliteLogReader(shared_); }

  int64_t head() const override { return shared_->head.load(std::memory_order_acquire); }
  int64_t earliest() const override { return shared_->earliest.load(std::memory_order_acquire); }
  const std::string& epoch() const override { return shared_->epoch; }
  const std::string& path() const override { return shared_->path; }

 private:
  SqliteLogStore(std::shared_ptr<SharedState> shared, DbPtr db, WriterLock lock)
      : lock_(std::move(lock)),
        shared_(std::move(shared)),
        db_(std::move(db)),
        flush_queue_(FlushPolicy(shared_->options)) {}

  static sqlite::SessionFlushPolicy FlushPolicy(const StorageOptions& o) {
    sqlite::SessionFlushPolicy p;
    p.interval_ms = o.session_flush_interval_ms;
    p.max_events = o.session_flush_events;
    return p;
  }

  // Reads the meta rows and derived state into memory. Called once by Open.
  Status LoadState();
  Status PrepareStatements();
  // Rebuilds the deltas of events after sessions_through_ that are past their
  // session's newest segment (left by a crash) into shared_->pending, then,
  // when writable, flushes them.
  Status RecoverSessionDeltas();

  Status CheckWritable(std::string_view what) const;
  Status Begin(std::string_view context);
  Status Commit(std::string_view context);
  void RollbackIfOpen();
  Status SetMeta(std::string_view key, int64_t value, std::string_view context);
  // Visible session key for `session_id`, from the cache or the index.
  Result<std::optional<int64_t>> FindVisibleSession(std::string_view session_id,
                                                    std::string_view context);
  void CacheSession(std::string_view session_id, int64_t key);
  // Inside a transaction: adds `d` to session `key`'s row.
  Status WriteSessionDelta(int64_t key, const SessionDelta& d, std::string_view context);
  // Inside a transaction: writes session `key`'s buffered delta and offsets
  // (either may be null), followed by `batch_agg`'s (an index into aggs_ of
  // the append in progress, or kNoAgg).
  Status WriteSession(int64_t key, const SessionDelta* delta, const std::vector<int64_t>* offsets,
                      size_t batch_agg, std::string_view context);
  static constexpr size_t kNoAgg = static_cast<size_t>(-1);
  // Inside the append's transaction: queues the batch's sessions, writes the
  // due prefix of the queue (flushed_ = its length) and moves meta
  // sessions_through to `through`.
  Status WriteDueSessions(int64_t head_after, int64_t& through, std::string_view context);
  // Undoes the queueing of WriteDueSessions after a failed append.
  void UnstageBatch();
  // COMMITs the append and publishes the buffer change with it (readers see
  // both as one step): the first flushed_ queued sessions leave the buffer,
  // the batch's other sessions are merged into it.
  Status CommitAppend(std::string_view context);

  Status AppendInTransaction(std::span<const AppendRecord> records, std::string_view context);
  // Inside a transaction: removes the events, segments and rows of sessions
  // `keys` (their offsets all listed in session_segments), adding what the
  // events held to the counters.
  Status DeleteSessionRows(const std::vector<int64_t>& keys, int64_t& removed_rows,
                           int64_t& removed_bytes, std::string_view context);
  // Inserts records[first, first + rows) with `s` (one of the insert statements).
  Status InsertEvents(sqlite3_stmt* s, std::span<const AppendRecord> records, size_t first,
                      size_t rows, std::string_view context);

  sqlite::WriterLock lock_;  // declared first: released after the connection closes
  std::shared_ptr<SharedState> shared_;
  DbPtr db_;  // declared before the statements: finalised after them
  // Declared after db_: stopped (and its hook removed) before db_ closes.
  std::unique_ptr<sqlite::WalCheckpointer> checkpointer_;
  Stmt begin_;
  Stmt commit_;
  Stmt insert_event_first_;  // one row, explicit offset
  Stmt insert_event_next_;   // one row, offset = max + 1
  Stmt insert_events_next_;  // kRowsPerInsert rows, offsets = max + 1, …
  Stmt insert_session_;
  Stmt update_session_;  // adds a SessionDelta to a row
  Stmt insert_segment_;  // one session_segments row
  Stmt find_session_;
  Stmt set_meta_;

  int64_t retained_bytes_ = 0;
  int64_t event_count_ = 0;
  // meta 'sessions_through': every event up to it is in its session's row and
  // session_segments (later ones may be too; see schema.sql).
  int64_t sessions_through_ = 0;
  // The buffered sessions, in the order they are written.
  sqlite::SessionFlushQueue flush_queue_;

  // session_id -> session_key of visible sessions (a cache: misses go to the index).
  std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>> session_keys_;

  // Per-batch scratch, reused so a steady stream of batches does not allocate.
  struct SessionAgg {
    std::string_view session_id;
    int64_t key = 0;
    bool is_new = false;
    int64_t first_offset = 0;
    int64_t last_offset = 0;
    int64_t min_time_ms = 0;
    int64_t max_time_ms = 0;
    int64_t count = 0;
    int64_t cost = 0;
    int64_t errors = 0;
    SessionDelta ToDelta() const {
      return SessionDelta{last_offset, min_time_ms, max_time_ms, count, cost, errors};
    }
  };
  std::vector<SessionAgg> aggs_;
  // Offsets of each aggregate of the batch (index as aggs_); vectors beyond
  // aggs_.size() are kept only for their capacity.
  std::vector<std::vector<int64_t>> agg_offsets_;
  std::string segment_buf_;          // one segment row's encoded offsets
  std::vector<int64_t> joined_;      // a session's buffered and batch offsets
  std::string header_buf_;           // encoded headers of one statement's rows
  std::vector<size_t> header_ends_;  // end of each row's header in header_buf_
  std::unordered_map<std::string_view, uint32_t> agg_index_;
  std::vector<uint32_t> record_agg_;
  std::unordered_map<int64_t, uint32_t> agg_by_key_;  // session_key -> index in aggs_
  std::vector<uint8_t> agg_queued_;                   // per aggregate: queued by this append
  std::vector<uint8_t> agg_written_;                  // per aggregate: written by this append
  bool staged_ = false;                               // the batch is in flush_queue_
  size_t flushed_ = 0;                                // queued sessions this append writes
};

Result<std::unique_ptr<LogStore>> SqliteLogStore::Open(const std::string& path,
                                                       const StorageOptions& options) {
  namespace fs = std::filesystem;
  sqlite::ConfigureProcessOnce();
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IoError(fmt::format("{}: cannot stat: {}", path, ec.message()));
  }
  const bool exists = fs::exists(st);
  if (exists && !fs::is_regular_file(st)) {
    return Status::IoError(fmt::format("{}: not a regular file; refusing to open", path));
  }
  uint64_t file_size = 0;
  if (exists) {
    file_size = fs::file_size(path, ec);
    if (ec) return Status::IoError(fmt::format("{}: cannot stat: {}", path, ec.message()));
  }
  const bool wal_has_frames = sqlite::WalFileBytes(path) > 32;  // 32-byte WAL header

  bool initialise = false;
  int file_version = kSchemaVersion;  // of an existing file, once read
  if (!exists) {
    if (options.read_only || !options.create_if_missing) {
      return Status::NotFound(fmt::format("{}: no such log file{}", path,
                                          options.read_only ? "" : " (create_if_missing is off)"));
    }
    fs::path parent = fs::path(path).parent_path();
    if (!parent.empty()) {
      fs::create_directories(parent, ec);
      if (ec) {
        return Status::IoError(
            fmt::format("{}: cannot create directory {}: {}", path, parent.string(), ec.message()));
      }
    }
    initialise = true;
  } else if (file_size == 0 && !wal_has_frames) {
    // A 0-byte file holds no data (SQLite writes page 1 as soon as a database is
    // put in WAL mode), so initialising it overwrites nothing.
    if (options.read_only) {
      return Status::NotFound(fmt::format("{}: empty file, not yet a tailbus log", path));
    }
    initialise = true;
  } else {
    auto header = sqlite::CheckFileHeader(path, file_size, wal_has_frames);
    if (!header.ok()) return header.status();
  }

  if (initialise && (options.page_size < 512 || options.page_size > 65536 ||
                     (options.page_size & (options.page_size - 1)) != 0)) {
    return Status::InvalidArgument(fmt::format(
        "{}: page_size {} is not a power of two between 512 and 65536", path, options.page_size));
  }

  int flags = (options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
              SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (!exists) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return ToStatus(rc, db.get(), path + ": cannot open");
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), std::max(options.busy_timeout_ms, 0));
  // Refusing a file must leave it byte-for-byte as it was. Closing the last
  // connection checkpoints the WAL into the file: while the WAL holds frames
  // and the file is not yet accepted, closing must not.
  const bool guard_wal = !initialise && wal_has_frames;
  if (guard_wal) sqlite3_db_config(db.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);

  if (!initialise) {
    // What is in the file? Anything SQLite cannot read is Corruption.
    auto objects = sqlite::QueryInt(db.get(), "SELECT count(*) FROM sqlite_schema",
                                    path + ": reading the schema");
    if (!objects.ok()) {
      // SQLITE_NOTADB/CORRUPT arrive as Corruption; Busy and I/O errors as themselves.
      if (objects.status().code() != StatusCode::kCorruption) return objects.status();
      return Status::Corruption(fmt::format("{}; refusing to open", objects.status().message()));
    }
    auto version =
        sqlite::QueryInt(db.get(), "PRAGMA user_version", path + ": reading user_version");
    if (!version.ok()) return version.status();
    const int64_t user_version = version->value_or(0);
    if (objects->value_or(0) == 0 && user_version == 0 && !options.read_only) {
      // No schema object at all: an interrupted creation. Nothing to lose.
      initialise = true;
    } else {
      auto app = sqlite::QueryInt(
          db.get(), "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='meta'", path);
      if (!app.ok()) return app.status();
      bool is_tailbus = false;
      if (app->value_or(0) == 1) {
        Stmt stmt;
        if (stmt.Prepare(db.get(), "SELECT value FROM meta WHERE key='application'").ok() &&
            sqlite3_step(stmt.get()) == SQLITE_ROW) {
          is_tailbus = ColumnText(stmt.get(), 0) == kApplication;
        }
      }
      if (!is_tailbus) {
        return Status::Corruption(fmt::format(
            "{}: a SQLite database but not a tailbus log (no meta 'application' = 'tailbus'); "
            "refusing to open",
            path));
      }
      if (user_version > kSchemaVersion) {
        return Status::Unsupported(fmt::format(
            "{}: database schema version {} is newer than this build supports ({}); refusing to "
            "open",
            path, user_version, kSchemaVersion));
      }
      if (user_version < kOldestReadableVersion) {
        return Status::Unsupported(fmt::format(
            "{}: database schema version {} is older than any this build can migrate (it knows "
            "{} to {}); refusing to open",
            path, user_version, kOldestReadableVersion, kSchemaVersion));
      }
      file_version = static_cast<int>(user_version);
    }
  }

  // Accepted (or new). The writer lock is taken only now, so that a refused
  // file does not get a "<log>-lock" beside it; nothing was written so far.
  WriterLock lock;
  if (!options.read_only) {
    auto acquired = WriterLock::Acquire(path);
    if (!acquired.ok()) return acquired.status();
    lock = std::move(*acquired);
  }
  if (guard_wal) sqlite3_db_config(db.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);

  if (initialise) {
    TAILBUS_RETURN_IF_ERROR(
        sqlite::Exec(db.get(), fmt::format("PRAGMA page_size={}", options.page_size).c_str(),
                     path + ": setting the page size"));
    TAILBUS_RETURN_IF_ERROR(EnsureWal(db.get(), path));
    TAILBUS_RETURN_IF_ERROR(ApplyWriterPragmas(db.get(), options, path));
    const std::string context = path + ": creating the log";
    TAILBUS_RETURN_IF_ERROR(sqlite::Exec(db.get(), "BEGIN IMMEDIATE", context));
    std::string sql(SchemaSql());
    sql += fmt::format(
        "\nINSERT INTO meta(key, value) VALUES ('epoch', '{}'), ('created_at_ms', '{}');",
        RandomHexId(), WallClockMillis());
    Status st = sqlite::Exec(db.get(), sql.c_str(), context);
    if (st.ok()) st = sqlite::Exec(db.get(), "COMMIT", context);
    if (!st.ok()) {
      if (!sqlite3_get_autocommit(db.get()))
        sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      return st;
    }
  } else if (!options.read_only) {
    TAILBUS_RETURN_IF_ERROR(EnsureWal(db.get(), path));
    TAILBUS_RETURN_IF_ERROR(ApplyWriterPragmas(db.get(), options, path));
    if (file_version < kSchemaVersion) {
      TAILBUS_RETURN_IF_ERROR(Migrate(db.get(), file_version, path));
      file_version = kSchemaVersion;
    }
  } else {
    TAILBUS_RETURN_IF_ERROR(
        sqlite::Exec(db.get(),
                     fmt::format("PRAGMA cache_size=-{}; PRAGMA temp_store=MEMORY;",
                                 std::max(options.cache_kib, 0))
                         .c_str(),
                     path + ": configuring the connection"));
  }

  auto shared = std::make_shared<SharedState>();
  shared->path = path;
  shared->options = options;
  shared->schema_version = file_version;
  std::unique_ptr<SqliteLogStore> store(
      new SqliteLogStore(std::move(shared), std::move(db), std::move(lock)));
  TAILBUS_RETURN_IF_ERROR(store->LoadState());
  if (!options.read_only) TAILBUS_RETURN_IF_ERROR(store->PrepareStatements());
  TAILBUS_RETURN_IF_ERROR(store->RecoverSessionDeltas());
  if (!options.read_only && options.background_checkpoint) {
    sqlite::WalCheckpointerOptions c;
    c.checkpoint_pages = std::max(options.wal_autocheckpoint_pages, 1);
    c.max_wal_pages = std::max(options.wal_max_pages, 0);
    c.synchronous_full = options.synchronous == Synchronous::kFull;
    auto started = sqlite::WalCheckpointer::Start(path, store->db_.get(), c);
    if (!started.ok()) return started.status();
    store->checkpointer_ = std::move(*started);
  }
  return std::unique_ptr<LogStore>(std::move(store));
}

Status SqliteLogStore::LoadState() {
  sqlite3* db = db_.get();
  const std::string& path = shared_->path;
  Stmt stmt;
  TAILBUS_RETURN_IF_ERROR(stmt.Prepare(db, "SELECT key, value FROM meta"));
  std::optional<int64_t> head, earliest, bytes, count, created, sessions_through;
  std::optional<std::string> epoch;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    std::string_view key = ColumnText(stmt.get(), 0);
    int64_t num = sqlite3_column_int64(stmt.get(), 1);
    if (key == "head") head = num;
    if (key == "earliest") earliest = num;
    if (key == "retained_bytes") bytes = num;
    if (key == "event_count") count = num;
    if (key == "created_at_ms") created = num;
    if (key == "sessions_through") sessions_through = num;
    if (key == "epoch") epoch = std::string(ColumnText(stmt.get(), 1));
  }
  if (rc != SQLITE_DONE) return ToStatus(rc, db, path + ": reading meta");
  const char* missing = !head       ? "head"
                        : !earliest ? "earliest"
                        : !bytes    ? "retained_bytes"
                        : !count    ? "event_count"
                        : !created  ? "created_at_ms"
                        : !epoch    ? "epoch"
                                    : nullptr;
  if (missing != nullptr) {
    return Status::Corruption(
        fmt::format("{}: meta '{}' is missing; refusing to open", path, missing));
  }
  // Never reuse an offset, even if meta 'head' lagged behind the rows.
  auto max_offset = sqlite::QueryInt(db, "SELECT max(log_offset) FROM events", path);
  if (!max_offset.ok()) return max_offset.status();
  const int64_t h = std::max(*head, max_offset->value_or(0));
  shared_->epoch = std::move(*epoch);
  shared_->created_at_ms = *created;
  shared_->head.store(h, std::memory_order_release);
  shared_->earliest.store(std::min(*earliest, h + 1), std::memory_order_release);
  retained_bytes_ = *bytes;
  event_count_ = *count;
  // Absent in a version 2 file opened read-only: its rows are exact at head.
  sessions_through_ = std::min(sessions_through.value_or(h), h);

  Stmt deleted;
  TAILBUS_RETURN_IF_ERROR(
      deleted.Prepare(db,
                      "SELECT session_key FROM sessions INDEXED BY sessions_deleted "
                      "WHERE deleted = 1"));
  std::vector<int64_t> keys;
  while ((rc = sqlite3_step(deleted.get())) == SQLITE_ROW) {
    keys.push_back(sqlite3_column_int64(deleted.get(), 0));
  }
  if (rc != SQLITE_DONE) return ToStatus(rc, db, path + ": reading deleted sessions");
  shared_->deleted.Add(keys);
  return Status::Ok();
}

// The write statements say OR ROLLBACK: any constraint failure ends the whole
// transaction, which a failed batch does anyway. With the default (ABORT)
// SQLite must be able to undo one statement alone, so every multi-row INSERT
// and every UPDATE opened a statement journal and copied each page it touched
// into it (16 KiB per page): measured, that was ~30% of the append CPU.
Status SqliteLogStore::PrepareStatements() {
  sqlite3* db = db_.get();
  TAILBUS_RETURN_IF_ERROR(begin_.Prepare(db, "BEGIN IMMEDIATE"));
  TAILBUS_RETURN_IF_ERROR(commit_.Prepare(db, "COMMIT"));
  TAILBUS_RETURN_IF_ERROR(insert_event_first_.Prepare(
      db,
      "INSERT OR ROLLBACK INTO events(log_offset, session_key, ingested_at_ms, header, body) "
      "VALUES(?, ?, ?, ?, ?)"));
  constexpr std::string_view kInsertNext =
      "INSERT OR ROLLBACK INTO events(session_key, ingested_at_ms, header, body) "
      "VALUES(?, ?, ?, ?)";
  TAILBUS_RETURN_IF_ERROR(insert_event_next_.Prepare(db, kInsertNext));
  std::string many(kInsertNext);
  for (size_t i = 1; i < kRowsPerInsert; ++i) many += ", (?, ?, ?, ?)";
  TAILBUS_RETURN_IF_ERROR(insert_events_next_.Prepare(db, many));
  TAILBUS_RETURN_IF_ERROR(insert_session_.Prepare(
      db,
      "INSERT OR ROLLBACK INTO sessions(session_id, first_offset, last_offset, "
      "first_time_ms, last_time_ms, event_count, total_cost_tokens, error_count) "
      "VALUES(?1, ?2, ?3, ?4, ?5, 0, 0, 0)"));
  TAILBUS_RETURN_IF_ERROR(update_session_.Prepare(
      db,
      "UPDATE OR ROLLBACK sessions SET last_offset = max(last_offset, ?2), "
      "first_time_ms = min(first_time_ms, ?3), last_time_ms = max(last_time_ms, ?4), "
      "event_count = event_count + ?5, total_cost_tokens = total_cost_tokens + ?6, "
      "error_count = error_count + ?7 WHERE session_key = ?1"));
  TAILBUS_RETURN_IF_ERROR(insert_segment_.Prepare(db, sqlite::kInsertSegmentSql));
  TAILBUS_RETURN_IF_ERROR(find_session_.Prepare(
      db, "SELECT session_key FROM sessions WHERE session_id = ?1 AND deleted = 0"));
  TAILBUS_RETURN_IF_ERROR(
      set_meta_.Prepare(db, "UPDATE OR ROLLBACK meta SET value = ?2 WHERE key = ?1"));
  return Status::Ok();
}

Status SqliteLogStore::CheckWritable(std::string_view what) const {
  if (shared_->options.read_only) {
    return Status::InvalidArgument(
        fmt::format("{}: {}: the log was opened read-only", shared_->path, what));
  }
  return Status::Ok();
}

Status SqliteLogStore::Begin(std::string_view context) {
  int rc = sqlite3_step(begin_.get());
  sqlite3_reset(begin_.get());
  if (rc != SQLITE_DONE) return ToStatus(rc, db_.get(), context);
  return Status::Ok();
}

Status SqliteLogStore::Commit(std::string_view context) {
  int rc = sqlite3_step(commit_.get());
  sqlite3_reset(commit_.get());
  if (rc != SQLITE_DONE) {
    Status st = ToStatus(rc, db_.get(), context);
    RollbackIfOpen();
    return st;
  }
  return Status::Ok();
}

void SqliteLogStore::RollbackIfOpen() {
  // SQLite may already have rolled back by itself (e.g. after SQLITE_FULL).
  if (!sqlite3_get_autocommit(db_.get())) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status SqliteLogStore::SetMeta(std::string_view key, int64_t value, std::string_view context) {
  sqlite3_stmt* s = set_meta_.get();
  ResetOnExit reset(s);
  BindText(s, 1, key, false);
  sqlite3_bind_int64(s, 2, value);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return ToStatus(rc, db_.get(), context);
  if (sqlite3_changes(db_.get()) != 1) {
    return Status::Corruption(fmt::format("{}: meta '{}' is missing", context, key));
  }
  return Status::Ok();
}

Result<std::optional<int64_t>> SqliteLogStore::FindVisibleSession(std::string_view session_id,
                                                                  std::string_view context) {
  if (auto it = session_keys_.find(session_id); it != session_keys_.end()) {
    return std::optional<int64_t>(it->second);
  }
  sqlite3_stmt* s = find_session_.get();
  ResetOnExit reset(s);
  BindText(s, 1, session_id, false);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    int64_t key = sqlite3_column_int64(s, 0);
    CacheSession(session_id, key);  // committed state: safe to cache even if we roll back
    return std::optional<int64_t>(key);
  }
  if (rc != SQLITE_DONE) return ToStatus(rc, db_.get(), context);
  return std::optional<int64_t>();
}

void SqliteLogStore::CacheSession(std::string_view session_id, int64_t key) {
  if (session_keys_.size() >= kMaxCachedSessions) session_keys_.clear();
  session_keys_.insert_or_assign(std::string(session_id), key);
}

Status SqliteLogStore::WriteSessionDelta(int64_t key, const SessionDelta& d,
                                         std::string_view context) {
  sqlite3_stmt* s = update_session_.get();
  ResetOnExit reset(s);
  sqlite3_bind_int64(s, 1, key);
  sqlite3_bind_int64(s, 2, d.last_offset);
  sqlite3_bind_int64(s, 3, d.min_time_ms);
  sqlite3_bind_int64(s, 4, d.max_time_ms);
  sqlite3_bind_int64(s, 5, d.count);
  sqlite3_bind_int64(s, 6, d.cost);
  sqlite3_bind_int64(s, 7, d.errors);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE) return ToStatus(rc, db_.get(), context);
  if (sqlite3_changes(db_.get()) != 1) {
    return Status::Corruption(
        fmt::format("{}: session row {} is missing (its summary cannot be written)", context, key));
  }
  return Status::Ok();
}

Status SqliteLogStore::WriteSession(int64_t key, const SessionDelta* delta,
                                    const std::vector<int64_t>* offsets, size_t batch_agg,
                                    std::string_view context) {
  SessionDelta d = delta != nullptr ? *delta : SessionDelta{};
  std::span<const int64_t> list;
  if (offsets != nullptr) list = *offsets;
  if (batch_agg != kNoAgg) {
    d.Merge(aggs_[batch_agg].ToDelta());
    const std::vector<int64_t>& more = agg_offsets_[batch_agg];
    // A session's buffered offsets all precede the batch's: one list, so one
    // row (unless it outgrew kMaxSegmentOffsets).
    if (list.empty()) {
      list = more;
    } else {
      joined_.assign(list.begin(), list.end());
      joined_.insert(joined_.end(), more.begin(), more.end());
      list = joined_;
    }
  }
  if (d.count > 0) TAILBUS_RETURN_IF_ERROR(WriteSessionDelta(key, d, context));
  if (list.empty()) return Status::Ok();
  return sqlite::InsertSegments(db_.get(), insert_segment_.get(), key, list, segment_buf_, context);
}

Status SqliteLogStore::WriteDueSessions(int64_t head_after, int64_t& through,
                                        std::string_view context) {
  const int64_t now = SteadyMillis();
  agg_queued_.assign(aggs_.size(), 0);
  agg_written_.assign(aggs_.size(), 0);
  for (size_t i = 0; i < aggs_.size(); ++i) {
    const SessionAgg& a = aggs_[i];
    agg_queued_[i] = flush_queue_.Stage(a.key, a.first_offset, a.count, now);
  }
  staged_ = true;
  flushed_ = flush_queue_.DuePrefix(now);
  // Most appends write nothing. Then the queue's front is unchanged (or, when
  // it was empty, this batch's first session, queued at head + 1), so
  // `through` stays sessions_through_.
  if (flushed_ == 0) {
    assert(flush_queue_.WrittenThroughAfter(0, head_after) == sessions_through_);
    return Status::Ok();
  }
  // Which written sessions have events in this batch too.
  agg_by_key_.clear();
  for (size_t i = 0; i < aggs_.size(); ++i) {
    agg_by_key_.emplace(aggs_[i].key, static_cast<uint32_t>(i));
  }
  // Only the writer mutates the buffer, so reading it needs no lock.
  const PendingSessions& pending = shared_->pending;
  for (size_t i = 0; i < flushed_; ++i) {
    const int64_t key = flush_queue_.key_at(i);
    auto d = pending.deltas.find(key);
    auto o = pending.offsets.find(key);
    size_t agg = kNoAgg;
    if (auto it = agg_by_key_.find(key); it != agg_by_key_.end()) {
      agg = it->second;
      agg_written_[agg] = 1;
    }
    TAILBUS_RETURN_IF_ERROR(WriteSession(key, d != pending.deltas.end() ? &d->second : nullptr,
                                         o != pending.offsets.end() ? &o->second : nullptr, agg,
                                         context));
  }
  through = flush_queue_.WrittenThroughAfter(flushed_, head_after);
  if (through == sessions_through_) return Status::Ok();
  return SetMeta("sessions_through", through, context);
}

void SqliteLogStore::UnstageBatch() {
  if (!staged_) return;
  for (size_t i = aggs_.size(); i-- > 0;) {
    flush_queue_.Unstage(aggs_[i].key, aggs_[i].count, agg_queued_[i] != 0);
  }
  staged_ = false;
}

Status SqliteLogStore::CommitAppend(std::string_view context) {
  // Held across the COMMIT: a reader pins its snapshot under this lock, so
  // the rows it reads and the deltas it copies always agree.
  PendingSessions& pending = shared_->pending;
  std::lock_guard lock(pending.mu);
  TAILBUS_RETURN_IF_ERROR(Commit(context));
  for (size_t i = 0; i < flushed_; ++i) {
    const int64_t key = flush_queue_.key_at(i);
    pending.deltas.erase(key);
    pending.offsets.erase(key);
  }
  for (size_t i = 0; i < aggs_.size(); ++i) {
    if (agg_written_[i]) continue;
    pending.deltas[aggs_[i].key].Merge(aggs_[i].ToDelta());
    std::vector<int64_t>& offsets = pending.offsets[aggs_[i].key];
    offsets.insert(offsets.end(), agg_offsets_[i].begin(), agg_offsets_[i].end());
  }
  return Status::Ok();
}

Status SqliteLogStore::Flush() {
  TAILBUS_RETURN_IF_ERROR(CheckWritable("flush"));
  const int64_t h = head();
  if (sessions_through_ == h) return Status::Ok();
  const std::string context = fmt::format("{}: writing session summaries", shared_->path);
  TAILBUS_RETURN_IF_ERROR(Begin(context));
  // Only the writer mutates the buffer, so reading it needs no lock.
  PendingSessions& pending = shared_->pending;
  Status st;
  for (const auto& [key, delta] : pending.deltas) {
    auto o = pending.offsets.find(key);
    st = WriteSession(key, &delta, o != pending.offsets.end() ? &o->second : nullptr, kNoAgg,
                      context);
    if (!st.ok()) break;
  }
  if (st.ok()) st = SetMeta("sessions_through", h, context);
  if (st.ok()) {
    std::lock_guard lock(pending.mu);
    st = Commit(context);
    if (st.ok()) {
      pending.deltas.clear();
      pending.offsets.clear();
    }
  }
  if (!st.ok()) {
    RollbackIfOpen();
    return st;
  }
  sessions_through_ = h;
  flush_queue_.Clear();
  return Status::Ok();
}

Status SqliteLogStore::RecoverSessionDeltas() {
  const int64_t h = head();
  if (sessions_through_ >= h) return Status::Ok();
  sqlite3* db = db_.get();
  const std::string context = fmt::format("{}: rebuilding session summaries of offsets {}..{}",
                                          shared_->path, sessions_through_ + 1, h);
  std::unordered_map<int64_t, SessionDelta> deltas;
  std::unordered_map<int64_t, std::vector<int64_t>> offsets;
  // A session written after sessions_through (the writer writes sessions one
  // by one) already holds its events up to its newest segment's last offset.
  std::unordered_map<int64_t, int64_t> written_through;
  Stmt newest_segment;
  if (shared_->schema_version >= 4) {  // older files (read-only) have no segments
    TAILBUS_RETURN_IF_ERROR(
        newest_segment.Prepare(db,
                               "SELECT last_offset FROM session_segments WHERE session_key = ?1 "
                               "ORDER BY first_offset DESC LIMIT 1"));
  }
  auto written = [&](int64_t key) -> Result<int64_t> {
    if (newest_segment.get() == nullptr) return int64_t{0};
    if (auto it = written_through.find(key); it != written_through.end()) return it->second;
    sqlite3_stmt* s = newest_segment.get();
    ResetOnExit reset(s);
    sqlite3_bind_int64(s, 1, key);
    const int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return ToStatus(rc, db, context);
    const int64_t last = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    written_through.emplace(key, last);
    return last;
  };
  {
    Stmt scan;
    TAILBUS_RETURN_IF_ERROR(
        scan.Prepare(db,
                     "SELECT log_offset, session_key, header FROM events WHERE log_offset > ?1 "
                     "ORDER BY log_offset"));
    sqlite3_bind_int64(scan.get(), 1, sessions_through_);
    sqlite::HeaderView hv;
    int rc;
    while ((rc = sqlite3_step(scan.get())) == SQLITE_ROW) {
      const int64_t offset = sqlite3_column_int64(scan.get(), 0);
      const void* blob = sqlite3_column_blob(scan.get(), 2);
      if (!sqlite::DecodeHeader(blob, static_cast<size_t>(sqlite3_column_bytes(scan.get(), 2)),
                                hv)) {
        return Status::Corruption(
            fmt::format("{}: event at offset {} has a malformed header", context, offset));
      }
      const int64_t key = sqlite3_column_int64(scan.get(), 1);
      auto through = written(key);
      if (!through.ok()) return through.status();
      if (offset <= *through) continue;
      deltas[key].Merge(SessionDelta{offset, hv.timestamp_ms, hv.timestamp_ms, 1,
                                     hv.cost_tokens.value_or(0), IsErrorEvent(hv) ? 1 : 0});
      offsets[key].push_back(offset);
    }
    if (rc != SQLITE_DONE) return ToStatus(rc, db, context);
  }
  {
    std::lock_guard lock(shared_->pending.mu);
    shared_->pending.deltas = std::move(deltas);
    // A read-only open's readers scan the events after sessions_through
    // instead (the file's S moves on when another process writes it).
    if (!shared_->options.read_only) shared_->pending.offsets = std::move(offsets);
  }
  if (shared_->options.read_only) return Status::Ok();  // exact in memory for this process
  return Flush();
}

Status SqliteLogStore::Append(std::span<const AppendRecord> records) {
  TAILBUS_RETURN_IF_ERROR(CheckWritable("append"));
  if (records.empty()) return Status::Ok();
  const int64_t first = head() + 1;
  for (size_t i = 0; i < records.size(); ++i) {
    const AppendRecord& r = records[i];
    if (r.offset != first + static_cast<int64_t>(i)) {
      return Status::InvalidArgument(fmt::format(
          "append: offsets must be contiguous from head()+1 = {}; record {} has offset {} "
          "(expected {}); nothing was written",
          first, i, r.offset, first + static_cast<int64_t>(i)));
    }
    if (r.header == nullptr || r.header->session_id.empty()) {
      return Status::InvalidArgument(fmt::format(
          "append: record {} (offset {}) has no header or an empty session_id", i, r.offset));
    }
  }

  // Aggregate per session; remember each record's aggregate.
  aggs_.clear();
  agg_index_.clear();
  record_agg_.resize(records.size());
  int64_t batch_bytes = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    const AppendRecord& r = records[i];
    const EventHeader& h = *r.header;
    auto [it, inserted] =
        agg_index_.try_emplace(std::string_view(h.session_id), static_cast<uint32_t>(aggs_.size()));
    if (inserted) {
      SessionAgg a;
      a.session_id = h.session_id;
      a.first_offset = r.offset;
      a.min_time_ms = h.timestamp_ms;
      a.max_time_ms = h.timestamp_ms;
      aggs_.push_back(a);
      if (agg_offsets_.size() < aggs_.size()) agg_offsets_.emplace_back();
      agg_offsets_[aggs_.size() - 1].clear();
    }
    agg_offsets_[it->second].push_back(r.offset);
    SessionAgg& a = aggs_[it->second];
    a.last_offset = r.offset;
    a.min_time_ms = std::min(a.min_time_ms, h.timestamp_ms);
    a.max_time_ms = std::max(a.max_time_ms, h.timestamp_ms);
    a.count += 1;
    a.cost += h.cost_tokens.value_or(0);
    a.errors += IsErrorEvent(h) ? 1 : 0;
    record_agg_[i] = it->second;
    batch_bytes += static_cast<int64_t>(r.json.size());
  }

  const std::string context =
      fmt::format("{}: append of {} events at offset {}", shared_->path, records.size(), first);
  staged_ = false;
  flushed_ = 0;
  int64_t through = sessions_through_;
  TAILBUS_RETURN_IF_ERROR(Begin(context));
  Status st = AppendInTransaction(records, context);
  if (st.ok()) st = WriteDueSessions(records.back().offset, through, context);
  if (st.ok()) st = SetMeta("head", records.back().offset, context);
  if (st.ok()) st = SetMeta("retained_bytes", retained_bytes_ + batch_bytes, context);
  if (st.ok())
    st = SetMeta("event_count", event_count_ + static_cast<int64_t>(records.size()), context);
  if (st.ok()) st = CommitAppend(context);
  if (!st.ok()) {
    UnstageBatch();
    RollbackIfOpen();
    return st;
  }
  // Committed: publish.
  retained_bytes_ += batch_bytes;
  event_count_ += static_cast<int64_t>(records.size());
  flush_queue_.Commit(flushed_);
  sessions_through_ = through;
  for (const SessionAgg& a : aggs_) {
    if (a.is_new) CacheSession(a.session_id, a.key);
  }
  shared_->head.store(records.back().offset, std::memory_order_release);
  return Status::Ok();
}

Status SqliteLogStore::AppendInTransaction(std::span<const AppendRecord> records,
                                           std::string_view context) {
  sqlite3* db = db_.get();
  // A row for each new session, with zero counters: its counts arrive as a
  // buffered delta like everyone else's (see the invariant at the top).
  for (SessionAgg& a : aggs_) {
    auto found = FindVisibleSession(a.session_id, context);
    if (!found.ok()) return found.status();
    a.is_new = !found->has_value();
    if (!a.is_new) {
      a.key = **found;
      continue;
    }
    sqlite3_stmt* s = insert_session_.get();
    ResetOnExit reset(s);
    BindText(s, 1, a.session_id, false);
    sqlite3_bind_int64(s, 2, a.first_offset);
    sqlite3_bind_int64(s, 3, a.last_offset);
    sqlite3_bind_int64(s, 4, a.min_time_ms);
    sqlite3_bind_int64(s, 5, a.max_time_ms);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) return ToStatus(rc, db, context);
    a.key = sqlite3_last_insert_rowid(db);
  }

  // The events. The first row names its offset (it may follow a gap left by a
  // delete); the rest let SQLite assign max(rowid) + 1, which is the next offset
  // and skips a b-tree search per row, kRowsPerInsert rows per statement so the
  // statement's cursors stay open. Every assignment is checked.
  size_t i = 0;
  while (i < records.size()) {
    Stmt& stmt = i == 0                                 ? insert_event_first_
                 : records.size() - i >= kRowsPerInsert ? insert_events_next_
                                                        : insert_event_next_;
    const size_t rows = &stmt == &insert_events_next_ ? kRowsPerInsert : 1;
    TAILBUS_RETURN_IF_ERROR(InsertEvents(stmt.get(), records, i, rows, context));
    i += rows;
  }
  return Status::Ok();
}

Status SqliteLogStore::InsertEvents(sqlite3_stmt* s, std::span<const AppendRecord> records,
                                    size_t first, size_t rows, std::string_view context) {
  // Encode every header first: the buffer must not move once bound.
  header_buf_.clear();
  header_ends_.clear();
  for (size_t i = first; i < first + rows; ++i) {
    sqlite::EncodeHeader(*records[i].header, header_buf_);
    header_ends_.push_back(header_buf_.size());
  }
  const bool explicit_offset = first == 0;
  int param = 1;
  size_t header_begin = 0;
  for (size_t i = first; i < first + rows; ++i) {
    const AppendRecord& r = records[i];
    if (explicit_offset) sqlite3_bind_int64(s, param++, r.offset);
    sqlite3_bind_int64(s, param++, aggs_[record_agg_[i]].key);
    sqlite3_bind_int64(s, param++, r.ingested_at_ms);
    const size_t header_end = header_ends_[i - first];
    sqlite3_bind_blob(s, param++, header_buf_.data() + header_begin,
                      static_cast<int>(header_end - header_begin), SQLITE_STATIC);
    header_begin = header_end;
    BindText(s, param++, r.json, false);
  }
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);  // no pointers into the caller's records left bound
  if (rc != SQLITE_DONE) return ToStatus(rc, db_.get(), context);
  const int64_t expected = records[first + rows - 1].offset;
  const int64_t assigned = sqlite3_last_insert_rowid(db_.get());
  if (assigned != expected) {
    return Status::Corruption(fmt::format("{}: the log assigned offset {} where {} was expected",
                                          context, assigned, expected));
  }
  return Status::Ok();
}

Status SqliteLogStore::DeleteSession(std::string_view session_id, bool hard) {
  TAILBUS_RETURN_IF_ERROR(CheckWritable("delete session"));
  // The delete reads and removes session rows: they must be exact first.
  TAILBUS_RETURN_IF_ERROR(Flush());
  sqlite3* db = db_.get();
  const std::string context = fmt::format("{}: {} delete of session '{}'", shared_->path,
                                          hard ? "hard" : "soft", session_id);
  TAILBUS_RETURN_IF_ERROR(Begin(context));
  std::vector<int64_t> keys;     // every session row this call removes or hides
  std::vector<int64_t> visible;  // those not hidden yet (the ones this call hides)
  Status st;
  {
    Stmt find;
    st = find.Prepare(db, hard ? "SELECT session_key, deleted FROM sessions WHERE session_id = ?1"
                               : "SELECT session_key, deleted FROM sessions "
                                 "WHERE session_id = ?1 AND deleted = 0");
    if (st.ok()) {
      BindText(find.get(), 1, session_id, false);
      int rc;
      while ((rc = sqlite3_step(find.get())) == SQLITE_ROW) {
        keys.push_back(sqlite3_column_int64(find.get(), 0));
        if (sqlite3_column_int(find.get(), 1) == 0) visible.push_back(keys.back());
      }
      if (rc != SQLITE_DONE) st = ToStatus(rc, db, context);
    }
  }
  if (st.ok() && keys.empty()) {
    st = Status::NotFound(
        fmt::format("session '{}' not found{}", session_id, hard ? "" : " (or already deleted)"));
  }
  if (!st.ok()) {
    RollbackIfOpen();
    return st;
  }

  int64_t removed_rows = 0;
  int64_t removed_bytes = 0;
  if (hard) {
    // The Flush above listed every offset of the session in session_segments.
    st = DeleteSessionRows(keys, removed_rows, removed_bytes, context);
    if (st.ok()) st = SetMeta("retained_bytes", retained_bytes_ - removed_bytes, context);
    if (st.ok()) st = SetMeta("event_count", event_count_ - removed_rows, context);
  } else {
    Stmt mark;
    st = mark.Prepare(db, "UPDATE sessions SET deleted = 1 WHERE session_key = ?1");
    if (st.ok()) {
      sqlite3_bind_int64(mark.get(), 1, keys[0]);
      int rc = sqlite3_step(mark.get());
      if (rc != SQLITE_DONE) st = ToStatus(rc, db, context);
    }
  }
  // Hide from every reader before the commit becomes visible, so no read that
  // starts after this call returns (or during it) shows the session.
  if (st.ok()) shared_->deleted.Add(visible);
  if (st.ok()) st = Commit(context);
  if (!st.ok()) {
    RollbackIfOpen();
    shared_->deleted.Remove(visible);  // previously soft-deleted keys stay hidden
    return st;
  }
  if (hard) {
    // The rows are gone: nothing left to hide (keys are never reused).
    shared_->deleted.Remove(keys);
    retained_bytes_ -= removed_bytes;
    event_count_ -= removed_rows;
  }
  if (auto it = session_keys_.find(session_id); it != session_keys_.end()) {
    session_keys_.erase(it);
  }
  return Status::Ok();
}

Status SqliteLogStore::DeleteSessionRows(const std::vector<int64_t>& keys, int64_t& removed_rows,
                                         int64_t& removed_bytes, std::string_view context) {
  sqlite3* db = db_.get();
  Stmt segments, del_event, del_segments, del_session;
  TAILBUS_RETURN_IF_ERROR(segments.Prepare(
      db,
      "SELECT first_offset, last_offset, offsets FROM session_segments WHERE session_key = ?1"));
  TAILBUS_RETURN_IF_ERROR(del_event.Prepare(
      db, "DELETE FROM events WHERE log_offset = ?1 RETURNING length(CAST(body AS BLOB))"));
  TAILBUS_RETURN_IF_ERROR(
      del_segments.Prepare(db, "DELETE FROM session_segments WHERE session_key = ?1"));
  TAILBUS_RETURN_IF_ERROR(del_session.Prepare(db, "DELETE FROM sessions WHERE session_key = ?1"));
  std::vector<int64_t> offsets;
  for (int64_t key : keys) {
    ResetOnExit reset(segments.get());
    sqlite3_bind_int64(segments.get(), 1, key);
    int rc;
    while ((rc = sqlite3_step(segments.get())) == SQLITE_ROW) {
      offsets.clear();
      TAILBUS_RETURN_IF_ERROR(
          sqlite::DecodeSegmentRow(segments.get(), key, 0, std::numeric_limits<int64_t>::max(),
                                   std::numeric_limits<size_t>::max(), offsets, context));
      for (int64_t offset : offsets) {
        ResetOnExit reset_event(del_event.get());
        sqlite3_bind_int64(del_event.get(), 1, offset);
        rc = sqlite3_step(del_event.get());
        if (rc == SQLITE_ROW) {  // evicted rows are simply absent
          removed_rows += 1;
          removed_bytes += sqlite3_column_int64(del_event.get(), 0);
          rc = sqlite3_step(del_event.get());
        }
        if (rc != SQLITE_DONE) return ToStatus(rc, db, context);
      }
    }
    if (rc != SQLITE_DONE) return ToStatus(rc, db, context);
    for (Stmt* del : {&del_segments, &del_session}) {
      ResetOnExit reset_del(del->get());
      sqlite3_bind_int64(del->get(), 1, key);
      rc = sqlite3_step(del->get());
      if (rc != SQLITE_DONE) return ToStatus(rc, db, context);
    }
  }
  return Status::Ok();
}

Result<int64_t> SqliteLogStore::RunRetentionStep(const RetentionPolicy& policy, int64_t now_ms,
                                                 size_t max_rows) {
  TAILBUS_RETURN_IF_ERROR(CheckWritable("retention"));
  if (max_rows == 0 ||
      (policy.max_age_ms <= 0 && policy.max_events <= 0 && policy.max_bytes <= 0)) {
    return int64_t{0};
  }
  constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
  const int64_t head_now = head();
  const int64_t count_cut = policy.max_events > 0 ? head_now - policy.max_events : kNone;
  const int64_t age_cut = policy.max_age_ms > 0 ? now_ms - policy.max_age_ms : kNone;
  const bool by_bytes = policy.max_bytes > 0;
  // Cheap exits that need no transaction.
  if (count_cut < earliest() && age_cut == kNone &&
      (!by_bytes || retained_bytes_ <= policy.max_bytes)) {
    return int64_t{0};
  }

  // Sessions rows are removed by their last_offset: it must be exact first.
  TAILBUS_RETURN_IF_ERROR(Flush());
  sqlite3* db = db_.get();
  const std::string context = fmt::format("{}: retention step", shared_->path);
  TAILBUS_RETURN_IF_ERROR(Begin(context));
  int64_t remaining_bytes = retained_bytes_;
  int64_t deleted = 0;
  int64_t last_due = 0;
  std::unordered_set<int64_t> touched_keys;
  Status st;
  {
    Stmt scan;
    st = scan.Prepare(db,
                      "SELECT log_offset, session_key, ingested_at_ms, body FROM events "
                      "ORDER BY log_offset");
    int rc = SQLITE_DONE;
    while (st.ok() && static_cast<size_t>(deleted) < max_rows &&
           (rc = sqlite3_step(scan.get())) == SQLITE_ROW) {
      const int64_t offset = sqlite3_column_int64(scan.get(), 0);
      const int64_t ingested = sqlite3_column_int64(scan.get(), 2);
      const bool due = offset <= count_cut || ingested < age_cut ||
                       (by_bytes && remaining_bytes > policy.max_bytes);
      if (!due) break;
      remaining_bytes -= sqlite3_column_bytes(scan.get(), 3);
      touched_keys.insert(sqlite3_column_int64(scan.get(), 1));
      last_due = offset;
      ++deleted;
    }
    if (st.ok() && rc != SQLITE_ROW && rc != SQLITE_DONE) st = ToStatus(rc, db, context);
  }
  if (st.ok() && deleted == 0) {
    RollbackIfOpen();
    return int64_t{0};
  }

  int64_t new_earliest = last_due + 1;
  struct Removed {
    int64_t key;
    std::string session_id;
    bool was_deleted;
  };
  std::vector<Removed> removed;
  if (st.ok()) {
    Stmt del;
    // Segments still listing a retained offset stay; readers skip the
    // evicted offsets they also list.
    for (const char* sql : {"DELETE FROM events WHERE log_offset <= ?1",
                            "DELETE FROM session_segments WHERE last_offset <= ?1"}) {
      if (st.ok()) st = del.Prepare(db, sql);
      if (st.ok()) {
        sqlite3_bind_int64(del.get(), 1, last_due);
        int rc = sqlite3_step(del.get());
        if (rc != SQLITE_DONE) st = ToStatus(rc, db, context);
      }
    }
  }
  if (st.ok()) {
    auto next = sqlite::QueryInt(db, "SELECT min(log_offset) FROM events", context);
    if (!next.ok()) {
      st = next.status();
    } else if (!next->has_value() || **next <= 0) {
      new_earliest = head_now + 1;  // empty log
    }
    // (min() over an empty table yields one NULL row: has_value() is true, value 0.)
  }
  if (st.ok()) {
    Stmt del;
    st = del.Prepare(db,
                     "DELETE FROM sessions WHERE session_key = ?1 AND last_offset <= ?2 "
                     "RETURNING session_id, deleted");
    for (auto it = touched_keys.begin(); st.ok() && it != touched_keys.end(); ++it) {
      ResetOnExit reset(del.get());
      sqlite3_bind_int64(del.get(), 1, *it);
      sqlite3_bind_int64(del.get(), 2, last_due);
      int rc = sqlite3_step(del.get());
      if (rc == SQLITE_ROW) {
        removed.push_back(Removed{*it, std::string(ColumnText(del.get(), 0)),
                                  sqlite3_column_int(del.get(), 1) != 0});
        rc = sqlite3_step(del.get());
      }
      if (rc != SQLITE_DONE) st = ToStatus(rc, db, context);
    }
  }
  if (st.ok()) st = SetMeta("earliest", new_earliest, context);
  if (st.ok()) st = SetMeta("retained_bytes", remaining_bytes, context);
  if (st.ok()) st = SetMeta("event_count", event_count_ - deleted, context);
  if (st.ok()) st = Commit(context);
  if (!st.ok()) {
    RollbackIfOpen();
    return st;
  }
  retained_bytes_ = remaining_bytes;
  event_count_ -= deleted;
  std::vector<int64_t> unhide;
  for (const Removed& r : removed) {
    if (r.was_deleted) {
      unhide.push_back(r.key);
    } else if (auto it = session_keys_.find(r.session_id);
               it != session_keys_.end() && it->second == r.key) {
      session_keys_.erase(it);
    }
  }
  shared_->deleted.Remove(unhide);
  shared_->earliest.store(new_earliest, std::memory_order_release);
  return deleted;
}

Result<std::vector<std::pair<std::string, int64_t>>> SqliteLogStore::RecentEventIds(
    int64_t since_ms, size_t max_ids) {
  std::vector<std::pair<std::string, int64_t>> out;
  if (max_ids == 0) return out;
  sqlite3* db = db_.get();
  Stmt scan;
  TAILBUS_RETURN_IF_ERROR(scan.Prepare(
      db, "SELECT log_offset, ingested_at_ms, header FROM events ORDER BY log_offset DESC"));
  // ingested_at_ms is non-decreasing with the offset: stop at the first older row.
  int rc = SQLITE_DONE;
  sqlite::HeaderView header;
  while (out.size() < max_ids && (rc = sqlite3_step(scan.get())) == SQLITE_ROW) {
    if (sqlite3_column_int64(scan.get(), 1) < since_ms) {
      rc = SQLITE_DONE;
      break;
    }
    const int64_t offset = sqlite3_column_int64(scan.get(), 0);
    const void* blob = sqlite3_column_blob(scan.get(), 2);
    if (!sqlite::DecodeHeader(blob, static_cast<size_t>(sqlite3_column_bytes(scan.get(), 2)),
                              header)) {
      return Status::Corruption(
          fmt::format("{}: event at offset {} has a malformed header", shared_->path, offset));
    }
    out.emplace_back(std::string(header.event_id), offset);
  }
  if (out.size() < max_ids && rc != SQLITE_DONE) {
    return ToStatus(rc, db, shared_->path + ": reading recent event ids");
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace

Result<std::unique_ptr<LogStore>> LogStore::Open(const std::string& path,
                                                 const StorageOptions& options) {
  return SqliteLogStore::Open(path, options);
}

int SchemaVersion() { return kSchemaVersion; }

namespace sqlite {

namespace {
constexpr int64_t kMinWalSizeLimitBytes = int64_t{64} << 20;
constexpr int64_t kWalLimitPerCheckpoint = 2;  // limit = 2 x the threshold's bytes
constexpr int64_t kWalFrameHeaderBytes = 24;
}  // namespace

int64_t WalSizeLimitBytes(int64_t page_size, const StorageOptions& options) {
  const int64_t threshold =
      int64_t{std::max(options.wal_autocheckpoint_pages, 0)} * (page_size + kWalFrameHeaderBytes);
  return std::max(kMinWalSizeLimitBytes, kWalLimitPerCheckpoint * threshold);
}

int64_t WalFileBytes(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path + "-wal", ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

}  // namespace sqlite

}  // namespace tailbus
