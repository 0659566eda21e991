#include "ws/frames.h"

#include <fmt/format.h>

#include "core/time_format.h"

namespace tailbus::ws {
namespace {

void AppendInt(std::string* out, int64_t value) {
  fmt::format_to(std::back_inserter(*out), "{}", value);
}

void AppendDetails(std::string* out, std::span<const FieldError> details) {
  *out += "[";
  bool first = true;
  for (const FieldError& e : details) {
    if (!first) *out += ',';
    first = false;
    *out += "{\"index\":";
    if (e.index) {
      AppendInt(out, static_cast<int64_t>(*e.index));
    } else {
      *out += "null";
    }
    *out += ",\"field\":";
    AppendJsonString(out, e.field);
    *out += ",\"reason\":";
    AppendJsonString(out, e.reason);
    *out += '}';
  }
  *out += "]";
}

// Skips a JSON string starting at json[i] == '"'; returns the index after it.
size_t SkipString(std::string_view json, size_t i) {
  for (++i; i < json.size(); ++i) {
    if (json[i] == '\\') {
      ++i;
    } else if (json[i] == '"') {
      return i + 1;
    }
  }
  return json.size();
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (unsigned char c : value) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (c < 0x20) {
          *out += "\\u00";
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

bool HasTopLevelMember(std::string_view json, std::string_view name) {
  // Walks the top-level object: at depth 1, a string followed by ':' is a key.
  int depth = 0;
  size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    if (c == '"') {
      const size_t end = SkipString(json, i);
      if (depth == 1) {
        size_t j = end;
        while (j < json.size() &&
               (json[j] == ' ' || json[j] == '\n' || json[j] == '\r' || json[j] == '\t')) {
          ++j;
        }
        if (j < json.size() && json[j] == ':' && end - i - 2 == name.size() &&
            json.compare(i + 1, name.size(), name) == 0) {
          return true;
        }
      }
      i = end;
      continue;
    }
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    ++i;
  }
  return false;
}

void AppendBatchFrame(std::string* out, std::span<const EventPtr> events, int64_t now_ms) {
  size_t bytes = 128;
  for (const EventPtr& e : events) bytes += e->json.size() + 1;
  out->reserve(out->size() + bytes);
  *out += "{\"type\":\"batch\",\"count\":";
  AppendInt(out, static_cast<int64_t>(events.size()));
  *out += ",\"timestamp\":\"";
  AppendRfc3339Millis(out, now_ms);
  *out += "\",\"first_offset\":";
  AppendInt(out, events.empty() ? 0 : events.front()->offset);
  *out += ",\"last_offset\":";
  AppendInt(out, events.empty() ? 0 : events.back()->offset);
  *out += ",\"events\":[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) *out += ',';
    *out += events[i]->json;
  }
  *out += "]}";
}

void AppendEventFrame(std::string* out, const CommittedEvent& event) {
  std::string_view json = event.json;
  if (HasTopLevelMember(json, "type")) {
    *out += json;
    return;
  }
  out->reserve(out->size() + json.size() + 16);
  *out += "{\"type\":\"event\"";
  std::string_view members = json.substr(1);  // keeps the closing '}'
  if (members.size() > 1) *out += ',';
  *out += members;
}

std::string HelloFrame(const HelloInfo& info) {
  std::string out = "{\"type\":\"hello\",\"epoch\":";
  AppendJsonString(&out, info.epoch);
  out += ",\"head\":";
  AppendInt(&out, info.head);
  out += ",\"earliest\":";
  AppendInt(&out, info.earliest);
  out += ",\"session_id\":";
  if (info.session_id) {
    AppendJsonString(&out, *info.session_id);
  } else {
    out += "null";
  }
  out += ",\"filter\":";
  out += info.filter_json.empty() ? std::string_view("{}") : info.filter_json;
  out += ",\"after\":";
  if (info.after) {
    AppendInt(&out, *info.after);
  } else {
    out += "null";
  }
  out += ",\"batch_size\":";
  AppendInt(&out, static_cast<int64_t>(info.batch_size));
  out += ",\"batch_window_ms\":";
  AppendInt(&out, info.batch_window_ms);
  out += ",\"server\":\"tailbus/" TAILBUS_VERSION "\"}";
  return out;
}

std::string CaughtUpFrame(int64_t offset) {
  return fmt::format("{{\"type\":\"caught_up\",\"offset\":{}}}", offset);
}

std::string ResetFrame(std::string_view reason, std::string_view epoch, int64_t earliest) {
  std::string out = "{\"type\":\"reset\",\"reason\":";
  AppendJsonString(&out, reason);
  out += ",\"epoch\":";
  AppendJsonString(&out, epoch);
  out += ",\"earliest\":";
  AppendInt(&out, earliest);
  out += '}';
  return out;
}

std::string ConnectedFrame(std::string_view receipt_id) {
  std::string out = "{\"type\":\"connected\",\"receipt_id\":";
  AppendJsonString(&out, receipt_id);
  out += ",\"session_id\":";
  AppendJsonString(&out, receipt_id);
  out += ",\"status\":\"connected\"}";
  return out;
}

std::string PongFrame() { return "{\"type\":\"pong\"}"; }

std::string AckFrame(std::string_view request_id_json, std::span<const int64_t> offsets) {
  std::string out = "{\"type\":\"ack\",\"request_id\":";
  out += request_id_json.empty() ? std::string_view("null") : request_id_json;
  out += ",\"offsets\":[";
  for (size_t i = 0; i < offsets.size(); ++i) {
    if (i > 0) out += ',';
    AppendInt(&out, offsets[i]);
  }
  out += "]}";
  return out;
}

std::string ErrorFrame(std::string_view code, std::string_view message,
                       std::string_view request_id_json, std::span<const FieldError> details) {
  std::string out = "{\"type\":\"error\",\"code\":";
  AppendJsonString(&out, code);
  out += ",\"error\":";
  AppendJsonString(&out, message);
  if (!request_id_json.empty()) {
    out += ",\"request_id\":";
    out += request_id_json;
  }
  if (!details.empty()) {
    out += ",\"details\":";
    AppendDetails(&out, details);
  }
  out += '}';
  return out;
}

std::string HttpErrorBody(std::string_view code, std::string_view message,
                          std::span<const FieldError> details, std::string_view extra_members) {
  std::string out = "{\"error\":";
  AppendJsonString(&out, message);
  out += ",\"code\":";
  AppendJsonString(&out, code);
  out += ",\"details\":";
  AppendDetails(&out, details);
  if (!extra_members.empty()) {
    out += ',';
    out += extra_members;
  }
  out += "}\n";
  return out;
}

void AppendSseEvent(std::string* out, const CommittedEvent& event) {
  *out += "id: ";
  AppendInt(out, event.offset);
  *out += "\ndata: ";
  *out += event.json;  // JSON text never contains a raw newline (they are escaped)
  *out += "\n\n";
}

std::string SseRecord(std::string_view event_name, std::string_view data_json) {
  std::string out = "event: ";
  out += event_name;
  out += "\ndata: ";
  out += data_json;
  out += "\n\n";
  return out;
}

}  // namespace tailbus::ws
