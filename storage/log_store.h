// The SQLite replay log. The only module that includes sqlite3.h.
//
// Threading and ownership:
// - LogStore owns the single write connection. Every mutating call (Append,
//   DeleteSession, RunRetentionStep) must come from ONE thread at a time — in
//   the server that is the bus's writer thread. head()/earliest()/epoch() may
//   be called from any thread.
// - LogReader owns one read-only connection. A reader is used by one thread at
//   a time; make one per thread that reads (NewReader()). Readers see only
//   committed transactions (WAL snapshot isolation).
// - Sessions hidden by a soft delete are hidden from every reader at once
//   (shared in-memory set, guarded internally).
//
// Failure: every SQLite error becomes a Status carrying SQLite's message. A
// failed Append rolls back completely: nothing of the batch is stored, head()
// does not move, and the caller still holds the batch and may retry.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/filter.h"
#include "core/status.h"

namespace tailbus {

enum class Synchronous { kNormal, kFull };

struct StorageOptions {
  // NORMAL survives a process crash; FULL also survives power loss (slower).
  Synchronous synchronous = Synchronous::kNormal;
  // Create the file (and its directory) when absent; otherwise NotFound.
  bool create_if_missing = true;
  // Page size for NEW databases, bytes (an existing file keeps its own).
  int page_size = 16 * 1024;
  // SQLite page cache per connection, KiB.
  int cache_kib = 256 * 1024;
  // WAL pages (frames) after which a checkpoint copies them into the database.
  int wal_autocheckpoint_pages = 10'000;
  // Run checkpoints on a background thread with its own connection (PASSIVE;
  // TRUNCATE after 1 s without commits) instead of inside the commit that
  // crosses wal_autocheckpoint_pages. Off: SQLite's automatic checkpoint.
  bool background_checkpoint = true;
  // With background_checkpoint: a commit that leaves more WAL frames than this
  // checkpoints inline before returning (bounds the WAL when the background
  // falls behind a sustained writer). 0: no bound.
  int wal_max_pages = 40'000;
  // How long a connection waits for a lock before failing with Busy, ms.
  int busy_timeout_ms = 5'000;
  // Open read-only: no writes, no schema creation (used by readers and tools).
  bool read_only = false;
  // Cap on the database size in pages (0: unlimited). Appends past it fail
  // with DiskFull; also how tests simulate a full disk.
  int64_t max_page_count = 0;
  // Session summaries (the sessions table's counters and last offset) and
  // per-session offsets are buffered in memory and written by the append
  // transactions, a few sessions each (storage/session_flush_queue.h): a
  // session this many ms after its first buffered event (up to 2x when the
  // writer is behind), the oldest sessions whenever this many events are
  // buffered, and all of them by Flush() and before any delete or retention
  // step. Readers of this store see exact summaries at all times; another
  // process reading the file sees them up to this late. A crash loses
  // nothing: opening for writing rebuilds them from the events.
  int64_t session_flush_events = 100'000;
  int64_t session_flush_interval_ms = 1'000;
};

// One event to append, with the offset the writer assigned to it.
struct AppendRecord {
  int64_t offset = 0;
  int64_t ingested_at_ms = 0;
  const EventHeader* header = nullptr;  // not owned
  std::string_view json;                // the final delivered JSON (EncodeCommittedJson)
};

struct SessionSummary {
  std::string session_id;
  int64_t first_offset = 0;
  int64_t last_offset = 0;
  int64_t first_time_ms = 0;  // smallest event timestamp seen
  int64_t last_time_ms = 0;   // largest event timestamp seen
  int64_t event_count = 0;
  int64_t total_cost_tokens = 0;
  int64_t error_count = 0;  // event_type "error", or status error/failed/timeout
};

struct LogStats {
  int64_t head = 0;           // last committed offset (0 when empty)
  int64_t earliest = 1;       // first retained offset (head + 1 when empty)
  int64_t event_count = 0;    // retained events
  int64_t session_count = 0;  // visible (not deleted) sessions
  int64_t file_bytes = 0;     // database + WAL size on disk
  std::string epoch;
  int schema_version = 0;
  int64_t created_at_ms = 0;
};

struct ReadPage {
  std::vector<EventPtr> events;  // matching events, ascending offset
  // Where to continue: Read(after = next_after). The last offset examined, or
  // how far every row was examined when the read stopped short of max_scan:
  // the head as of this read (so a cursor on a quiet session still advances),
  // or, reading one session of a file another process writes, its
  // sessions_through. Never less than `after`.
  int64_t next_after = 0;
};

// What a read fills in each CommittedEvent.
enum class ReadDetail {
  kFull,      // every field of the header
  kDelivery,  // offset, ingested_at_ms, json and header.session_id only: what
              // is sent to subscribers (the other header strings stay empty,
              // which spares an allocation and ten copies per event)
};

struct RetentionPolicy {
  int64_t max_age_ms = 0;  // 0: no age limit (age by ingested_at)
  int64_t max_events = 0;  // 0: no count limit
  int64_t max_bytes = 0;   // 0: no size limit (sum of stored JSON bytes)
};

class LogReader {
 public:
  virtual ~LogReader() = default;

  // Events with offset > after that match `filter`, ascending, at most `limit`
  // of them, examining at most `max_scan` rows (so a sparse filter stays
  // bounded). Uses the per-session index when filter.session_ids() is set.
  // Evicted when after + 1 < earliest (the caller must be told, not skipped).
  virtual Result<ReadPage> Read(int64_t after, const Filter& filter, size_t limit, size_t max_scan,
                                ReadDetail detail) = 0;
  Result<ReadPage> Read(int64_t after, const Filter& filter, size_t limit, size_t max_scan) {
    return Read(after, filter, limit, max_scan, ReadDetail::kFull);
  }

  // Visible sessions, newest activity (last_offset) first.
  virtual Result<std::vector<SessionSummary>> ListSessions(size_t limit, size_t offset,
                                                           std::string_view id_contains = {}) = 0;
  // NotFound when absent or deleted.
  virtual Result<SessionSummary> GetSession(std::string_view session_id) = 0;

  virtual Result<LogStats> Stats() = 0;
};

class LogStore {
 public:
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;
  virtual ~LogStore() = default;

  // Opens or creates the log at `path`. Fails cleanly (Corruption/Unsupported,
  // never overwriting) on a truncated or garbage file, a file that is not a
  // tailbus log, or a schema newer than this build knows.
  static Result<std::unique_ptr<LogStore>> Open(const std::string& path,
                                                const StorageOptions& options = {});

  // Appends records in ONE transaction. Records must carry contiguous offsets
  // starting at head() + 1. A new session's row is written in the same
  // transaction; existing sessions' summaries are buffered (see
  // StorageOptions::session_flush_events) and may be written with it.
  virtual Status Append(std::span<const AppendRecord> records) = 0;

  // Writes buffered session summaries to the file now (a no-op when none is
  // buffered). The bus calls it when idle; the destructor calls it too.
  virtual Status Flush() { return Status::Ok(); }

  // Soft delete hides the session from reads and listings (a later event with
  // the same id starts a new, visible session); hard delete removes its rows.
  virtual Status DeleteSession(std::string_view session_id, bool hard) = 0;

  // One bounded retention step: deletes at most `max_rows` of the oldest events
  // that the policy no longer retains. Returns how many were deleted (0 when
  // nothing is due). Advances earliest().
  virtual Result<int64_t> RunRetentionStep(const RetentionPolicy& policy, int64_t now_ms,
                                           size_t max_rows) = 0;

  // (event_id, offset) of the newest events ingested at or after since_ms,
  // at most max_ids, oldest first: seeds the bus's idempotency window.
  virtual Result<std::vector<std::pair<std::string, int64_t>>> RecentEventIds(int64_t since_ms,
                                                                              size_t max_ids) = 0;

  virtual std::unique_ptr<LogReader> NewReader() = 0;

  virtual int64_t head() const = 0;
  virtual int64_t earliest() const = 0;
  virtual const std::string& epoch() const = 0;
  virtual const std::string& path() const = 0;

 protected:
  LogStore() = default;
};

// The schema this build writes (schema.sql, compiled in) and its version.
std::string_view SchemaSql();
int SchemaVersion();

}  // namespace tailbus
