// Fuzzes the server's parser for client WebSocket text messages
// (ws/client_message.h: ping, publish, message, subscribe) and what the
// server does next with a parsed message that carries no I/O: decoding the
// events of a publish (core/event_decoder.h), parsing a subscribe's filter,
// and building the error frame. Invariants:
// - an error has a known wire code (ws/wire.h) and a message; the error
//   frame is valid JSON whenever the input was valid UTF-8 (libwebsockets
//   refuses text frames that are not);
// - publish / message carry valid JSON within kMaxMessageDepth; request_id
//   is valid JSON text or empty;
// - a subscribe's numeric members are what the JSON said;
// - the publish fast path (ScanPublish) agrees with the DOM path wherever it
//   answers: same request_id, and its events decode to the same result.
#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/event_decoder.h"
#include "core/filter.h"
#include "fuzz/fuzz_check.h"
#include "ws/client_message.h"
#include "ws/frames.h"
#include "ws/wire.h"

namespace {

using namespace tailbus;
using namespace tailbus::ws;
using tailbus::decoder_internal::BodyWithoutGeneratedId;

constexpr int64_t kNowMs = 1'795'310'909'123;
constexpr unsigned kStrict = rapidjson::kParseIterativeFlag |
                             rapidjson::kParseValidateEncodingFlag |
                             rapidjson::kParseFullPrecisionFlag;

bool KnownCode(std::string_view code) {
  for (const wire::ErrorCodeInfo& info : wire::AllErrorCodes()) {
    if (info.code == code) return true;
  }
  return false;
}

bool IsJson(std::string_view text, bool validate_utf8) {
  rapidjson::Document doc;
  if (validate_utf8) {
    doc.Parse<kStrict>(text.data(), text.size());
  } else {
    doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  }
  return !doc.HasParseError();
}

// Where the publish fast path answers, the DOM path gives the same message, and the
// events, decoded, give the same result (events or errors) from either text.
void CheckScanPublish(std::string_view text, const std::optional<std::string>& bound) {
  namespace internal = client_message_internal;
  const std::optional<ClientMessage> fast = internal::ScanPublish(text, 5);
  if (!fast) return;
  const ClientMessage dom = internal::ParseWithDom(text, bound, 5);
  FUZZ_CHECK(fast->kind == ClientMessage::Kind::kPublish);
  FUZZ_CHECK(dom.kind == ClientMessage::Kind::kPublish, "DOM path: %s", dom.error_message.c_str());
  FUZZ_CHECK(fast->request_id_json == dom.request_id_json, "request_id %s vs %s",
             fast->request_id_json.c_str(), dom.request_id_json.c_str());
  DecodeLimits limits;
  limits.max_batch_events = 5;
  const DecodeResult a = DecodeEvents(fast->events(), limits, kNowMs);
  const DecodeResult b = DecodeEvents(dom.events(), limits, kNowMs);
  FUZZ_CHECK(a.error_count == b.error_count && a.errors.size() == b.errors.size(),
             "errors %s vs %s", a.ToStatus().ToString().c_str(), b.ToStatus().ToString().c_str());
  for (size_t i = 0; i < a.errors.size(); ++i) {
    FUZZ_CHECK(a.errors[i].ToString() == b.errors[i].ToString(), "error %s vs %s",
               a.errors[i].ToString().c_str(), b.errors[i].ToString().c_str());
  }
  FUZZ_CHECK(a.events.size() == b.events.size());
  for (size_t i = 0; i < a.events.size(); ++i) {
    FUZZ_CHECK(BodyWithoutGeneratedId(a.events[i]) == BodyWithoutGeneratedId(b.events[i]),
               "bodies differ:\n%s\n%s", a.events[i].body.c_str(), b.events[i].body.c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool utf8 = fuzz::IsValidUtf8(text);
  // The first byte picks whether the connection is bound to a session.
  const std::optional<std::string> bound =
      size > 0 && (data[0] & 1) ? std::optional<std::string>("bound-session") : std::nullopt;
  ClientMessage m = ParseClientMessage(text, bound, 5);
  CheckScanPublish(text, bound);
  if (!m.request_id_json.empty()) FUZZ_CHECK(IsJson(m.request_id_json, false));
  switch (m.kind) {
    case ClientMessage::Kind::kPlainPing:
      FUZZ_CHECK(text == "ping");
      break;
    case ClientMessage::Kind::kPing:
      break;
    case ClientMessage::Kind::kError: {
      FUZZ_CHECK(KnownCode(m.error_code), "unknown wire code %.*s",
                 static_cast<int>(m.error_code.size()), m.error_code.data());
      FUZZ_CHECK(!m.error_message.empty());
      const std::string frame = ErrorFrame(m.error_code, m.error_message, m.request_id_json);
      if (utf8) FUZZ_CHECK(IsJson(frame, true), "error frame is not valid JSON: %s", frame.c_str());
      break;
    }
    case ClientMessage::Kind::kPublish:
    case ClientMessage::Kind::kChatMessage: {
      FUZZ_CHECK(IsJson(m.events(), false), "events_json: %s", std::string(m.events()).c_str());
      FUZZ_CHECK(JsonNestingDepth(m.events(), kMaxMessageDepth) <= kMaxMessageDepth);
      DecodeLimits limits;
      limits.max_batch_events = 5;
      DecodeResult r = DecodeEvents(m.events(), limits, kNowMs);
      if (!r.ok()) {
        FUZZ_CHECK(r.events.empty() && !r.errors.empty());
        const std::string frame =
            ErrorFrame(wire::kInvalidEvent, r.ToStatus().message(), m.request_id_json, r.errors);
        if (utf8)
          FUZZ_CHECK(IsJson(frame, true), "error frame is not valid JSON: %s", frame.c_str());
      } else {
        FUZZ_CHECK(r.events.size() <= 5);
        if (m.kind == ClientMessage::Kind::kChatMessage) {
          FUZZ_CHECK(r.events.size() == 1);
          if (bound && m.events().find("\"session_id\"") == std::string::npos) {
            FUZZ_CHECK(r.events[0].header.session_id == *bound);
          }
        }
      }
      break;
    }
    case ClientMessage::Kind::kSubscribe: {
      const SpecInput& in = m.subscribe;
      FUZZ_CHECK(!in.after || *in.after >= 0);
      if (in.filter_json) {
        Result<Filter> f = Filter::Parse(*in.filter_json, "filter");
        FUZZ_CHECK(f.ok() || f.status().message().rfind("filter", 0) == 0);
      }
      break;
    }
  }
  return 0;
}
