#include "bus/bus.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "bus/hidden_sessions.h"
#include "bus/hot_ring.h"
#include "bus/idempotency_window.h"
#include "core/time_format.h"

// Invariants:
// - Only the writer thread touches the store's write side, the idempotency
//   window and the offset counter. The next offset is always store head + 1,
//   recomputed for every transaction, so a failed transaction burns nothing.
// - For a commit, in this order: storage COMMIT, ring push, head store
//   (release), wake-ups, completions. Whoever observes the new head finds its
//   events in the ring or in storage, and a producer's ack implies durability.
// - The ring holds a contiguous run of the newest committed offsets.

namespace tailbus {
namespace {

// Bounds how long one Poll may hold the ring lock or scan storage.
constexpr size_t kRingMaxExamined = 8192;
constexpr size_t kStorageMaxScan = 4096;
// Retries of a transaction that failed with SQLITE_BUSY before giving up.
constexpr int kBusyRetries = 3;
// After this long without appends the writer asks the store to write its
// buffered session summaries, so another process reading the file (the CLI)
// soon sees them exact.
constexpr auto kIdleFlushDelay = std::chrono::seconds(1);

struct Request {
  enum class Kind { kAppend, kDeleteSession };
  Kind kind = Kind::kAppend;
  std::vector<Event> events;
  AppendCallback done;
  std::string session_id;
  bool hard = false;
  std::function<void(Status)> delete_done;
};

bool HasRetentionPolicy(const RetentionPolicy& p) {
  return p.max_age_ms > 0 || p.max_events > 0 || p.max_bytes > 0;
}

}  // namespace

struct Bus::Impl {
  Impl(std::unique_ptr<LogStore> s, BusOptions o)
      : store(std::move(s)),
        options(std::move(o)),
        ring(options.hot_ring_bytes),
        window(options.dedupe_window.count(), options.dedupe_max_ids) {}

  void Start() {
    writer = std::thread([this] { Run(); });
  }
  void Run();
  // Takes the next unit of work: consecutive appends up to the group cap, or
  // one delete. Returns false when closing and nothing is left.
  bool TakeWork(std::vector<Request>* work, std::chrono::steady_clock::time_point wake_at);
  void CommitGroup(std::vector<Request>& group);
  Status CommitRecords(const std::vector<AppendRecord>& records);
  void DeleteSession(Request& request);
  // Returns true when more retention work is due right away.
  bool RetentionStep();
  void Wake();

  std::unique_ptr<LogStore> store;
  const BusOptions options;
  HotRing ring;
  HiddenSessions hidden;
  IdempotencyWindow window;  // writer thread only
  std::atomic<int64_t> head{0};
  int64_t last_ingested_ms = 0;  // writer thread only; keeps ingested_at monotonic

  std::mutex mu;  // guards queue, queued_events, closing
  std::condition_variable cv;
  std::deque<Request> queue;
  size_t queued_events = 0;
  bool closing = false;

  std::mutex wake_mu;  // guards wakeups
  std::vector<std::pair<int, std::function<void()>>> wakeups;
  int next_wakeup_id = 1;

  std::thread writer;
  std::once_flag close_once;
};

bool Bus::Impl::TakeWork(std::vector<Request>* work,
                         std::chrono::steady_clock::time_point wake_at) {
  std::unique_lock lock(mu);
  cv.wait_until(lock, wake_at, [&] { return !queue.empty() || closing; });
  if (queue.empty()) return !closing;
  if (queue.front().kind == Request::Kind::kDeleteSession) {
    work->push_back(std::move(queue.front()));
    queue.pop_front();
    return true;
  }
  size_t events = 0;
  while (!queue.empty() && queue.front().kind == Request::Kind::kAppend) {
    size_t n = queue.front().events.size();
    if (!work->empty() && events + n > options.max_group_events) break;
    events += n;
    queued_events -= n;
    work->push_back(std::move(queue.front()));
    queue.pop_front();
  }
  return true;
}

void Bus::Impl::Run() {
  using Clock = std::chrono::steady_clock;
  const bool retention = HasRetentionPolicy(options.retention);
  auto next_retention = Clock::now() + options.retention_interval;
  bool unflushed = false;  // appended since the last idle Flush()
  for (;;) {
    std::vector<Request> work;
    auto wake_at = retention ? next_retention : Clock::now() + std::chrono::hours(24);
    if (unflushed) wake_at = std::min(wake_at, Clock::now() + kIdleFlushDelay);
    if (!TakeWork(&work, wake_at)) break;
    if (!work.empty()) {
      if (work.front().kind == Request::Kind::kDeleteSession) {
        DeleteSession(work.front());
      } else {
        CommitGroup(work);
        unflushed = true;
      }
    } else if (unflushed) {
      // A failure is retried at the next idle wake-up; nothing is lost meanwhile.
      unflushed = !store->Flush().ok();
    }
    if (retention && Clock::now() >= next_retention) {
      bool more = RetentionStep();
      next_retention = more ? Clock::now() : Clock::now() + options.retention_interval;
    }
  }
  Wake();  // lets waiters notice the close
}

Status Bus::Impl::CommitRecords(const std::vector<AppendRecord>& records) {
  Status st;
  for (int attempt = 0; attempt <= kBusyRetries; ++attempt) {
    st = store->Append(records);
    if (st.code() != StatusCode::kBusy) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10 << attempt));
  }
  return st;
}

void Bus::Impl::CommitGroup(std::vector<Request>& group) {
  const int64_t now = std::max(NowMillis(), last_ingested_ms);
  last_ingested_ms = now;
  window.Expire(now);

  int64_t next = store->head() + 1;
  std::vector<EventPtr> fresh;
  std::vector<AppendRecord> records;
  std::vector<std::vector<int64_t>> offsets(group.size());
  // Ids first seen in this group; views into the CommittedEvents in `fresh`.
  std::unordered_map<std::string_view, int64_t> in_group;

  for (size_t r = 0; r < group.size(); ++r) {
    offsets[r].reserve(group[r].events.size());
    for (Event& e : group[r].events) {
      // Only producer-supplied ids can be retried; generated ones are unique.
      std::optional<int64_t> seen;
      if (!e.header.event_id_generated) seen = window.Find(e.header.event_id);
      if (!seen && !e.header.event_id_generated) {
        auto it = in_group.find(e.header.event_id);
        if (it != in_group.end()) seen = it->second;
      }
      if (seen) {
        offsets[r].push_back(*seen);
        continue;
      }
      auto ce = std::make_shared<CommittedEvent>();
      ce->offset = next++;
      ce->ingested_at_ms = now;
      ce->json = EncodeCommittedJson(e.body, ce->offset, now);
      ce->header = std::move(e.header);
      if (!ce->header.event_id_generated) in_group.emplace(ce->header.event_id, ce->offset);
      records.push_back({ce->offset, now, &ce->header, ce->json});
      offsets[r].push_back(ce->offset);
      fresh.push_back(std::move(ce));
    }
  }

  Status st = records.empty() ? Status::Ok() : CommitRecords(records);
  if (st.ok() && !fresh.empty()) {
    ring.Push(fresh);
    head.store(fresh.back()->offset, std::memory_order_release);
    for (const EventPtr& e : fresh) {
      if (!e->header.event_id_generated) window.Insert(e->header.event_id, e->offset, now);
    }
    Wake();
  }
  for (size_t r = 0; r < group.size(); ++r) {
    if (!group[r].done) continue;
    if (st.ok()) {
      group[r].done(std::move(offsets[r]));
    } else {
      group[r].done(st);
    }
  }
}

void Bus::Impl::DeleteSession(Request& request) {
  Status st = store->DeleteSession(request.session_id, request.hard);
  if (st.ok()) hidden.Hide(request.session_id, head.load(std::memory_order_acquire));
  if (request.delete_done) request.delete_done(st);
}

bool Bus::Impl::RetentionStep() {
  Result<int64_t> deleted =
      store->RunRetentionStep(options.retention, NowMillis(), options.retention_step_rows);
  // A failed step is retried at the next interval; appends are unaffected.
  return deleted.ok() && *deleted >= static_cast<int64_t>(options.retention_step_rows);
}

void Bus::Impl::Wake() {
  std::lock_guard lock(wake_mu);
  for (auto& [id, fn] : wakeups) fn();
}

Bus::Bus(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Bus::~Bus() { Close(); }

Result<std::unique_ptr<Bus>> Bus::Open(std::unique_ptr<LogStore> store, BusOptions options) {
  if (!store) return Status::InvalidArgument("Bus::Open: no store");
  auto impl = std::make_unique<Impl>(std::move(store), std::move(options));
  const int64_t now = NowMillis();
  if (impl->options.dedupe_max_ids > 0) {
    auto recent = impl->store->RecentEventIds(now - impl->options.dedupe_window.count(),
                                              impl->options.dedupe_max_ids);
    if (!recent.ok()) return recent.status();
    // Seeded ids age from now: the window is at least as long as promised.
    for (const auto& [id, offset] : *recent) impl->window.Insert(id, offset, now);
  }
  impl->head.store(impl->store->head(), std::memory_order_release);
  impl->Start();
  return std::unique_ptr<Bus>(new Bus(std::move(impl)));
}

void Bus::AppendAsync(std::vector<Event> events, AppendCallback done) {
  std::vector<PendingAppend> one;
  one.push_back(PendingAppend{std::move(events), std::move(done)});
  AppendAsyncMany(std::move(one));
}

void Bus::AppendAsyncMany(std::vector<PendingAppend> appends) {
  // Completions run outside the lock (they may append again).
  std::vector<std::pair<AppendCallback, AppendResult>> answered;
  bool queued = false;
  {
    std::lock_guard lock(impl_->mu);
    for (PendingAppend& a : appends) {
      if (a.events.empty()) {
        answered.emplace_back(std::move(a.done), std::vector<int64_t>{});
      } else if (impl_->closing) {
        answered.emplace_back(std::move(a.done), Status::Unavailable("the bus is closed"));
      } else if (impl_->queued_events + a.events.size() > impl_->options.max_queued_events) {
        answered.emplace_back(
            std::move(a.done),
            Status::ResourceExhausted("append queue is full (" +
                                      std::to_string(impl_->queued_events) + " events waiting)"));
      } else {
        impl_->queued_events += a.events.size();
        Request r;
        r.events = std::move(a.events);
        r.done = std::move(a.done);
        impl_->queue.push_back(std::move(r));
        queued = true;
      }
    }
  }
  if (queued) impl_->cv.notify_one();
  for (auto& [done, result] : answered) {
    if (done) done(std::move(result));
  }
}

AppendResult Bus::Append(std::vector<Event> events) {
  std::promise<AppendResult> promise;
  auto future = promise.get_future();
  AppendAsync(std::move(events), [&promise](AppendResult r) { promise.set_value(std::move(r)); });
  return future.get();
}

Status Bus::DeleteSession(std::string_view session_id, bool hard) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->closing) return Status::Unavailable("the bus is closed");
    Request r;
    r.kind = Request::Kind::kDeleteSession;
    r.session_id = std::string(session_id);
    r.hard = hard;
    r.delete_done = [&promise](Status st) { promise.set_value(std::move(st)); };
    impl_->queue.push_back(std::move(r));
  }
  impl_->cv.notify_one();
  return future.get();
}

std::unique_ptr<Cursor> Bus::Subscribe(int64_t after, Filter filter) const {
  return std::unique_ptr<Cursor>(new Cursor(this, std::max<int64_t>(after, 0), std::move(filter)));
}

std::unique_ptr<LogReader> Bus::NewReader() const { return impl_->store->NewReader(); }

int Bus::AddWakeup(std::function<void()> fn) {
  std::lock_guard lock(impl_->wake_mu);
  int id = impl_->next_wakeup_id++;
  impl_->wakeups.emplace_back(id, std::move(fn));
  return id;
}

void Bus::RemoveWakeup(int id) {
  std::lock_guard lock(impl_->wake_mu);
  std::erase_if(impl_->wakeups, [id](const auto& w) { return w.first == id; });
}

int64_t Bus::head() const { return impl_->head.load(std::memory_order_acquire); }
int64_t Bus::earliest() const { return impl_->store->earliest(); }
const std::string& Bus::epoch() const { return impl_->store->epoch(); }

void Bus::Close() {
  std::call_once(impl_->close_once, [this] {
    {
      std::lock_guard lock(impl_->mu);
      impl_->closing = true;
    }
    impl_->cv.notify_one();
    if (impl_->writer.joinable()) impl_->writer.join();
  });
}

bool Cursor::HasPending() const { return position_ < bus_->head(); }

Result<PollResult> Cursor::Poll(LogReader& reader, size_t max_events, size_t max_bytes,
                                ReadDetail detail) {
  const Bus::Impl& bus = *bus_->impl_;
  PollResult result;
  const int64_t head = bus.head.load(std::memory_order_acquire);
  const int64_t earliest = bus.store->earliest();
  if (position_ + 1 < earliest) {
    return Status::Evicted("offset " + std::to_string(position_ + 1) +
                           " was evicted; the earliest retained offset is " +
                           std::to_string(earliest));
  }
  if (max_events == 0 || position_ >= head) {
    result.caught_up = position_ >= head;
    return result;
  }
  RingQuery query{position_, max_events, max_bytes, kRingMaxExamined};
  RingAnswer ring = bus.ring.Collect(query, filter_, bus.hidden, &result.events);
  if (ring.covered) {
    position_ = ring.next_after;
  } else {
    Result<ReadPage> page = reader.Read(position_, filter_, max_events, kStorageMaxScan, detail);
    if (!page.ok()) return page.status();
    int64_t next = page->next_after;
    size_t keep = 0, bytes = 0;
    for (; keep < page->events.size(); ++keep) {
      bytes += page->events[keep]->json.size();
      if (keep > 0 && bytes > max_bytes) {
        next = page->events[keep - 1]->offset;
        break;
      }
    }
    page->events.resize(keep);
    result.events = std::move(page->events);
    position_ = std::max(position_, next);
  }
  result.caught_up = position_ >= head;
  return result;
}

}  // namespace tailbus
