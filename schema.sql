-- tailbus replay log: the specification of the on-disk format.
--
-- Schema version 5 (PRAGMA user_version). A build refuses to open a file whose
-- user_version is newer than the one it knows, and never rewrites such a file.
-- Migrations from older versions run in order inside one transaction when the
-- file is opened for writing (a read-only open reads an older file as it is):
--   1 -> 2: DROP INDEX events_by_session; CREATE INDEX events_by_session_chunk
--           (below); PRAGMA user_version = 2. Version 1 indexed events by
--           (session_key) alone.
--   2 -> 3: INSERT meta 'sessions_through' = meta 'head';
--           PRAGMA user_version = 3. Version 2 rewrote every session row in
--           the commit of its events, so its rows are exact at head.
--   3 -> 4: CREATE TABLE session_segments and its index (below); fill it
--           with every session's offsets up to meta 'sessions_through', read
--           in offset order, at most kMaxSegmentOffsets (1,024) per row;
--           DROP INDEX events_by_session_chunk; PRAGMA user_version = 4.
--           Version 3 indexed events row by row on
--           (log_offset >> 15, session_key).
--   4 -> 5: PRAGMA user_version = 5; nothing else changes. Version 4 wrote
--           every buffered session in one transaction, so no session was
--           written past sessions_through; version 5 writes them a few at a
--           time (the invariants below), and a version 4 build would count
--           such a session's events twice after a crash: it must not open it.
--
-- File: one SQLite 3 database in WAL mode (PRAGMA journal_mode = WAL), created
-- with a 16 KiB page size unless configured otherwise (set before any table
-- exists). This whole script, including the user_version below, runs in ONE
-- transaction together with the meta rows, so a file either is a complete
-- tailbus log or holds no schema at all.
--
-- What identifies a tailbus log, in every schema version: a table
-- meta(key, value) holding the row ('application', 'tailbus'). A SQLite file
-- without it is not ours and is never opened for writing. A file with NO schema
-- objects and user_version 0 (e.g. creation interrupted before its single
-- transaction committed, or a 0-byte file) holds no data and may be initialised.
--
-- Invariants:
--   * log_offset values are assigned by the single writer in commit order,
--     start at 1 and increase by one per committed event. A failed transaction
--     burns no offset. Retention and hard deletes remove rows but never renumber,
--     and an offset is never reused: meta 'head' remembers the last one even
--     when its row is gone.
--   * Every event's session row exists from the transaction of its first event
--     on, and the meta counters ('head', 'retained_bytes', 'event_count') are
--     written in the same transaction as the event.
--   * Session summaries lag, session by session. The writer buffers a
--     session's events in memory and writes them later, all at once, in one
--     transaction: the counters into its sessions row and the offsets into a
--     session_segments row. W(s), the last_offset of session s's newest
--     session_segments row (0 when it has none), marks what is written: the
--     row's event_count, total_cost_tokens and error_count count exactly its
--     events with log_offset <= W(s), and its last_offset, first_time_ms and
--     last_time_ms cover at least those. S = meta 'sessions_through' is the
--     low watermark: every event with log_offset <= S is written; an event
--     after S is written iff its log_offset <= W(s) of its session.
--   * A session's buffer is written within session_flush_interval_ms of its
--     first buffered event (2 x that when the writer is behind; a few sessions
--     per append, so no append carries them all), sooner when
--     session_flush_events events are buffered, and entirely (S moved to head)
--     before any delete or retention step and at close. A writer opening the
--     file re-aggregates the events after S whose offset exceeds W(s) (left by
--     a crash) and writes them. So a session's events lie in
--     [first_offset, last_offset] or after W(s).
--   * session_segments lists, for every session s, exactly its offsets
--     <= W(s) (minus rows removed by retention or a hard delete: a listed
--     offset whose events row is gone is skipped by readers). Its offsets
--     after W(s) are listed nowhere on disk: a reader of a file being written
--     takes the listing up to S, where it is complete for every session, and
--     scans the events after S (about session_flush_interval_ms of appends).
--   * events.ingested_at_ms is non-decreasing in log_offset order (retention by
--     age deletes a prefix of the log).
--   * Rows with log_offset < meta 'earliest' do not exist (evicted).
--   * session_key values are never reused (AUTOINCREMENT), so a key names one
--     session for the life of the file and readers may cache key -> session_id.
--   * The file runs in WAL mode; readers see only committed transactions.

-- Key/value facts about this log. Values are text; numbers are decimal integers.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,  -- 'application'    : always 'tailbus'; tells our files from others
                           -- 'epoch'          : random 128-bit id (32 lower-case hex chars) of
                           --                    this log, written once; a client resuming with
                           --                    another epoch is told to reset
                           -- 'created_at_ms'  : creation time, epoch milliseconds UTC, written once
                           -- 'head'           : last committed offset (0 when nothing was ever
                           --                    appended); updated by every append
                           -- 'earliest'       : first retained offset; updated by retention,
                           --                    head + 1 once retention has evicted every row;
                           --                    offsets below it were evicted (hard deletes
                           --                    leave gaps above it instead)
                           -- 'retained_bytes' : sum of the byte lengths of events.body over all
                           --                    stored rows; drives retention by size
                           -- 'event_count'    : number of rows in events (soft-deleted sessions'
                           --                    rows included), kept so nothing counts the table
                           -- 'sessions_through': every event up to this offset is in its
                           --                    session's row and session_segments (later
                           --                    ones may be too: see the invariants); <= head
  value TEXT NOT NULL      -- the fact, as text
) WITHOUT ROWID;

-- The rows every new log starts with; the creating build adds 'epoch' and
-- 'created_at_ms' in the same transaction.
INSERT INTO meta (key, value) VALUES
  ('application', 'tailbus'),
  ('head', '0'),
  ('earliest', '1'),
  ('retained_bytes', '0'),
  ('event_count', '0'),
  ('sessions_through', '0');

-- One row per session (a conversation, a job, an agent run). Sessions are keyed
-- by a small integer so the per-session index stays narrow. The counters are
-- totals over the session's events written so far, those up to the last
-- offset of its newest session_segments row (see the invariants: a new row
-- starts at zero and the writer adds its events in bulk); retention does not lower them, it deletes the row once none of the
-- session's events is retained.
CREATE TABLE sessions (
  session_key       INTEGER PRIMARY KEY AUTOINCREMENT,  -- internal key, never reused;
                                                        -- referenced by events.session_key
  session_id        TEXT    NOT NULL,            -- the producer's session id (1..128 bytes)
  first_offset      INTEGER NOT NULL,            -- offset of the session's first event
  last_offset       INTEGER NOT NULL,            -- its newest offset summarised so far
                                                 -- (activity order; see the invariants)
  first_time_ms     INTEGER NOT NULL,            -- smallest event timestamp, epoch ms
  last_time_ms      INTEGER NOT NULL,            -- largest event timestamp, epoch ms
  event_count       INTEGER NOT NULL DEFAULT 0,  -- events appended to the session
  total_cost_tokens INTEGER NOT NULL DEFAULT 0,  -- sum of cost_tokens (absent counts as 0)
  error_count       INTEGER NOT NULL DEFAULT 0,  -- events of type 'error' or with status
                                                 -- 'error', 'failed' or 'timeout'
  deleted           INTEGER NOT NULL DEFAULT 0   -- 0 visible; 1 soft-deleted (hidden from
                                                 -- reads and listings, rows kept)
);

-- A session id names at most one visible session. A soft-deleted session keeps
-- its row; a later event with the same id starts a new session row.
CREATE UNIQUE INDEX sessions_visible_id ON sessions(session_id) WHERE deleted = 0;

-- Listing sessions newest activity first.
CREATE INDEX sessions_by_activity ON sessions(last_offset) WHERE deleted = 0;

-- The soft-deleted sessions, loaded when a log is opened (empty in the common case;
-- costs nothing on appends, which only write visible sessions).
CREATE INDEX sessions_deleted ON sessions(session_key) WHERE deleted = 1;

-- The log itself: one row per committed event.
--
-- The event's indexed fields travel in ONE blob column (`header`) rather than one
-- column each: measured on the target machine, SQLite's per-column cost (record
-- decode, copy, API call) was most of the read path and a large part of the
-- insert path. Every field is also in `body` (the delivered JSON), so ad-hoc SQL
-- can use json_extract(body, '$.tool_name') and the like.
CREATE TABLE events (
  log_offset      INTEGER PRIMARY KEY,  -- the event's global offset (rowid alias)
  session_key     INTEGER NOT NULL,     -- sessions.session_key
  ingested_at_ms  INTEGER NOT NULL,     -- when the bus accepted it, epoch ms (retention by
                                        -- age; non-decreasing in log_offset order)
  header          BLOB    NOT NULL,     -- the event's fields except session_id, "header
                                        -- encoding v1" (below)
  body            TEXT    NOT NULL      -- the delivered JSON object (UTF-8), offset and
                                        -- ingested_at included: served to readers byte for byte
);
-- Header encoding v1 (events.header), little-endian throughout:
--   byte 0       flags: bit 0 set when cost_tokens is present, bit 1 when duration_ms
--                is present; all other bits 0
--   bytes 1..8   timestamp_ms: the producer's timestamp (or ingest time), epoch ms, int64
--   [8 bytes]    cost_tokens, int64 (only when flag bit 0 is set)
--   [8 bytes]    duration_ms, IEEE-754 binary64 (only when flag bit 1 is set)
--   8 strings    each an unsigned LEB128 byte length followed by that many UTF-8 bytes,
--                in this order: event_type, event_id (the idempotency key; not indexed:
--                recent ids are read by offset range), agent_id, tool_name, status,
--                model, feature_id, parent_event_id. Length 0 means absent (event_type
--                and event_id are never absent).
--   The blob ends right after the last string.

-- One session's offsets, so its events are read without scanning the others'
-- (the per-session index). The writer keeps a session's new offsets in memory
-- and writes them here, one row per session per write of its buffer (split
-- every 1,024 offsets), in the transaction that adds them to its sessions row;
-- a writable open after a crash rebuilds the missing rows from the events
-- after meta 'sessions_through' (see the invariants).
--
-- Why in bulk instead of an index on events: any index on events gets an entry
-- per appended row, and the entries of 1,000 interleaved sessions land on
-- different leaf pages, so every commit dirtied dozens to thousands of index
-- pages, each written whole to the WAL. Here a flush writes each active session's
-- offsets once. Measured on the target machine, plain SQLite, 1M 420-byte rows
-- over 1,000 sessions, 1,000 rows per commit (bench/BENCHMARKS_notes.md):
-- 187k rows/s with the previous chunked index, 371k rows/s with these rows
-- flushed every 100,000 events, 343k rows/s with no session index at all.
--
-- Reading one session after offset A: the segment holding A + 1, then the
-- later ones, in first_offset order:
--   WHERE session_key = ?1 AND first_offset >= ifnull((SELECT max(first_offset)
--     FROM session_segments WHERE session_key = ?1 AND first_offset <= A), 0)
--   ORDER BY first_offset
-- then each listed offset is read from events by its rowid.
CREATE TABLE session_segments (
  session_key   INTEGER NOT NULL,  -- sessions.session_key
  first_offset  INTEGER NOT NULL,  -- the first (smallest) offset the row lists
  last_offset   INTEGER NOT NULL,  -- the last (largest) offset the row lists
  offsets       BLOB    NOT NULL,  -- the other offsets, "offset list encoding v1" (below)
  PRIMARY KEY (session_key, first_offset)  -- a session's rows in offset order
) WITHOUT ROWID;
-- Offset list encoding v1 (session_segments.offsets): for each offset after
-- first_offset, in ascending order, the unsigned LEB128 varint of its distance
-- (>= 1) from the previous one. Empty when the row lists one offset. The last
-- decoded offset equals last_offset.

-- Retention deletes the rows whose offsets are all evicted by last_offset.
CREATE INDEX session_segments_by_end ON session_segments(last_offset);

PRAGMA user_version = 5;
