// Dispatcher: wakes idle subscribers when events they may want are committed.
//
// A subscriber that has data pending drives itself (each WRITEABLE asks for
// the next one while its cursor is behind the head). One that caught up waits
// to be woken. The dispatcher owns a match-all cursor and, on every wake of
// the network thread, polls the newly committed events once for everybody:
// per event it wakes the subscribers indexed under that event's session, and
// the all-session subscribers whose filter matches. Cost per commit is
// O(events x interested subscribers), never O(connections).
//
// No wake-up is lost: a subscriber goes idle only when a poll of its cursor
// reached the head H. Every event after H is committed later, so the
// dispatcher (which examines every committed event in order) sees it after
// the subscriber went idle, and wakes it.
#include <algorithm>
#include <unordered_set>

#include "ws/server_internal.h"

namespace tailbus::ws {

Dispatcher::Dispatcher(const Bus& bus) : bus_(bus), cursor_(bus.Subscribe(bus.head(), Filter())) {}

void Dispatcher::Add(Conn* conn) {
  const std::vector<std::string>& sessions = conn->sub->index_sessions;
  if (sessions.empty()) {
    all_sessions_.push_back(conn);
  } else {
    for (const std::string& id : sessions) by_session_[id].push_back(conn);
  }
  ++count_;
}

void Dispatcher::Remove(Conn* conn) {
  const std::vector<std::string>& sessions = conn->sub->index_sessions;
  auto erase = [conn](std::vector<Conn*>& list) {
    auto it = std::find(list.begin(), list.end(), conn);
    if (it == list.end()) return false;
    *it = list.back();  // order does not matter
    list.pop_back();
    return true;
  };
  bool removed = false;
  if (sessions.empty()) {
    removed = erase(all_sessions_);
  } else {
    for (const std::string& id : sessions) {
      auto it = by_session_.find(id);
      if (it == by_session_.end()) continue;
      removed = erase(it->second) || removed;
      if (it->second.empty()) by_session_.erase(it);
    }
  }
  if (removed) --count_;
}

bool Dispatcher::Run(LogReader& reader, size_t max_events, const std::function<void(Conn*)>& wake) {
  if (count_ == 0) {
    cursor_->Reset(bus_.head());  // nobody to wake: skip what was committed
    return false;
  }
  if (!cursor_->HasPending()) return false;
  Result<PollResult> polled = cursor_->Poll(reader, max_events, SIZE_MAX);
  if (!polled.ok()) {
    // Fell behind retention (or storage failed): wake everybody once and
    // start again from the head; each subscriber's own poll finds its events.
    cursor_->Reset(bus_.head());
    for (Conn* conn : all_sessions_) wake(conn);
    for (auto& [id, list] : by_session_) {
      for (Conn* conn : list) wake(conn);
    }
    return false;
  }
  std::unordered_set<std::string_view> sessions;
  for (const EventPtr& e : polled->events) {
    if (!by_session_.empty() && by_session_.count(e->header.session_id) != 0) {
      sessions.insert(e->header.session_id);
    }
    for (Conn* conn : all_sessions_) {
      if (conn->writable_requested || !conn->sub) continue;  // already awake
      if (conn->sub->cursor->filter().Matches(e->fields())) wake(conn);
    }
  }
  for (std::string_view id : sessions) {
    auto it = by_session_.find(std::string(id));
    if (it == by_session_.end()) continue;
    for (Conn* conn : it->second) {
      if (!conn->writable_requested) wake(conn);
    }
  }
  return !polled->caught_up;
}

}  // namespace tailbus::ws
