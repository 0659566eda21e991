// Invariants: every kError result carries a wire code and a message naming
// the member (or the byte offset) at fault; kPublish/kChatMessage carry valid
// JSON text (an object, or an array of at most max_events_per_publish values)
// whose nesting is at most kMaxMessageDepth. Parsing is iterative and the
// depth is checked before serialising, so no input recurses deeply.
#include "ws/client_message.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <vector>

#include "core/json_parse.h"
#include "core/json_scan.h"
#include "ws/wire.h"

namespace tailbus::ws {
namespace {

using rapidjson::Document;
using rapidjson::Value;

std::string Serialize(const Value& value) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  value.Accept(writer);
  return std::string(buf.GetString(), buf.GetSize());
}

// At most `max` bytes of `s`, cut at a UTF-8 character boundary: error frames
// are text frames, which must be valid UTF-8.
std::string_view Utf8Prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut);
}

ClientMessage Error(std::string_view code, std::string message, std::string rid = {}) {
  ClientMessage m;
  m.kind = ClientMessage::Kind::kError;
  m.error_code = code;
  m.error_message = std::move(message);
  m.request_id_json = std::move(rid);
  return m;
}

ClientMessage Publish(const Document& doc, std::string rid, size_t max_events) {
  const Value* events = nullptr;
  if (auto it = doc.FindMember("events"); it != doc.MemberEnd()) events = &it->value;
  if (auto it = doc.FindMember("event"); events == nullptr && it != doc.MemberEnd()) {
    events = &it->value;
  }
  if (events == nullptr || !(events->IsObject() || events->IsArray())) {
    return Error(wire::kBadMessage, "publish needs \"event\" (an object) or \"events\" (an array)",
                 std::move(rid));
  }
  if (events->IsArray() && events->Size() > max_events) {
    return Error(
        wire::kTooManyEvents,
        fmt::format("a publish of {} events exceeds the limit of {}", events->Size(), max_events),
        std::move(rid));
  }
  ClientMessage m;
  m.kind = ClientMessage::Kind::kPublish;
  m.request_id_json = std::move(rid);
  m.events_json = Serialize(*events);
  return m;
}

ClientMessage Chat(Document& doc, std::string rid, const std::optional<std::string>& bound) {
  if (!doc.HasMember("session_id") && bound) {
    Value id(bound->c_str(), static_cast<rapidjson::SizeType>(bound->size()), doc.GetAllocator());
    doc.AddMember("session_id", id, doc.GetAllocator());
  }
  doc.RemoveMember("request_id");
  ClientMessage m;
  m.kind = ClientMessage::Kind::kChatMessage;  // "type":"message" becomes the event type
  m.request_id_json = std::move(rid);
  m.events_json = Serialize(doc);
  return m;
}

ClientMessage Subscribe(const Document& doc, std::string rid) {
  ClientMessage m;
  m.kind = ClientMessage::Kind::kSubscribe;
  SpecInput& in = m.subscribe;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string_view name(it->name.GetString(), it->name.GetStringLength());
    const Value& v = it->value;
    auto bad = [&](std::string_view what) {
      return Error(wire::kBadMessage, fmt::format("subscribe.{}: {}", name, what), std::move(rid));
    };
    if (name == "type" || name == "request_id") {
      continue;
    } else if (name == "filter") {
      if (v.IsObject()) {
        in.filter_json = Serialize(v);
      } else if (v.IsString()) {
        in.filter_json = std::string(v.GetString(), v.GetStringLength());
      } else if (!v.IsNull()) {
        return bad("must be an object");
      }
    } else if (name == "session_id") {
      if (v.IsString()) {
        in.session_id = std::string(v.GetString(), v.GetStringLength());
      } else if (!v.IsNull()) {
        return bad("must be a string");
      }
    } else if (name == "after") {
      if (v.IsInt64() && v.GetInt64() >= 0) {
        in.after = v.GetInt64();
      } else if (!v.IsNull()) {
        return bad("must be an integer >= 0");
      }
    } else if (name == "epoch") {
      if (v.IsString()) {
        in.epoch = std::string(v.GetString(), v.GetStringLength());
      } else if (!v.IsNull()) {
        return bad("must be a string");
      }
    } else if (name == "batch_size") {
      if (!v.IsInt64()) return bad("must be an integer");
      in.batch_size = v.GetInt64();
    } else if (name == "batch_window_ms" || name == "poll_interval") {
      if (!v.IsInt64()) return bad("must be an integer");
      if (in.batch_window_ms) return bad("give batch_window_ms or poll_interval, not both");
      in.batch_window_ms = v.GetInt64();
    } else if (name == "strict") {
      if (!v.IsBool()) return bad("must be true or false");
      in.strict = v.GetBool();
    } else {
      return bad("unknown key");
    }
  }
  m.request_id_json = std::move(rid);
  return m;
}

}  // namespace

namespace client_message_internal {

// The publish fast path: a frame {"type":"publish",…,"events":[…]} read by core/json_scan.h
// in one pass, without a DOM, its events handed on as their raw text (the event decoder reads
// them anyway). Returns nullopt for anything else and whenever the scanner gives up (errors
// included); ParseClientMessage's DOM path then gives the answer. Where it returns a message,
// the DOM path would return the same one, but for events_json being the input's own text of
// the same JSON value instead of its re-serialisation (events_in_text, a view into `text`):
// DecodeEvents reads both alike.
std::optional<ClientMessage> ScanPublish(std::string_view text, size_t max_events) {
  json_scan::Scanner s(text, kMaxMessageDepth);
  if (!s.Consume('{')) return std::nullopt;
  std::string rid;
  std::string_view type;
  std::string_view events;  // raw text of "events", else of "event"
  bool events_is_array = false;
  bool have_events = false;
  size_t count = 0;  // elements of "events"
  std::vector<std::string_view>& keys = s.keys();
  if (!s.Consume('}')) {
    for (;;) {
      s.SkipSpace();
      std::string_view key;
      bool escaped;
      if (!s.ReadString(&key, &escaped) || escaped || !s.Consume(':')) return std::nullopt;
      keys.push_back(key);
      s.SkipSpace();
      const size_t begin = s.pos();
      if (key == "type") {
        bool type_escaped;
        if (s.Peek() != '"' || !s.ReadString(&type, &type_escaped) || type_escaped) {
          return std::nullopt;
        }
      } else if (key == "request_id") {
        if (!s.CopyValue(&rid, 1)) return std::nullopt;
      } else if (key == "events" && s.Peek() == '[') {
        s.Consume('[');
        if (!s.Consume(']')) {
          for (;;) {
            if (!s.SkipValue(2)) return std::nullopt;
            ++count;
            if (s.Consume(']')) break;
            if (!s.Consume(',')) return std::nullopt;
          }
        }
        events = text.substr(begin, s.pos() - begin);
        events_is_array = true;
        have_events = true;
      } else if (key == "event" && s.Peek() == '{' && !have_events) {
        if (!s.SkipValue(1)) return std::nullopt;
        events = text.substr(begin, s.pos() - begin);
      } else if (key == "events") {
        return std::nullopt;  // an object, or not a batch: left to the DOM path
      } else {
        if (!s.SkipValue(1)) return std::nullopt;
      }
      if (s.Consume('}')) break;
      if (!s.Consume(',')) return std::nullopt;
    }
  }
  s.SkipSpace();
  if (!s.AtEnd() || !s.KeysUnique(0) || type != "publish" || events.empty()) return std::nullopt;
  if (events_is_array && count > max_events) return std::nullopt;  // too_many_events
  ClientMessage m;
  m.kind = ClientMessage::Kind::kPublish;
  m.request_id_json = std::move(rid);
  m.events_in_text = events;
  return m;
}

}  // namespace client_message_internal

size_t JsonNestingDepth(std::string_view text, size_t limit) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char ch : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (ch == '\\') {
        escaped = true;
      } else if (ch == '"') {
        in_string = false;
      }
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if ((ch == ']' || ch == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

ClientMessage ParseClientMessage(std::string_view text,
                                 const std::optional<std::string>& bound_session,
                                 size_t max_events_per_publish) {
  if (text == "ping") {  // background.md §2: plain text ping -> plain text pong
    ClientMessage m;
    m.kind = ClientMessage::Kind::kPlainPing;
    return m;
  }
  // First, as most messages are publishes. A frame it accepts is nested at most
  // kMaxMessageDepth deep (the scanner's own limit), so the DOM path's check would pass.
  if (std::optional<ClientMessage> publish =
          client_message_internal::ScanPublish(text, max_events_per_publish)) {
    return std::move(*publish);
  }
  return client_message_internal::ParseWithDom(text, bound_session, max_events_per_publish);
}

namespace client_message_internal {

ClientMessage ParseWithDom(std::string_view text, const std::optional<std::string>& bound_session,
                           size_t max_events_per_publish) {
  if (JsonNestingDepth(text, kMaxMessageDepth) > kMaxMessageDepth) {
    return Error(wire::kBadJson,
                 fmt::format("nesting depth exceeds the limit of {}", kMaxMessageDepth));
  }
  // Numbers read exactly (core/json_parse.h), as the HTTP path reads them: a
  // published event is stored the same whichever way it arrives.
  Document doc;
  rapidjson::MemoryStream memory(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(memory);
  const rapidjson::ParseResult parsed =
      ParseWithExactNumbers<rapidjson::kParseIterativeFlag>(doc, stream);
  if (parsed.IsError()) {
    return Error(wire::kBadJson, fmt::format("invalid JSON at byte {}: {}", parsed.Offset(),
                                             rapidjson::GetParseError_En(parsed.Code())));
  }
  if (!doc.IsObject()) {
    return Error(wire::kBadMessage, "a message must be a JSON object with a \"type\"");
  }
  // Looked up through a const reference: RapidJSON's non-const member iterators
  // compare ambiguously under C++20's reversed operators (clang's
  // -Wambiguous-reversed-operator); the const ones do not.
  const Document& root = doc;
  std::string rid;
  if (auto it = root.FindMember("request_id"); it != root.MemberEnd()) rid = Serialize(it->value);
  auto type = root.FindMember("type");
  if (type == root.MemberEnd() || !type->value.IsString()) {
    return Error(wire::kBadMessage, "a message needs a string \"type\"", std::move(rid));
  }
  const std::string_view t(type->value.GetString(), type->value.GetStringLength());
  if (t == "ping") {
    ClientMessage m;
    m.kind = ClientMessage::Kind::kPing;
    m.request_id_json = std::move(rid);
    return m;
  }
  if (t == "publish") return Publish(doc, std::move(rid), max_events_per_publish);
  if (t == "message") return Chat(doc, std::move(rid), bound_session);
  if (t == "subscribe") return Subscribe(doc, std::move(rid));
  return Error(wire::kUnknownType,
               fmt::format("unknown message type \"{}\" (expected publish, message, subscribe or "
                           "ping)",
                           Utf8Prefix(t, 64)),
               std::move(rid));
}

}  // namespace client_message_internal

}  // namespace tailbus::ws
