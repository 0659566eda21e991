#include "storage/event_page.h"

#include <algorithm>
#include <cstring>

// Invariants:
// - Text chunks and event arrays never move or shrink while the block lives,
//   so events and the JSON they borrow stay put.
// - Every EventPtr handed out by Finish() owns a share of block_.

namespace tailbus::sqlite {

namespace {

// Text chunk sizes: small first (a sparse filter's page holds a few events),
// then doubling up to a size that stays below malloc's mmap threshold (128 KiB).
constexpr size_t kFirstTextBytes = 4 * 1024;
constexpr size_t kMaxTextBytes = 64 * 1024;
// Events per array: the expected count, within these bounds (a page of 1,000
// events takes 4 arrays; a sparse page wastes at most 15 unused slots).
constexpr size_t kMinEventsPerArray = 16;
constexpr size_t kMaxEventsPerArray = 256;

}  // namespace

EventPageBuilder::EventPageBuilder(size_t expected_events)
    : block_(std::make_shared<Block>()),
      events_per_array_(std::clamp(expected_events, kMinEventsPerArray, kMaxEventsPerArray)),
      next_text_bytes_(expected_events >= 64 ? kMaxTextBytes : kFirstTextBytes) {}

char* EventPageBuilder::ReserveText(size_t n) {
  if (n > free_text_bytes_) {
    const size_t size = std::max(n, next_text_bytes_);
    next_text_bytes_ = std::min(next_text_bytes_ * 2, kMaxTextBytes);
    // Uninitialised: every byte handed out is written before it is read.
    block_->text.push_back(std::make_unique_for_overwrite<char[]>(size));
    free_text_ = block_->text.back().get();
    free_text_bytes_ = size;
  }
  char* p = free_text_;
  free_text_ += n;
  free_text_bytes_ -= n;
  return p;
}

CommittedEvent& EventPageBuilder::Add(std::string_view json) {
  char* p = ReserveText(json.size());
  if (!json.empty()) std::memcpy(p, json.data(), json.size());
  const size_t slot = size_ % events_per_array_;
  if (slot == 0) block_->events.push_back(std::make_unique<CommittedEvent[]>(events_per_array_));
  CommittedEvent& ev = block_->events.back()[slot];
  ++size_;
  ev.json.Borrow(std::string_view(p, json.size()));
  return ev;
}

void EventPageBuilder::Finish(std::vector<EventPtr>& out) {
  out.reserve(out.size() + size_);
  for (size_t i = 0; i < size_; ++i) {
    out.emplace_back(block_, &block_->events[i / events_per_array_][i % events_per_array_]);
  }
  block_.reset();
}

}  // namespace tailbus::sqlite
