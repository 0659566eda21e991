// The event model: what a producer's event becomes once validated, and what a
// committed event looks like to everyone downstream of the log.
//
// Flow: producer JSON --DecodeEvents()--> Event (validated, normalised body)
//       --bus writer assigns offset--> CommittedEvent (final JSON, encoded once)
// A CommittedEvent is immutable and shared (EventPtr) by the hot ring, every
// subscriber that delivers it, and storage reads; copying it is never needed.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tailbus {

// Non-owning view of the fields a Filter matches on. Valid only while the
// event it was taken from is alive. Absent numeric fields are std::nullopt.
struct EventFields {
  std::string_view session_id;
  std::string_view event_type;
  std::string_view agent_id;
  std::string_view tool_name;
  std::string_view status;
  std::string_view model;
  std::string_view feature_id;
  std::optional<int64_t> cost_tokens;
  std::optional<double> duration_ms;
};

// The normalised, indexed fields of an event. Optional string fields are empty
// when the producer did not give them.
struct EventHeader {
  std::string session_id;  // required, 1..128 printable bytes
  std::string event_type;  // required, 1..64 bytes of [A-Za-z0-9_.:-]
  std::string event_id;    // given by the producer, or generated (time-ordered)
  // True when tailbus generated event_id. Such an id is unique by construction
  // and no producer can retry it, so idempotency checks skip it.
  bool event_id_generated = false;
  int64_t timestamp_ms = 0;  // producer's time, or ingest time; epoch milliseconds UTC
  std::string agent_id;
  std::string tool_name;
  std::string status;
  std::string model;
  std::string feature_id;
  std::string parent_event_id;
  std::optional<int64_t> cost_tokens;  // >= 0; derived from total_tokens / prompt+completion
  std::optional<double> duration_ms;   // >= 0; derived from execution_duration_seconds

  EventFields fields() const {
    return {session_id, event_type, agent_id,    tool_name,  status,
            model,      feature_id, cost_tokens, duration_ms};
  }
};

// A validated event waiting to be appended.
struct Event {
  EventHeader header;
  // Canonical JSON object text of the event WITHOUT `offset` and `ingested_at`
  // (the bus adds those at commit). Starts with '{' and ends with '}'.
  std::string body;
};

// The delivered JSON text of a committed event: read like a std::string_view.
// It either owns its bytes (events the bus commits) or borrows bytes that live
// exactly as long as the CommittedEvent holding it (events read from storage
// share one block per read page; see storage/event_page.h). Copying always
// makes an owning copy, so a copy never depends on the original's block.
class JsonText {
 public:
  JsonText() = default;
  JsonText(const JsonText& other) : owned_(other.view()) {}
  JsonText& operator=(const JsonText& other) {
    if (this != &other) *this = std::string(other.view());
    return *this;
  }
  // Moving keeps a borrowed text borrowed. Only storage can move one: others
  // reach borrowed texts through const EventPtrs, and their copies own.
  JsonText(JsonText&& other) noexcept = default;
  JsonText& operator=(JsonText&& other) noexcept = default;
  JsonText& operator=(std::string text) {
    owned_ = std::move(text);
    borrowed_ = nullptr;
    borrowed_size_ = 0;
    return *this;
  }

  // Makes this text view `bytes` without copying. The caller guarantees they
  // outlive this text (and every move of it).
  void Borrow(std::string_view bytes) {
    owned_.clear();
    borrowed_ = bytes.data() != nullptr ? bytes.data() : "";
    borrowed_size_ = bytes.size();
  }

  std::string_view view() const {
    return borrowed_ != nullptr ? std::string_view(borrowed_, borrowed_size_)
                                : std::string_view(owned_);
  }
  operator std::string_view() const { return view(); }  // NOLINT: reads as text
  const char* data() const { return view().data(); }
  size_t size() const { return view().size(); }
  bool empty() const { return size() == 0; }
  bool starts_with(std::string_view prefix) const { return view().starts_with(prefix); }
  size_t find(std::string_view what, size_t pos = 0) const { return view().find(what, pos); }
  std::string_view substr(size_t pos, size_t n = std::string_view::npos) const {
    return view().substr(pos, n);
  }
  // Heap bytes this text owns (0 when borrowed), for memory budgets.
  size_t OwnedBytes() const { return borrowed_ != nullptr ? 0 : owned_.capacity(); }

  friend bool operator==(const JsonText& a, const JsonText& b) { return a.view() == b.view(); }
  friend bool operator==(const JsonText& a, std::string_view b) { return a.view() == b; }
  friend std::ostream& operator<<(std::ostream& os, const JsonText& t);  // for test output

 private:
  std::string owned_;
  const char* borrowed_ = nullptr;  // non-null: the text is borrowed_[0, borrowed_size_)
  size_t borrowed_size_ = 0;
};

// An event the log has committed. Immutable once built.
struct CommittedEvent {
  int64_t offset = 0;          // global, gap-free, starts at 1
  int64_t ingested_at_ms = 0;  // when the bus accepted it, epoch milliseconds UTC
  EventHeader header;
  // The delivered JSON object: `{"offset":N,"ingested_at":"…",<body members>}`.
  JsonText json;

  EventFields fields() const { return header.fields(); }
  // Approximate heap footprint, for the hot ring's byte budget.
  size_t ApproximateBytes() const;
};

using EventPtr = std::shared_ptr<const CommittedEvent>;

// Builds the delivered JSON text from a normalised body (see Event::body).
std::string EncodeCommittedJson(std::string_view body, int64_t offset, int64_t ingested_at_ms);

}  // namespace tailbus
