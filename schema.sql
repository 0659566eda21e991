-- tailbus replay log: the specification of the on-disk format.
--
-- Schema version 1 (PRAGMA user_version). A build refuses to open a file whose
-- user_version is newer than the one it knows, and never rewrites such a file.
-- Migrations from older versions run in order inside one transaction.
--
-- Invariants:
--   * log_offset values are assigned by the single writer in commit order,
--     start at 1 and increase by one per committed event. A failed transaction
--     burns no offset. Retention and hard deletes remove rows but never renumber.
--   * Every event's session row is written in the same transaction as the event.
--   * The file runs in WAL mode; readers see only committed transactions.

-- Key/value facts about this log, written once at creation unless noted.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,  -- 'epoch'         : random 128-bit hex id of this log; a client
                           --                   resuming with another epoch is told to reset
                           -- 'created_at_ms' : creation time, epoch milliseconds UTC
                           -- 'earliest'      : first retained offset; updated by retention
                           --                   (offsets below it were evicted)
                           -- 'application'   : always 'tailbus'; tells our files from others
  value TEXT NOT NULL      -- the fact, as text
) WITHOUT ROWID;

-- One row per session (a conversation, a job, an agent run). Sessions are keyed
-- by a small integer so the per-session index stays narrow.
CREATE TABLE sessions (
  session_key       INTEGER PRIMARY KEY,         -- internal key, referenced by events.session_key
  session_id        TEXT    NOT NULL,            -- the producer's session id (1..128 bytes)
  first_offset      INTEGER NOT NULL,            -- offset of the session's first event
  last_offset       INTEGER NOT NULL,            -- offset of its newest event (activity order)
  first_time_ms     INTEGER NOT NULL,            -- smallest event timestamp, epoch ms
  last_time_ms      INTEGER NOT NULL,            -- largest event timestamp, epoch ms
  event_count       INTEGER NOT NULL DEFAULT 0,  -- events appended to the session
  total_cost_tokens INTEGER NOT NULL DEFAULT 0,  -- sum of cost_tokens
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

-- The log itself: one row per committed event.
CREATE TABLE events (
  log_offset      INTEGER PRIMARY KEY,  -- the event's global offset (rowid alias)
  session_key     INTEGER NOT NULL,     -- sessions.session_key
  ingested_at_ms  INTEGER NOT NULL,     -- when the bus accepted it, epoch ms (retention by age)
  timestamp_ms    INTEGER NOT NULL,     -- the producer's timestamp (or ingest time), epoch ms
  event_type      TEXT    NOT NULL,     -- normalised event type
  event_id        TEXT    NOT NULL,     -- producer's or generated id (idempotency key)
  agent_id        TEXT,                 -- NULL when absent; likewise the five below
  tool_name       TEXT,
  status          TEXT,
  model           TEXT,
  feature_id      TEXT,
  parent_event_id TEXT,
  cost_tokens     INTEGER,              -- NULL when absent and not derivable
  duration_ms     REAL,                 -- NULL when absent and not derivable
  body            TEXT    NOT NULL      -- the delivered JSON object, offset and ingested_at
                                        -- included: served to readers byte for byte
);

-- One session's events in offset order without scanning the others.
CREATE INDEX events_by_session ON events(session_key, log_offset);

PRAGMA user_version = 1;
