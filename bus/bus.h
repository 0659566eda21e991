// The in-process bus: appends events to the log and lets any number of
// subscribers read committed events by offset.
//
// Data path: Append*() enqueues (any thread) -> the writer thread drains the
// queue (group commit, up to BusOptions::max_group_events) into ONE storage
// transaction -> offsets are assigned in commit order -> each event's JSON is
// encoded once and pushed into the hot ring -> head() moves -> wake-up
// functions run -> producers' completions run.
//
// Threads:
// - Append/AppendAsync/DeleteSession/Subscribe/head/earliest/epoch: any thread.
// - The writer thread (owned by Bus) is the only user of the LogStore's write
//   connection. Completions and wake-ups run ON the writer thread: they must be
//   short and must not call back into Append synchronously (Append() from a
//   completion would deadlock; AppendAsync is fine).
// - A Cursor is used by one thread at a time, with a LogReader that belongs to
//   that thread (NewReader()).
//
// Backpressure: the append queue is bounded (max_queued_events). When full,
// AppendAsync completes at once with ResourceExhausted; nothing is queued.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/event.h"
#include "core/filter.h"
#include "core/status.h"
#include "storage/log_store.h"

namespace tailbus {

struct BusOptions {
  // Most events committed in one transaction (group commit cap).
  size_t max_group_events = 20'000;
  // Most events waiting for the writer; beyond it appends fail fast.
  size_t max_queued_events = 1'000'000;
  // Byte budget of the hot ring of recently committed events.
  size_t hot_ring_bytes = 64 * 1024 * 1024;
  // Idempotency window: a re-sent event_id inside it gets its original offset.
  std::chrono::milliseconds dedupe_window = std::chrono::minutes(10);
  // Most event ids remembered for idempotency.
  size_t dedupe_max_ids = 1'000'000;
  // What the log keeps; enforced in small steps between commits.
  RetentionPolicy retention;
  // Most rows one retention step deletes (keeps appends from stalling).
  size_t retention_step_rows = 5'000;
  // How often the writer checks retention when idle.
  std::chrono::milliseconds retention_interval = std::chrono::seconds(1);
};

// Offsets assigned to an appended batch, one per input event, in input order.
// A duplicate (same event_id inside the dedupe window) gets the original offset.
using AppendResult = Result<std::vector<int64_t>>;
using AppendCallback = std::function<void(AppendResult)>;

struct PollResult {
  std::vector<EventPtr> events;  // matching events, ascending offsets
  // True when the cursor has reached head() as it was during this poll.
  bool caught_up = false;
};

class Bus;

// A subscription's position in the log plus its filter. Not thread-safe: one
// thread polls it. Cheap: it holds no events and no connection.
class Cursor {
 public:
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  // The next committed events after position() that match the filter, at most
  // max_events and about max_bytes of JSON (at least one event if any is due),
  // from the hot ring when it still holds them, from storage otherwise. Storage
  // reads are bounded (they examine at most a few thousand rows per call).
  // Advances position() past everything examined. Evicted when position()+1 is
  // older than the earliest retained offset: call Reset() to continue.
  // `detail`: what storage reads fill in (ReadDetail::kDelivery when only the
  // JSON is sent on); events from the hot ring are always complete.
  Result<PollResult> Poll(LogReader& reader, size_t max_events, size_t max_bytes,
                          ReadDetail detail = ReadDetail::kFull);

  // True when events after position() may be due (position() < bus head).
  bool HasPending() const;

  int64_t position() const { return position_; }
  const Filter& filter() const { return filter_; }
  void Reset(int64_t after) { position_ = after; }

 private:
  friend class Bus;
  Cursor(const Bus* bus, int64_t after, Filter filter)
      : bus_(bus), position_(after), filter_(std::move(filter)) {}

  const Bus* bus_;
  int64_t position_;
  Filter filter_;
};

class Bus {
 public:
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;
  ~Bus();  // Close()s

  // Takes ownership of an open store and starts the writer thread. Seeds the
  // idempotency window from the store.
  static Result<std::unique_ptr<Bus>> Open(std::unique_ptr<LogStore> store,
                                           BusOptions options = {});

  // Queues a batch; `done` runs on the writer thread after the durable commit
  // (or the failure). A failed batch stores nothing and burns no offset.
  void AppendAsync(std::vector<Event> events, AppendCallback done);

  // One queued append of AppendAsyncMany.
  struct PendingAppend {
    std::vector<Event> events;
    AppendCallback done;
  };
  // AppendAsync for several batches at once, in order, waking the writer once.
  // A producer that gathers its requests (the server: every publish read in
  // one pass of the event loop) lets the writer commit them together; woken
  // per request on a shared CPU, the writer committed them one at a time.
  // Each batch is admitted or refused on its own, as by AppendAsync.
  void AppendAsyncMany(std::vector<PendingAppend> appends);

  // Blocking convenience over AppendAsync.
  AppendResult Append(std::vector<Event> events);

  // Runs on the writer thread, serialised with appends. Blocking.
  Status DeleteSession(std::string_view session_id, bool hard);

  // A cursor positioned after `after` (0: from the beginning).
  std::unique_ptr<Cursor> Subscribe(int64_t after, Filter filter) const;

  // A read connection for the calling thread (for Cursor::Poll and queries).
  std::unique_ptr<LogReader> NewReader() const;

  // Registers a function the writer calls after every commit (and on close).
  // It must be thread-safe and cheap (e.g. lws_cancel_service). Returns an id
  // for RemoveWakeup.
  int AddWakeup(std::function<void()> fn);
  void RemoveWakeup(int id);

  // Last committed offset (0 when the log is empty).
  int64_t head() const;
  // First retained offset (head() + 1 when the log is empty).
  int64_t earliest() const;
  const std::string& epoch() const;

  // Stops accepting appends, commits what is queued, stops the writer. Later
  // appends complete with Unavailable. Idempotent.
  void Close();

  // Internal: the hot ring and writer live in the implementation.
  struct Impl;

 private:
  explicit Bus(std::unique_ptr<Impl> impl);
  friend class Cursor;

  std::unique_ptr<Impl> impl_;
};

}  // namespace tailbus
