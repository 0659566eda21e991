// LogReader over SQLite: one read-only connection, one thread at a time.
//
// Every call runs in one read transaction (a WAL snapshot), so a page never
// shows part of a transaction and its bounds (head, earliest, sessions_through
// from meta) agree with its rows. Session summaries are the row plus the
// writer's buffered delta (SharedState::pending), taken under the lock the
// writer holds across its commits, with the snapshot pinned under that lock.
// Rows are matched on column views before anything is allocated; an event is
// built only for a match, in the read's page block (storage/event_page.h).
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/event_page.h"
#include "storage/header_codec.h"
#include "storage/log_store.h"
#include "storage/session_segments.h"
#include "storage/sqlite_log_internal.h"
#include "storage/sqlite_util.h"

namespace tailbus::sqlite {

namespace {

// Columns of an event row, in this order, for both read paths.
constexpr const char* kEventColumns = "log_offset, session_key, ingested_at_ms, header, body";
enum EventColumn : int {
  kOffset = 0,
  kSessionKey,
  kIngestedAt,
  kHeader,
  kBody,
};

constexpr const char* kSessionColumns =
    "session_key, session_id, first_offset, last_offset, first_time_ms, last_time_ms, "
    "event_count, total_cost_tokens, error_count";

// More sessions than this in a filter's session_ids: one offset scan is cheaper
// than keeping a statement open per session.
constexpr size_t kMaxMergedSessions = 16;
// Bound on the reader's session_key -> session_id cache.
constexpr size_t kMaxCachedSessionIds = 1 << 16;
// Memory-mapped I/O for read connections: off. Measured on a 1M-event log
// (best of 4, CPU-time rates): full match-all reads were the same with and
// without a 1 GiB map (1.81M vs 1.78M events/s); one-session reads (random
// pages) were ~19% slower mapped (585k vs 695k/s: page faults and TLB misses
// on 4 KiB OS pages), and a map also turns I/O errors into SIGBUS.
constexpr int64_t kReaderMmapBytes = 0;

// True when `filter` constrains nothing but one session id: every row a scan
// of that session returns matches, so matching each row can be skipped. (Two
// or more ids fall back to matching each row.)
bool OnlyConstrainsOneSession(const Filter& filter) {
  const std::vector<std::string>& ids = filter.session_ids();
  return ids.size() == 1 && filter == Filter().RestrictedToSession(ids[0]);
}

// True when every row of a read by sessions matches `filter`.
bool EveryListedRowMatches(const Filter& filter) {
  return filter.MatchesEverything() || OnlyConstrainsOneSession(filter);
}

// How many offsets of each session a read by sessions collects: when every
// listed row matches, `limit` of them fill the page, so no more.
size_t SessionOffsetsWanted(const Filter& filter, size_t limit, size_t max_scan) {
  return EveryListedRowMatches(filter) ? std::min(limit, max_scan) : max_scan;
}

int64_t ClampToInt64(size_t n) {
  return n > static_cast<size_t>(std::numeric_limits<int64_t>::max())
             ? std::numeric_limits<int64_t>::max()
             : static_cast<int64_t>(n);
}

constexpr int kLastOffsetColumn = 3;  // of kSessionColumns

SessionSummary SummaryFromRow(sqlite3_stmt* s) {
  SessionSummary out;
  out.session_id = std::string(ColumnText(s, 1));
  out.first_offset = sqlite3_column_int64(s, 2);
  out.last_offset = sqlite3_column_int64(s, kLastOffsetColumn);
  out.first_time_ms = sqlite3_column_int64(s, 4);
  out.last_time_ms = sqlite3_column_int64(s, 5);
  out.event_count = sqlite3_column_int64(s, 6);
  out.total_cost_tokens = sqlite3_column_int64(s, 7);
  out.error_count = sqlite3_column_int64(s, 8);
  return out;
}

class SqliteLogReader final : public LogReader {
 public:
  explicit SqliteLogReader(std::shared_ptr<const SharedState> shared) : shared_(std::move(shared)) {
    open_status_ = Init();
  }

  using LogReader::Read;
  Result<ReadPage> Read(int64_t after, const Filter& filter, size_t limit, size_t max_scan,
                        ReadDetail detail) override;
  Result<std::vector<SessionSummary>> ListSessions(size_t limit, size_t offset,
                                                   std::string_view id_contains) override;
  Result<SessionSummary> GetSession(std::string_view session_id) override;
  Result<LogStats> Stats() override;

 private:
  Status Init();

  // One read transaction; COMMITs on destruction. Statements used inside must
  // be reset before it ends (ResetOnExit declared after it).
  class ReadTxn {
   public:
    explicit ReadTxn(SqliteLogReader* r) : r_(r) {}
    Status Begin() {
      sqlite3* db = r_->db_.get();
      // A previous read that failed to end must not poison this one.
      if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      int rc = sqlite3_step(r_->begin_.get());
      sqlite3_reset(r_->begin_.get());
      if (rc != SQLITE_DONE) return r_->Error(rc, "beginning a read");
      active_ = true;
      return Status::Ok();
    }
    ~ReadTxn() {
      if (!active_) return;
      int rc = sqlite3_step(r_->commit_.get());
      sqlite3_reset(r_->commit_.get());
      if (rc != SQLITE_DONE) sqlite3_exec(r_->db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    ReadTxn(const ReadTxn&) = delete;
    ReadTxn& operator=(const ReadTxn&) = delete;

   private:
    SqliteLogReader* r_;
    bool active_ = false;
  };

  struct Bounds {
    int64_t head = 0;
    int64_t earliest = 1;
    // Session rows cover their events up to here; any session may have events
    // after it that its row does not show yet (schema.sql).
    int64_t sessions_through = 0;
  };

  Status Error(int rc, std::string_view what) const {
    return ToStatus(rc, db_.get(), fmt::format("{}: {}", shared_->path, what));
  }
  Result<Bounds> ReadBounds();
  // Begins `txn`, pins its snapshot and copies the buffered session deltas
  // consistently with it.
  Status BeginWithDeltas(ReadTxn& txn, std::unordered_map<int64_t, SessionDelta>& deltas);
  // The session id of `key` (cached; the sessions row otherwise). nullptr when
  // the session row is gone.
  Result<const std::string*> SessionIdOf(int64_t key);
  // The current row of `s` (at `offset`, of the visible session `session_id`)
  // added to `out` when it matches.
  Status TakeRow(sqlite3_stmt* s, int64_t offset, const std::string& session_id,
                 const Filter& filter, bool match_all, ReadDetail detail, EventPageBuilder& out);
  Status ScanByOffset(int64_t after, const Bounds& bounds, const Filter& filter, size_t limit,
                      size_t max_scan, const DeletedSessions::Set* deleted, ReadDetail detail,
                      ReadPage& page);
  // A visible session of a read by sessions.
  struct SessionSpan {
    int64_t key;
    const std::string* id;  // the filter's session id; outlives the read
    // In the writer's process: its buffered offsets after the read's `after`
    // (all after its newest segment), at most SessionOffsetsWanted().
    std::vector<int64_t> buffered;
  };
  // Appends to `out` at most `max` offsets of session `key` in
  // (after, through] listed in session_segments, ascending.
  Status CollectSegmentOffsets(int64_t key, int64_t after, int64_t through, size_t max,
                               std::vector<int64_t>& out);
  // `keys`: visible sessions only (soft-deleted ones already left out).
  // `buffered_tail`: their `buffered` lists hold every offset session_segments
  // does not (the writer's process); otherwise the read stops at
  // sessions_through.
  Status ScanBySessions(const std::vector<SessionSpan>& keys, int64_t after, const Bounds& bounds,
                        bool buffered_tail, const Filter& filter, size_t limit, size_t max_scan,
                        ReadDetail detail, ReadPage& page);

  std::shared_ptr<const SharedState> shared_;
  Status open_status_;
  DbPtr db_;  // declared before the statements: finalised after them
  Stmt begin_;
  Stmt commit_;
  Stmt bounds_;
  Stmt scan_;
  Stmt session_of_key_;
  Stmt key_of_session_;
  Stmt list_;
  Stmt get_session_;
  Stmt session_by_key_;
  Stmt count_sessions_;
  Stmt segments_;   // a session's session_segments rows from an offset on
  Stmt by_offset_;  // one event row by its offset
  std::unordered_map<int64_t, std::string> session_ids_;
};

Status SqliteLogReader::Init() {
  ConfigureProcessOnce();
  const std::string& path = shared_->path;
  const StorageOptions& o = shared_->options;
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, nullptr);
  db_.reset(raw);
  if (rc != SQLITE_OK) return ToStatus(rc, db_.get(), path + ": opening a reader");
  sqlite3* db = db_.get();
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, std::max(o.busy_timeout_ms, 0));
  TAILBUS_RETURN_IF_ERROR(
      Exec(db,
           fmt::format("PRAGMA query_only=1; PRAGMA cache_size=-{}; PRAGMA temp_store=MEMORY; "
                       "PRAGMA mmap_size={};",
                       std::max(o.cache_kib, 0), kReaderMmapBytes)
               .c_str(),
           path + ": configuring a reader"));
  TAILBUS_RETURN_IF_ERROR(begin_.Prepare(db, "BEGIN"));
  TAILBUS_RETURN_IF_ERROR(commit_.Prepare(db, "COMMIT"));
  TAILBUS_RETURN_IF_ERROR(
      bounds_.Prepare(db,
                      "SELECT (SELECT value FROM meta WHERE key = 'head'), "
                      "(SELECT value FROM meta WHERE key = 'earliest'), "
                      "(SELECT value FROM meta WHERE key = 'sessions_through')"));
  TAILBUS_RETURN_IF_ERROR(scan_.Prepare(
      db, fmt::format("SELECT {} FROM events WHERE log_offset > ?1 ORDER BY log_offset LIMIT ?2",
                      kEventColumns)));
  TAILBUS_RETURN_IF_ERROR(by_offset_.Prepare(
      db, fmt::format("SELECT {} FROM events WHERE log_offset = ?1", kEventColumns)));
  // A read-only open of a file older than version 4 has no session_segments:
  // its one-session reads are offset scans (Read()).
  if (shared_->schema_version >= 4) {
    TAILBUS_RETURN_IF_ERROR(segments_.Prepare(
        db,
        "SELECT first_offset, last_offset, offsets FROM session_segments "
        "WHERE session_key = ?1 AND first_offset >= ifnull((SELECT max(first_offset) "
        "FROM session_segments WHERE session_key = ?1 AND first_offset <= ?2), 0) "
        "ORDER BY first_offset"));
  }
  TAILBUS_RETURN_IF_ERROR(
      session_of_key_.Prepare(db, "SELECT session_id FROM sessions WHERE session_key = ?1"));
  TAILBUS_RETURN_IF_ERROR(key_of_session_.Prepare(
      db, "SELECT session_key FROM sessions WHERE session_id = ?1 AND deleted = 0"));
  TAILBUS_RETURN_IF_ERROR(list_.Prepare(
      db, fmt::format("SELECT {} FROM sessions INDEXED BY sessions_by_activity WHERE deleted = 0 "
                      "AND (?1 = '' OR instr(session_id, ?1) > 0) ORDER BY last_offset DESC",
                      kSessionColumns)));
  TAILBUS_RETURN_IF_ERROR(get_session_.Prepare(
      db, fmt::format("SELECT {} FROM sessions WHERE session_id = ?1 AND deleted = 0",
                      kSessionColumns)));
  TAILBUS_RETURN_IF_ERROR(session_by_key_.Prepare(
      db, fmt::format("SELECT {} FROM sessions WHERE session_key = ?1 AND deleted = 0",
                      kSessionColumns)));
  TAILBUS_RETURN_IF_ERROR(count_sessions_.Prepare(
      db, "SELECT count(*) FROM sessions INDEXED BY sessions_by_activity WHERE deleted = 0"));
  return Status::Ok();
}

Result<SqliteLogReader::Bounds> SqliteLogReader::ReadBounds() {
  sqlite3_stmt* s = bounds_.get();
  ResetOnExit reset(s);
  int rc = sqlite3_step(s);
  if (rc != SQLITE_ROW) return Error(rc, "reading the log bounds");
  if (sqlite3_column_type(s, 0) == SQLITE_NULL || sqlite3_column_type(s, 1) == SQLITE_NULL) {
    return Status::Corruption(
        fmt::format("{}: meta 'head' or 'earliest' is missing", shared_->path));
  }
  const int64_t head = sqlite3_column_int64(s, 0);
  // Absent from a version 2 file (read-only open): its rows are exact at head.
  const int64_t through =
      sqlite3_column_type(s, 2) == SQLITE_NULL ? head : sqlite3_column_int64(s, 2);
  return Bounds{head, sqlite3_column_int64(s, 1), std::min(through, head)};
}

Status SqliteLogReader::BeginWithDeltas(ReadTxn& txn,
                                        std::unordered_map<int64_t, SessionDelta>& deltas) {
  const PendingSessions& pending = shared_->pending;
  std::lock_guard lock(pending.mu);
  TAILBUS_RETURN_IF_ERROR(txn.Begin());
  // BEGIN is deferred: the first read fixes the snapshot, and it must happen
  // while the writer cannot commit.
  auto bounds = ReadBounds();
  if (!bounds.ok()) return bounds.status();
  deltas = pending.deltas;
  return Status::Ok();
}

Result<const std::string*> SqliteLogReader::SessionIdOf(int64_t key) {
  if (auto it = session_ids_.find(key); it != session_ids_.end()) return &it->second;
  sqlite3_stmt* s = session_of_key_.get();
  ResetOnExit reset(s);
  sqlite3_bind_int64(s, 1, key);
  int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return static_cast<const std::string*>(nullptr);
  if (rc != SQLITE_ROW) return Error(rc, "reading a session id");
  if (session_ids_.size() >= kMaxCachedSessionIds) session_ids_.clear();
  // Keys are never reused, so the mapping never goes stale.
  auto [it, inserted] = session_ids_.emplace(key, std::string(ColumnText(s, 0)));
  return &it->second;
}

Status SqliteLogReader::TakeRow(sqlite3_stmt* s, int64_t offset, const std::string& session_id,
                                const Filter& filter, bool match_all, ReadDetail detail,
                                EventPageBuilder& out) {
  if (match_all && detail == ReadDetail::kDelivery) {  // nothing needs the header
    CommittedEvent& ev = out.Add(ColumnText(s, kBody));
    ev.offset = offset;
    ev.ingested_at_ms = sqlite3_column_int64(s, kIngestedAt);
    ev.header.session_id = session_id;
    return Status::Ok();
  }
  HeaderView hv;
  const void* blob = sqlite3_column_blob(s, kHeader);
  if (!DecodeHeader(blob, static_cast<size_t>(sqlite3_column_bytes(s, kHeader)), hv)) {
    return Status::Corruption(
        fmt::format("{}: event at offset {} has a malformed header", shared_->path, offset));
  }
  if (!match_all) {
    EventFields f;
    f.session_id = session_id;
    f.event_type = hv.event_type;
    f.agent_id = hv.agent_id;
    f.tool_name = hv.tool_name;
    f.status = hv.status;
    f.model = hv.model;
    f.feature_id = hv.feature_id;
    f.cost_tokens = hv.cost_tokens;
    f.duration_ms = hv.duration_ms;
    if (!filter.Matches(f)) return Status::Ok();
  }

  CommittedEvent& ev = out.Add(ColumnText(s, kBody));
  ev.offset = offset;
  ev.ingested_at_ms = sqlite3_column_int64(s, kIngestedAt);
  EventHeader& h = ev.header;  // fresh: every string empty
  // Optional fields are often absent: skip the call for those.
  auto set = [](std::string& field, std::string_view value) {
    if (!value.empty()) field.assign(value.data(), value.size());
  };
  set(h.session_id, session_id);
  if (detail == ReadDetail::kDelivery) return Status::Ok();
  set(h.event_type, hv.event_type);
  set(h.event_id, hv.event_id);
  h.timestamp_ms = hv.timestamp_ms;
  set(h.agent_id, hv.agent_id);
  set(h.tool_name, hv.tool_name);
  set(h.status, hv.status);
  set(h.model, hv.model);
  set(h.feature_id, hv.feature_id);
  set(h.parent_event_id, hv.parent_event_id);
  h.cost_tokens = hv.cost_tokens;
  h.duration_ms = hv.duration_ms;
  return Status::Ok();
}

Result<ReadPage> SqliteLogReader::Read(int64_t after, const Filter& filter, size_t limit,
                                       size_t max_scan, ReadDetail detail) {
  if (!open_status_.ok()) return open_status_;
  if (after < 0) {
    return Status::InvalidArgument(fmt::format("read: after must be >= 0, got {}", after));
  }
  ReadPage page;
  page.next_after = after;
  ReadTxn txn(this);
  const std::vector<std::string>& ids = filter.session_ids();
  const bool by_sessions =
      !ids.empty() && ids.size() <= kMaxMergedSessions && shared_->schema_version >= 4;
  // In the writer's process its buffer lists each session's offsets not yet
  // in session_segments: they are copied with the snapshot, under the lock
  // the writer holds across the commits that write them (see BeginWithDeltas).
  const bool buffered_tail = by_sessions && !shared_->options.read_only;
  std::unique_lock<std::mutex> lock;
  if (buffered_tail) lock = std::unique_lock(shared_->pending.mu);
  TAILBUS_RETURN_IF_ERROR(txn.Begin());
  auto bounds = ReadBounds();
  if (!bounds.ok()) return bounds.status();
  if (after < bounds->earliest - 1) {  // i.e. after + 1 < earliest, without overflow
    return Status::Evicted(fmt::format("offset {} was evicted; the earliest retained offset is {}",
                                       after + 1, bounds->earliest));
  }
  if (after >= bounds->head || limit == 0 || max_scan == 0) return page;

  std::shared_ptr<const DeletedSessions::Set> deleted;
  if (!shared_->deleted.empty()) deleted = shared_->deleted.Snapshot();
  if (deleted != nullptr && deleted->empty()) deleted.reset();

  // A file written by another process (or a read-only open): the offsets
  // after sessions_through are listed nowhere, so that tail is one offset scan
  // (bounded by the writer's flush interval).
  if (!by_sessions || (!buffered_tail && after >= bounds->sessions_through)) {
    lock = {};
    TAILBUS_RETURN_IF_ERROR(
        ScanByOffset(after, *bounds, filter, limit, max_scan, deleted.get(), detail, page));
    return page;
  }
  std::vector<SessionSpan> keys;
  sqlite3_stmt* s = key_of_session_.get();
  for (const std::string& id : ids) {
    ResetOnExit reset(s);
    BindText(s, 1, id, false);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      int64_t key = sqlite3_column_int64(s, 0);
      if (deleted == nullptr || deleted->count(key) == 0) keys.push_back({key, &id, {}});
    } else if (rc != SQLITE_DONE) {
      return Error(rc, "looking up a session");
    }
  }
  if (buffered_tail) {
    const size_t want = SessionOffsetsWanted(filter, limit, max_scan);
    for (SessionSpan& span : keys) {
      auto it = shared_->pending.offsets.find(span.key);
      if (it == shared_->pending.offsets.end()) continue;
      const std::vector<int64_t>& all = it->second;
      auto from = std::upper_bound(all.begin(), all.end(), after);
      auto to =
          from + static_cast<ptrdiff_t>(std::min(want, static_cast<size_t>(all.end() - from)));
      span.buffered.assign(from, to);
    }
    lock = {};
  }
  TAILBUS_RETURN_IF_ERROR(
      ScanBySessions(keys, after, *bounds, buffered_tail, filter, limit, max_scan, detail, page));
  // Listed offsets exhausted short of head in another process's file: the
  // rest of the page from the unlisted tail.
  if (page.next_after < bounds->head && page.events.size() < limit && !buffered_tail &&
      page.next_after == bounds->sessions_through) {
    TAILBUS_RETURN_IF_ERROR(ScanByOffset(page.next_after, *bounds, filter,
                                         limit - page.events.size(), max_scan, deleted.get(),
                                         detail, page));
  }
  return page;
}

Status SqliteLogReader::ScanByOffset(int64_t after, const Bounds& bounds, const Filter& filter,
                                     size_t limit, size_t max_scan,
                                     const DeletedSessions::Set* deleted, ReadDetail detail,
                                     ReadPage& page) {
  const bool match_all = filter.MatchesEverything();
  sqlite3_stmt* s = scan_.get();
  ResetOnExit reset(s);
  sqlite3_bind_int64(s, 1, after);
  sqlite3_bind_int64(s, 2, ClampToInt64(max_scan));
  // A match-all page holds up to min(limit, max_scan, rows left): size for it.
  const size_t rows = static_cast<size_t>(bounds.head - after);
  EventPageBuilder events(match_all ? std::min({limit, max_scan, rows}) : 64);
  size_t examined = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ++examined;
    page.next_after = sqlite3_column_int64(s, kOffset);
    const int64_t key = sqlite3_column_int64(s, kSessionKey);
    if (deleted != nullptr && deleted->count(key) != 0) continue;
    auto sid = SessionIdOf(key);
    if (!sid.ok()) return sid.status();
    if (*sid == nullptr) continue;  // session row removed in this snapshot: hidden
    TAILBUS_RETURN_IF_ERROR(TakeRow(s, page.next_after, **sid, filter, match_all, detail, events));
    if (events.size() >= limit) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error(rc, "reading events");
  events.Finish(page.events);
  // Ran out of rows before the scan bound: everything up to head was examined
  // (trailing offsets may be gone to a hard delete).
  if (rc == SQLITE_DONE && examined < max_scan) page.next_after = std::max(after, bounds.head);
  return Status::Ok();
}

Status SqliteLogReader::CollectSegmentOffsets(int64_t key, int64_t after, int64_t through,
                                              size_t max, std::vector<int64_t>& out) {
  // Plan (EXPLAIN QUERY PLAN, SQLite 3.40): SEARCH session_segments USING
  // PRIMARY KEY (session_key=? AND first_offset>?), the scalar subquery one
  // more search of it: no scan of the session's earlier rows.
  sqlite3_stmt* s = segments_.get();
  ResetOnExit reset(s);
  sqlite3_bind_int64(s, 1, key);
  sqlite3_bind_int64(s, 2, after + 1);
  const size_t start = out.size();
  int rc;
  while (out.size() - start < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (sqlite3_column_int64(s, 0) > through) return Status::Ok();
    TAILBUS_RETURN_IF_ERROR(
        DecodeSegmentRow(s, key, after, through, max - (out.size() - start), out, shared_->path));
  }
  if (out.size() - start < max && rc != SQLITE_DONE) return Error(rc, "reading a session index");
  return Status::Ok();
}

Status SqliteLogReader::ScanBySessions(const std::vector<SessionSpan>& keys, int64_t after,
                                       const Bounds& bounds, bool buffered_tail,
                                       const Filter& filter, size_t limit, size_t max_scan,
                                       ReadDetail detail, ReadPage& page) {
  // The offsets to examine, ascending: each session's from session_segments
  // (up to `through`, below) then its buffered ones, at most `want` per
  // session. A session cut there caps the read at its last collected offset:
  // past it, that session's offsets were not all collected.
  const bool match_all = EveryListedRowMatches(filter);
  const size_t want = SessionOffsetsWanted(filter, limit, max_scan);
  // With the writer's buffer, session_segments is read in full (a session
  // written after sessions_through lists offsets past it, the buffer the
  // rest). Without it, only up to sessions_through, where the listing is
  // complete for every session.
  const int64_t through = buffered_tail ? bounds.head : bounds.sessions_through;
  constexpr int64_t kNoCap = std::numeric_limits<int64_t>::max();
  int64_t cap = kNoCap;
  std::vector<int64_t> offsets;
  for (const SessionSpan& span : keys) {
    const size_t start = offsets.size();
    if (after < through) {
      TAILBUS_RETURN_IF_ERROR(CollectSegmentOffsets(span.key, after, through, want, offsets));
    }
    offsets.insert(offsets.end(), span.buffered.begin(), span.buffered.end());
    if (offsets.size() - start >= want) {
      offsets.resize(start + want);
      cap = std::min(cap, offsets.back());
    }
  }
  std::sort(offsets.begin(), offsets.end());
  offsets.erase(std::upper_bound(offsets.begin(), offsets.end(), cap), offsets.end());
  if (offsets.size() > want) {
    offsets.resize(want);
    cap = offsets.back();
  }

  // Each offset's row by rowid (a B-tree descent each: most of this read's
  // cost). A row may be gone (retention, or a hard delete in this snapshot).
  EventPageBuilder events(std::min<size_t>(limit, 64));
  sqlite3_stmt* s = by_offset_.get();
  bool full = false;
  for (int64_t offset : offsets) {
    ResetOnExit reset(s);
    sqlite3_bind_int64(s, 1, offset);
    page.next_after = offset;
    const int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) continue;
    if (rc != SQLITE_ROW) return Error(rc, "reading a session's events");
    const int64_t key = sqlite3_column_int64(s, kSessionKey);
    auto span = std::find_if(keys.begin(), keys.end(),
                             [key](const SessionSpan& k) { return k.key == key; });
    if (span == keys.end()) {
      return Status::Corruption(
          fmt::format("{}: offset {} is listed for a session but belongs to session {}",
                      shared_->path, offset, key));
    }
    TAILBUS_RETURN_IF_ERROR(TakeRow(s, offset, *span->id, filter, match_all, detail, events));
    if (events.size() >= limit) {
      full = true;
      break;
    }
  }
  events.Finish(page.events);
  if (full) return Status::Ok();
  // Every offset of these sessions up to the cap was examined: up to head when
  // the buffer listed the tail, else up to sessions_through (the next read
  // scans the rest by offset).
  page.next_after = cap != kNoCap ? cap : std::max(after, through);
  return Status::Ok();
}

Result<std::vector<SessionSummary>> SqliteLogReader::ListSessions(size_t limit, size_t offset,
                                                                  std::string_view id_contains) {
  if (!open_status_.ok()) return open_status_;
  std::vector<SessionSummary> out;
  if (limit == 0) return out;
  ReadTxn txn(this);
  std::unordered_map<int64_t, SessionDelta> deltas;
  TAILBUS_RETURN_IF_ERROR(BeginWithDeltas(txn, deltas));
  std::shared_ptr<const DeletedSessions::Set> deleted;
  if (!shared_->deleted.empty()) deleted = shared_->deleted.Snapshot();
  auto hidden = [&](int64_t key) { return deleted != nullptr && deleted->count(key) != 0; };

  // Two streams, merged newest activity first: the sessions with a delta
  // (their rows' last_offset is stale) by the delta's last offset, and the
  // rest by their rows' last_offset (the activity index).
  std::vector<std::pair<int64_t, int64_t>> active;  // (last offset, key), newest first
  active.reserve(deltas.size());
  for (const auto& [key, delta] : deltas) {
    if (!hidden(key)) active.emplace_back(delta.last_offset, key);
  }
  std::sort(active.begin(), active.end(), std::greater<>());
  size_t skip = offset;
  auto take = [&](sqlite3_stmt* s, const SessionDelta* delta) {
    if (!id_contains.empty() && ColumnText(s, 1).find(id_contains) == std::string_view::npos) {
      return;
    }
    if (skip > 0) {
      --skip;
      return;
    }
    out.push_back(SummaryFromRow(s));
    if (delta != nullptr) delta->ApplyTo(out.back());
  };
  size_t next_active = 0;
  // Takes the sessions with a delta newer than `bound`.
  auto take_active_above = [&](int64_t bound) -> Status {
    for (; next_active < active.size() && active[next_active].first > bound; ++next_active) {
      if (out.size() >= limit) return Status::Ok();
      const int64_t key = active[next_active].second;
      sqlite3_stmt* s = session_by_key_.get();
      ResetOnExit reset(s);
      sqlite3_bind_int64(s, 1, key);
      int rc = sqlite3_step(s);
      if (rc == SQLITE_DONE) continue;  // removed in this snapshot
      if (rc != SQLITE_ROW) return Error(rc, "listing sessions");
      take(s, &deltas.at(key));
    }
    return Status::Ok();
  };
  sqlite3_stmt* s = list_.get();
  ResetOnExit reset(s);
  BindText(s, 1, id_contains, false);
  int rc = SQLITE_DONE;
  while (out.size() < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    const int64_t key = sqlite3_column_int64(s, 0);
    // A session being soft-deleted right now is hidden before its commit.
    if (hidden(key) || deltas.count(key) != 0) continue;
    TAILBUS_RETURN_IF_ERROR(take_active_above(sqlite3_column_int64(s, kLastOffsetColumn)));
    if (out.size() >= limit) break;
    take(s, nullptr);
  }
  if (out.size() < limit && rc != SQLITE_DONE) return Error(rc, "listing sessions");
  TAILBUS_RETURN_IF_ERROR(take_active_above(std::numeric_limits<int64_t>::min()));
  return out;
}

Result<SessionSummary> SqliteLogReader::GetSession(std::string_view session_id) {
  if (!open_status_.ok()) return open_status_;
  ReadTxn txn(this);
  sqlite3_stmt* s = get_session_.get();
  ResetOnExit reset(s);
  BindText(s, 1, session_id, false);
  // The row is read (fixing the snapshot) and its delta looked up while the
  // writer cannot commit: see BeginWithDeltas.
  const PendingSessions& pending = shared_->pending;
  std::unique_lock lock(pending.mu);
  TAILBUS_RETURN_IF_ERROR(txn.Begin());
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    const int64_t key = sqlite3_column_int64(s, 0);
    bool hidden = false;
    if (!shared_->deleted.empty()) hidden = shared_->deleted.Snapshot()->count(key) != 0;
    if (!hidden) {
      SessionSummary out = SummaryFromRow(s);
      if (auto it = pending.deltas.find(key); it != pending.deltas.end()) it->second.ApplyTo(out);
      return out;
    }
    rc = SQLITE_DONE;
  }
  if (rc != SQLITE_DONE) return Error(rc, "reading a session");
  return Status::NotFound(fmt::format("session '{}' not found", session_id));
}

Result<LogStats> SqliteLogReader::Stats() {
  if (!open_status_.ok()) return open_status_;
  LogStats out;
  ReadTxn txn(this);
  TAILBUS_RETURN_IF_ERROR(txn.Begin());
  {
    Stmt meta;
    TAILBUS_RETURN_IF_ERROR(meta.Prepare(db_.get(), "SELECT key, value FROM meta"));
    int rc;
    while ((rc = sqlite3_step(meta.get())) == SQLITE_ROW) {
      std::string_view key = ColumnText(meta.get(), 0);
      const int64_t num = sqlite3_column_int64(meta.get(), 1);
      if (key == "head") out.head = num;
      if (key == "earliest") out.earliest = num;
      if (key == "event_count") out.event_count = num;
      if (key == "created_at_ms") out.created_at_ms = num;
      if (key == "epoch") out.epoch = std::string(ColumnText(meta.get(), 1));
    }
    if (rc != SQLITE_DONE) return Error(rc, "reading meta");
  }
  {
    sqlite3_stmt* s = count_sessions_.get();
    ResetOnExit reset(s);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) return Error(rc, "counting sessions");
    out.session_count = sqlite3_column_int64(s, 0);
  }
  auto version = QueryInt(db_.get(), "PRAGMA user_version", shared_->path);
  if (!version.ok()) return version.status();
  out.schema_version = static_cast<int>(version->value_or(0));
  std::error_code ec;
  auto db_bytes = std::filesystem::file_size(shared_->path, ec);
  out.file_bytes = (ec ? 0 : static_cast<int64_t>(db_bytes)) + WalFileBytes(shared_->path);
  return out;
}

}  // namespace

std::unique_ptr<LogReader> NewSqliteLogReader(std::shared_ptr<const SharedState> shared) {
  return std::make_unique<SqliteLogReader>(std::move(shared));
}

}  // namespace tailbus::sqlite
