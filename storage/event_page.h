// Private to storage/: builds the events of one read page in one shared block.
//
// Why: building each event on its own cost three heap allocations per event
// (make_shared, the JSON, the event id) and, freed a page at a time, most of
// the read path's malloc/free work. Here the CommittedEvents live in a few
// arrays and their JSON bytes in a few large chunks, all owned by one block;
// every EventPtr handed out shares ownership of that block (aliasing
// shared_ptr), so an event stays valid exactly as long as before.
// Cost: the block (at most one page of events) is freed when the LAST of its
// events is released.
//
// Threading: a builder is used by one thread; the events it hands out are
// immutable and may be shared across threads like any EventPtr.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "core/event.h"

namespace tailbus::sqlite {

class EventPageBuilder {
 public:
  // `expected_events`: how many events the page will likely hold (sizes the
  // block's arrays; any number may be added).
  explicit EventPageBuilder(size_t expected_events);
  EventPageBuilder(const EventPageBuilder&) = delete;
  EventPageBuilder& operator=(const EventPageBuilder&) = delete;

  // Appends a new event whose json is a copy of `json` (borrowed from the
  // block); the caller fills in the other fields. The reference is valid while
  // the block lives (events never move).
  CommittedEvent& Add(std::string_view json);

  size_t size() const { return size_; }

  // Appends the events, in Add() order, to `out`. The builder is spent.
  void Finish(std::vector<EventPtr>& out);

 private:
  struct Block {
    std::vector<std::unique_ptr<char[]>> text;              // JSON bytes
    std::vector<std::unique_ptr<CommittedEvent[]>> events;  // arrays of events_per_array_
  };
  // Room for `n` more bytes of JSON; returns where they go.
  char* ReserveText(size_t n);

  std::shared_ptr<Block> block_;
  size_t size_ = 0;  // events added
  size_t events_per_array_;
  char* free_text_ = nullptr;  // unused tail of the newest text chunk
  size_t free_text_bytes_ = 0;
  size_t next_text_bytes_;
};

}  // namespace tailbus::sqlite
