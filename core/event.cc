#include "core/event.h"

#include <ostream>

#include "core/time_format.h"

namespace tailbus {

std::ostream& operator<<(std::ostream& os, const JsonText& t) { return os << t.view(); }

size_t CommittedEvent::ApproximateBytes() const {
  const EventHeader& h = header;
  return sizeof(CommittedEvent) + json.OwnedBytes() + h.session_id.capacity() +
         h.event_type.capacity() + h.event_id.capacity() + h.agent_id.capacity() +
         h.tool_name.capacity() + h.status.capacity() + h.model.capacity() +
         h.feature_id.capacity() + h.parent_event_id.capacity() + 32 /* control block */;
}

std::string EncodeCommittedJson(std::string_view body, int64_t offset, int64_t ingested_at_ms) {
  // body is a JSON object "{...}"; splice our two members in front of its members.
  std::string out;
  out.reserve(body.size() + 64);
  out += "{\"offset\":";
  out += std::to_string(offset);
  out += ",\"ingested_at\":\"";
  AppendRfc3339Millis(&out, ingested_at_ms);
  out += '"';
  std::string_view members = body.substr(1);  // drops '{', keeps the closing '}'
  if (members.size() > 1) out += ',';
  out += members;
  return out;
}

}  // namespace tailbus
