// HTTP routes (JSON unless stated), the request body reader and the response
// writer. Runs on the network thread.
//
//   GET    /                            index of endpoints
//   POST   /api/events                  append (JSON object, array, or NDJSON)
//   GET    /api/events                  history page (after, limit, filter, epoch)
//   GET    /api/sessions                sessions, newest activity first (limit, offset, q)
//   GET    /api/sessions/{id}           one session
//   DELETE /api/sessions/{id}           soft delete (?hard=true: remove its rows)
//   GET    /api/sessions/{id}/events    history page of one session
//   GET    /api/sessions/{id}/stream    SSE of one session (sse.cc)
//   GET    /api/stream                  SSE (sse.cc)
//   GET    /api/status                  version, epoch, head, ...
//   GET    /api/websocket-metrics       background.md §4 shape
//   GET    /metrics                     Prometheus text
//   OPTIONS *                           CORS preflight
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/time_format.h"
#include "ws/frames.h"
#include "ws/route.h"
#include "ws/server_internal.h"
#include "ws/static_assets.h"
#include "ws/wire.h"

namespace tailbus::ws {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Largest chunk of a response body written per WRITEABLE.
constexpr size_t kBodyChunk = 256 * 1024;
// Rows one history page may examine (bounds sparse filters; the page says
// where to continue with next_after).
constexpr size_t kHistoryMaxScan = 10'000;
constexpr int64_t kDefaultPageEvents = 100;
constexpr int64_t kDefaultSessionsPage = 50;
constexpr int64_t kMaxSessionsPage = 1'000;

const char* MethodName(int method) {
  switch (method) {
    case LWSHUMETH_GET:
      return "GET";
    case LWSHUMETH_POST:
      return "POST";
    case LWSHUMETH_OPTIONS:
      return "OPTIONS";
    case LWSHUMETH_PUT:
      return "PUT";
    case LWSHUMETH_PATCH:
      return "PATCH";
    case LWSHUMETH_DELETE:
      return "DELETE";
    case LWSHUMETH_HEAD:
      return "HEAD";
    default:
      return "?";
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// POST /api/events bodies: JSON (also application/*+json), NDJSON, or what
// curl -d (form-urlencoded) and navigator.sendBeacon (text/plain) send for a
// JSON text; no Content-Type at all is JSON too. Anything else (multipart
// forms, XML, binary) is refused before the body is read.
bool AcceptedBodyType(std::string_view lower_content_type) {
  std::string_view t = lower_content_type.substr(0, lower_content_type.find(';'));
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  if (t.empty()) return true;
  for (std::string_view ok :
       {"application/json", "application/x-ndjson", "application/ndjson", "application/jsonl",
        "text/plain", "application/x-www-form-urlencoded"}) {
    if (t == ok) return true;
  }
  return t.rfind("application/", 0) == 0 && t.size() > 17 && t.substr(t.size() - 5) == "+json";
}

// The decoder reports an over-long batch as one whole-input error.
bool IsBatchLimitError(const DecodeResult& r) {
  return r.errors.size() == 1 && !r.errors[0].index && r.errors[0].field == "body" &&
         r.errors[0].reason.rfind("batch of ", 0) == 0;
}

std::string OffsetsBody(const std::vector<int64_t>& offsets) {
  std::string out = "{\"offsets\":[";
  for (size_t i = 0; i < offsets.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(offsets[i]);
  }
  out += "],\"first\":";
  out += offsets.empty() ? "null" : std::to_string(offsets.front());
  out += ",\"last\":";
  out += offsets.empty() ? "null" : std::to_string(offsets.back());
  out += "}\n";
  return out;
}

void AppendSessionJson(std::string* out, const SessionSummary& s, int64_t connected_clients) {
  *out += "{\"session_id\":";
  AppendJsonString(out, s.session_id);
  fmt::format_to(std::back_inserter(*out),
                 ",\"event_count\":{},\"first_offset\":{},\"last_offset\":{},\"first_time\":\"{}\","
                 "\"last_time\":\"{}\",\"total_cost_tokens\":{},\"error_count\":{},"
                 "\"connected_clients\":{}}}",
                 s.event_count, s.first_offset, s.last_offset, FormatRfc3339Millis(s.first_time_ms),
                 FormatRfc3339Millis(s.last_time_ms), s.total_cost_tokens, s.error_count,
                 connected_clients);
}

// What a route needs with access control on (ws/auth.h); nullopt when the
// method is not served there (the request gets 405 without a token check).
std::optional<Requirement> NeedFor(const Route& r, int method, const QueryArgs& args) {
  const bool get = method == LWSHUMETH_GET;
  auto read = [](std::optional<std::string> session) {
    return Requirement{Requirement::kRead, std::move(session)};
  };
  switch (r.kind) {
    case Route::kIndex:
      return get ? std::optional(Requirement{Requirement::kAnyToken, {}}) : std::nullopt;
    case Route::kEvents:
      if (method == LWSHUMETH_POST) return Requirement{Requirement::kPublish, {}};
      return get ? std::optional(read(std::nullopt)) : std::nullopt;
    case Route::kSessions:
      return get ? std::optional(read(std::nullopt)) : std::nullopt;
    case Route::kSession:
      if (method == LWSHUMETH_DELETE) return Requirement{Requirement::kAdmin, r.session};
      return get ? std::optional(read(r.session)) : std::nullopt;
    case Route::kSessionEvents:
    case Route::kSessionStream:
      return get ? std::optional(read(r.session)) : std::nullopt;
    case Route::kStream: {
      if (!get) return std::nullopt;
      std::optional<std::string_view> sid = args.Get("session_id");
      return read(sid ? std::optional<std::string>(*sid) : std::nullopt);
    }
    case Route::kWsMetrics:
    case Route::kMetrics:
      return get ? std::optional(Requirement{Requirement::kAllSessions, {}}) : std::nullopt;
    case Route::kStatus:
    case Route::kWsEndpoint:
    case Route::kNone:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

// ---- responses -------------------------------------------------------------------

void Server::Impl::Respond(Conn* conn, int status, std::string content_type, std::string body,
                           Headers headers, bool close_after) {
  auto r = std::make_unique<PendingResponse>();
  r->status = status;
  r->content_type = std::move(content_type);
  r->body = std::move(body);
  r->headers = std::move(headers);
  r->close_after = close_after;
  conn->response = std::move(r);
  RequestWritable(conn, false);
}

void Server::Impl::RespondError(Conn* conn, std::string_view code, std::string_view message,
                                std::span<const FieldError> details, std::string_view extra_members,
                                Headers headers) {
  metrics_.CountRejected(code);
  Respond(conn, wire::HttpStatusFor(code), "application/json",
          HttpErrorBody(code, message, details, extra_members), std::move(headers));
}

int Server::Impl::RespondNowAndClose(Conn* conn, std::string_view code, std::string_view message,
                                     Headers headers) {
  metrics_.CountRejected(code);
  const std::string body = HttpErrorBody(code, message);
  std::string buf(LWS_PRE + 1024 + body.size(), '\0');
  auto* start = reinterpret_cast<unsigned char*>(buf.data()) + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = reinterpret_cast<unsigned char*>(buf.data()) + LWS_PRE + 1024;
  auto add = [&](const char* name, std::string_view value) {
    return lws_add_http_header_by_name(conn->wsi, reinterpret_cast<const unsigned char*>(name),
                                       reinterpret_cast<const unsigned char*>(value.data()),
                                       static_cast<int>(value.size()), &p, end) == 0;
  };
  if (lws_add_http_common_headers(conn->wsi, static_cast<unsigned>(wire::HttpStatusFor(code)),
                                  "application/json", body.size(), &p, end) ||
      !add("connection:", "close") ||
      (code == wire::kConnectionRateLimited &&
       !add("retry-after:", std::to_string(RetryAfterSeconds(static_cast<int64_t>(
                                1e6 / std::max(options_.connection_rate_per_ip, 1e-6)))))) ||
      (!conn->cors_origin.empty() && !add("access-control-allow-origin:", conn->cors_origin))) {
    return -1;
  }
  for (const auto& [name, value] : headers) {
    if (!add((name + ":").c_str(), value)) return -1;
  }
  if (lws_finalize_http_header(conn->wsi, &p, end)) return -1;
  std::memcpy(p, body.data(), body.size());
  p += body.size();
  lws_write(conn->wsi, start, static_cast<size_t>(p - start), LWS_WRITE_HTTP_HEADERS);
  return -1;  // close: the request body (if any) is not read
}

int Server::Impl::OnHttpWriteable(Conn* conn) {
  PendingResponse* r = conn->response.get();
  if (r == nullptr) return 0;
  if (!r->headers_sent) {
    std::string buf(LWS_PRE + 4096, '\0');
    auto* start = reinterpret_cast<unsigned char*>(buf.data()) + LWS_PRE;
    unsigned char* p = start;
    unsigned char* end = reinterpret_cast<unsigned char*>(buf.data()) + buf.size() - 1;
    auto add = [&](const std::string& name, std::string_view value) {
      const std::string header = name + ":";
      return lws_add_http_header_by_name(conn->wsi,
                                         reinterpret_cast<const unsigned char*>(header.c_str()),
                                         reinterpret_cast<const unsigned char*>(value.data()),
                                         static_cast<int>(value.size()), &p, end) == 0;
    };
    bool ok =
        lws_add_http_common_headers(conn->wsi, static_cast<unsigned>(r->status),
                                    r->content_type.empty() ? nullptr : r->content_type.c_str(),
                                    r->body.size(), &p, end) == 0;
    if (ok && !conn->cors_origin.empty()) {
      ok = add("access-control-allow-origin", conn->cors_origin) &&
           (conn->cors_origin == "*" || add("vary", "Origin"));
    }
    for (const auto& [name, value] : r->headers) {
      if (ok) ok = add(name, value);
    }
    if (ok && (r->close_after || stopping_)) ok = add("connection", "close");
    if (!ok || lws_finalize_write_http_header(conn->wsi, start, &p, end) != 0) return -1;
    r->headers_sent = true;
    if (!r->body.empty()) {
      RequestWritable(conn, false);
      return 0;
    }
  } else {
    const size_t chunk = std::min(kBodyChunk, r->body.size() - r->sent);
    const bool final = r->sent + chunk == r->body.size();
    std::string& scratch = ScratchBuffer();
    scratch.append(r->body, r->sent, chunk);
    auto* data = reinterpret_cast<unsigned char*>(scratch.data()) + LWS_PRE;
    const int n = lws_write(conn->wsi, data, chunk, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    if (n < 0 || static_cast<size_t>(n) < chunk) return -1;
    r->sent += chunk;
    if (!final) {
      RequestWritable(conn, false);
      return 0;
    }
  }
  const bool close = r->close_after || stopping_;
  conn->response.reset();
  if (close) return -1;
  // Keep-alive: the next request's head is timed like the first. Started
  // before lws looks at pipelined input, which marks it done at once.
  StartHeaderClock(conn);
  return lws_http_transaction_completed(conn->wsi) ? -1 : 0;
}

// ---- requests --------------------------------------------------------------------

namespace {

// Route handlers. They answer through Respond*/Start*, returning what the lws
// callback returns (0, or -1 to close).
struct Handlers {
  Server::Impl& s;
  Conn* c;

  int Index() {
    std::string body = "{\"name\":\"tailbus\",\"version\":\"" TAILBUS_VERSION "\",\"epoch\":";
    AppendJsonString(&body, s.bus_.epoch());
    body += fmt::format(
        ",\"head\":{},\"endpoints\":[\"GET /ws\",\"GET /ws/events/{{session_id}}\","
        "\"GET /ws/receipt/{{id}}\",\"POST /api/events\",\"GET /api/events\","
        "\"GET /api/sessions\",\"GET /api/sessions/{{id}}\",\"DELETE /api/sessions/{{id}}\","
        "\"GET /api/sessions/{{id}}/events\",\"GET /api/sessions/{{id}}/stream\","
        "\"GET /api/stream\",\"GET /api/status\",\"GET /api/websocket-metrics\","
        "\"GET /metrics\"],\"docs\":\"docs/PROTOCOL.md\"}}\n",
        s.bus_.head());
    s.Respond(c, 200, "application/json", std::move(body));
    return 0;
  }

  int BeginPost() {
    const std::string te = Server::Impl::Header(c->wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
    const std::string cl = Server::Impl::Header(c->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (!te.empty() || cl.empty()) {
      return s.RespondNowAndClose(
          c, wire::kLengthRequired,
          "POST needs a Content-Length header (chunked request bodies are not supported)");
    }
    std::optional<int64_t> length = ParseInt64(cl);
    if (!length || *length < 0) {
      return s.RespondNowAndClose(c, wire::kBadRequest, "Content-Length is not a number");
    }
    if (static_cast<uint64_t>(*length) > s.options_.max_body_bytes) {
      return s.RespondNowAndClose(
          c, wire::kBodyTooLarge,
          fmt::format("a body of {} bytes exceeds the limit of {} bytes (--max-body-bytes)",
                      *length, s.options_.max_body_bytes));
    }
    c->http.content_type = Lower(Server::Impl::Header(c->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE));
    if (!AcceptedBodyType(c->http.content_type)) {
      return s.RespondNowAndClose(
          c, wire::kUnsupportedMediaType,
          fmt::format("Content-Type \"{}\" is not accepted: send application/json or "
                      "application/x-ndjson",
                      c->http.content_type.substr(0, 64)));
    }
    // Over --publish-rate: the body is read and dropped, then 429 (keep-alive survives).
    bool sustained = false;
    if (!s.AllowPublish(c, &c->http.rate_limited_retry_s, &sustained)) {
      c->http.rate_limited_retry_s = std::max<int64_t>(1, c->http.rate_limited_retry_s);
    }
    c->http.post_events = true;
    c->http.expected_body = static_cast<size_t>(*length);
    c->http.body.reserve(std::min<size_t>(c->http.expected_body, 1 << 20));
    if (Lower(Server::Impl::Header(c->wsi, WSI_TOKEN_HTTP_EXPECT)) == "100-continue") {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      std::string buf(LWS_PRE, '\0');
      buf += kContinue;
      lws_write(c->wsi, reinterpret_cast<unsigned char*>(buf.data()) + LWS_PRE,
                sizeof(kContinue) - 1, LWS_WRITE_HTTP_HEADERS);
    }
    return 0;  // the body arrives in LWS_CALLBACK_HTTP_BODY
  }

  // Shared by GET /api/events and GET /api/sessions/{id}/events.
  int History(const std::optional<std::string>& session) {
    const QueryArgs& args = c->http.args;
    auto after = args.GetInt("after", 0, INT64_MAX);
    if (!after.ok()) return Bad(wire::kBadRequest, after.status());
    auto limit = args.GetInt("limit", 1, static_cast<int64_t>(s.options_.max_page_events));
    if (!limit.ok()) return Bad(wire::kBadRequest, limit.status());
    Filter filter;
    if (auto text = args.Get("filter"); text && !text->empty()) {
      auto parsed = Filter::Parse(*text, "filter");
      if (!parsed.ok()) return Bad(wire::kBadFilter, parsed.status());
      filter = std::move(*parsed);
    }
    if (session) {
      if (Status st = ValidateSessionId(*session); !st.ok()) return Bad(wire::kBadRequest, st);
      auto found = s.reader_->GetSession(*session);
      if (!found.ok()) return NotFoundOr(found.status(), *session);
      filter = filter.RestrictedToSession(*session);
    }
    const int64_t head = s.bus_.head();
    const int64_t earliest = s.bus_.earliest();
    if (auto epoch = args.Get("epoch"); epoch && *epoch != s.bus_.epoch()) {
      s.RespondError(c, wire::kEpochMismatch,
                     "the epoch given is not this log's epoch: start again from after=0", {},
                     PositionMembers(earliest));
      return 0;
    }
    int64_t from = after->value_or(0);
    if (from == 0) from = std::max<int64_t>(0, earliest - 1);
    Result<ReadPage> page =
        s.reader_->Read(from, filter, static_cast<size_t>(limit->value_or(kDefaultPageEvents)),
                        kHistoryMaxScan, ReadDetail::kDelivery);  // the body is the stored JSON
    if (!page.ok()) {
      if (page.status().code() == StatusCode::kEvicted) {
        s.RespondError(c, wire::kOffsetEvicted, page.status().message(), {},
                       PositionMembers(earliest));
        return 0;
      }
      return Bad(wire::ErrorForStatus(page.status()), page.status());
    }
    size_t bytes = 256;
    for (const EventPtr& e : page->events) bytes += e->json.size() + 1;
    std::string body;
    body.reserve(bytes);
    body += "{\"events\":[";
    for (size_t i = 0; i < page->events.size(); ++i) {
      if (i > 0) body += ',';
      body += page->events[i]->json;
    }
    const int64_t next_after = std::max(page->next_after, from);
    body +=
        fmt::format("],\"count\":{},\"next_after\":{},\"has_more\":{},\"head\":{},",
                    page->events.size(), next_after, next_after < head ? "true" : "false", head);
    body += PositionMembers(earliest);
    body += "}\n";
    s.Respond(c, 200, "application/json", std::move(body));
    return 0;
  }

  int Sessions() {
    const QueryArgs& args = c->http.args;
    auto limit = args.GetInt("limit", 1, kMaxSessionsPage);
    if (!limit.ok()) return Bad(wire::kBadRequest, limit.status());
    auto offset = args.GetInt("offset", 0, INT64_MAX);
    if (!offset.ok()) return Bad(wire::kBadRequest, offset.status());
    const size_t n = static_cast<size_t>(limit->value_or(kDefaultSessionsPage));
    const size_t skip = static_cast<size_t>(offset->value_or(0));
    auto list = s.reader_->ListSessions(n, skip, args.Get("q").value_or(""));
    if (!list.ok()) return Bad(wire::ErrorForStatus(list.status()), list.status());
    std::string body = "{\"sessions\":[";
    for (size_t i = 0; i < list->size(); ++i) {
      if (i > 0) body += ',';
      AppendSessionJson(&body, (*list)[i], ConnectedClients((*list)[i].session_id));
    }
    body += fmt::format("],\"limit\":{},\"offset\":{},\"has_more\":{}}}\n", n, skip,
                        list->size() == n ? "true" : "false");
    s.Respond(c, 200, "application/json", std::move(body));
    return 0;
  }

  int Session(const std::string& id) {
    if (Status st = ValidateSessionId(id); !st.ok()) return Bad(wire::kBadRequest, st);
    auto found = s.reader_->GetSession(id);
    if (!found.ok()) return NotFoundOr(found.status(), id);
    std::string body;
    AppendSessionJson(&body, *found, ConnectedClients(id));
    body += '\n';
    s.Respond(c, 200, "application/json", std::move(body));
    return 0;
  }

  int DeleteSession(const std::string& id) {
    if (Status st = ValidateSessionId(id); !st.ok()) return Bad(wire::kBadRequest, st);
    auto hard = c->http.args.GetBool("hard");
    if (!hard.ok()) return Bad(wire::kBadRequest, hard.status());
    c->http.awaiting = true;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                    static_cast<int>(s.options_.deferred_response_timeout.count()));
    Bus* bus = &s.bus_;
    s.PostBlocking([bus, mailbox = &s.mailbox(), conn_id = c->id, id, h = hard->value_or(false)] {
      Completion done;
      done.kind = Completion::Kind::kHttpDelete;
      done.conn_id = conn_id;
      done.status = bus->DeleteSession(id, h);
      done.session_id = id;
      done.hard = h;
      mailbox->Post(std::move(done));
    });
    return 0;
  }

  int StatusPage() {
    auto stats = s.reader_->Stats();
    if (!stats.ok()) return Bad(wire::ErrorForStatus(stats.status()), stats.status());
    const Gauges g = s.CurrentGauges();
    std::string body = "{\"name\":\"tailbus\",\"version\":\"" TAILBUS_VERSION "\",\"epoch\":";
    AppendJsonString(&body, s.bus_.epoch());
    body += fmt::format(
        ",\"head\":{},\"earliest\":{},\"uptime_seconds\":{:.3f},\"connections\":{},"
        "\"websocket_connections\":{},\"sse_connections\":{},\"subscribers\":{},"
        "\"database_bytes\":{},\"event_count\":{},\"session_count\":{},\"schema_version\":{},"
        "\"listen\":",
        g.head, g.earliest, static_cast<double>(g.uptime_ms) / 1000.0, g.connections,
        g.ws_connections, g.sse_connections, g.subscribers, stats->file_bytes, stats->event_count,
        stats->session_count, stats->schema_version);
    AppendJsonString(&body, s.options_.listen);
    body += ",\"event_loop\":";
    AppendJsonString(&body, s.event_loop());
    body += s.tls() ? ",\"tls\":true}\n" : ",\"tls\":false}\n";
    s.Respond(c, 200, "application/json", std::move(body));
    return 0;
  }

  int Bad(std::string_view code, const Status& st) {
    s.RespondError(c, code, st.message().empty() ? st.ToString() : st.message());
    return 0;
  }

  int NotFoundOr(const Status& st, const std::string& id) {
    if (st.code() == StatusCode::kNotFound) {
      s.RespondError(c, wire::kSessionNotFound, fmt::format("no session \"{}\"", id));
      return 0;
    }
    return Bad(wire::ErrorForStatus(st), st);
  }

  int64_t ConnectedClients(const std::string& id) {
    SessionStats* stats = s.metrics_.FindSession(id);
    return stats ? stats->connected_clients : 0;
  }

  std::string PositionMembers(int64_t earliest) {
    std::string out = "\"epoch\":";
    AppendJsonString(&out, s.bus_.epoch());
    out += fmt::format(",\"earliest\":{}", earliest);
    return out;
  }
};

}  // namespace

int Server::Impl::OnHttpRequest(Conn* conn, const char* in) {
  ++metrics_.http_requests;
  conn->kind = ConnKind::kHttp;
  conn->http = HttpRequest{};
  conn->claims.reset();
  conn->response.reset();
  char* uri = nullptr;
  int uri_len = 0;
  conn->http.method = lws_http_get_uri_and_method(conn->wsi, &uri, &uri_len);
  conn->http.path = uri != nullptr ? std::string(uri, static_cast<size_t>(uri_len))
                                   : std::string(in != nullptr ? in : "/");
  conn->cors_origin = AllowedOrigin(Header(conn->wsi, WSI_TOKEN_ORIGIN));

  if (!conn->reject_code.empty()) {
    return RespondNowAndClose(conn, conn->reject_code, RejectMessage(conn->reject_code));
  }
  if (stopping_)
    return RespondNowAndClose(conn, wire::kShuttingDown, "the server is shutting down");

  const int method = conn->http.method;
  const bool has_body =
      method == LWSHUMETH_POST || method == LWSHUMETH_PUT || method == LWSHUMETH_PATCH;
  Route route = MatchRoute(conn->http.path);
  Handlers h{*this, conn};

  if (method == LWSHUMETH_OPTIONS) {
    Headers headers;
    if (!conn->cors_origin.empty()) {
      headers = {{"access-control-allow-methods", "GET, POST, DELETE, OPTIONS"},
                 {"access-control-allow-headers", "content-type, last-event-id, authorization"},
                 {"access-control-max-age", "600"}};
    }
    if (route.kind != Route::kNone) headers.emplace_back("allow", route.allow);
    Respond(conn, 204, "", "", std::move(headers));
    return 0;
  }

  Result<QueryArgs> args = ReadQuery(conn->wsi);
  if (!args.ok()) {
    if (has_body) return RespondNowAndClose(conn, wire::kBadRequest, args.status().message());
    RespondError(conn, wire::kBadRequest, args.status().message());
    return 0;
  }
  conn->http.args = std::move(*args);

  // The web UI (ws/static_assets.h): its files, and "/" for browsers.
  if (method == LWSHUMETH_GET && TryServeWebUi(*this, conn)) return 0;

  auto wrong_method = [&]() {
    std::string message = fmt::format("{} is not allowed on {} (allowed: {})", MethodName(method),
                                      conn->http.path, route.allow);
    if (has_body) return RespondNowAndClose(conn, wire::kMethodNotAllowed, message);
    RespondError(conn, wire::kMethodNotAllowed, message, {}, {}, {{"allow", route.allow}});
    return 0;
  };

  if (route.kind == Route::kNone) {
    std::string message = fmt::format("no endpoint at {}", conn->http.path);
    if (has_body) return RespondNowAndClose(conn, wire::kNotFound, message);
    RespondError(conn, wire::kNotFound, message);
    return 0;
  }
  if (auth_on()) {
    if (std::optional<Requirement> need = NeedFor(route, method, conn->http.args)) {
      AuthResult auth = AuthorizeRequest(conn, conn->http.args, *need);
      if (!auth.ok()) return DenyHttp(conn, auth, has_body);
    }
  }
  if (route.kind == Route::kEvents && method == LWSHUMETH_POST) return h.BeginPost();
  if (route.kind == Route::kSession && method == LWSHUMETH_DELETE) {
    return h.DeleteSession(route.session);
  }
  if (method != LWSHUMETH_GET) return wrong_method();

  switch (route.kind) {
    case Route::kIndex:
      return h.Index();
    case Route::kEvents:
      return h.History(std::nullopt);
    case Route::kSessions:
      return h.Sessions();
    case Route::kSession:
      return h.Session(route.session);
    case Route::kSessionEvents:
      return h.History(route.session);
    case Route::kSessionStream: {
      if (Status st = ValidateSessionId(route.session); !st.ok()) {
        RespondError(conn, wire::kBadRequest, st.message());
        return 0;
      }
      WatchExpiry(conn);
      return StartSse(conn, route.session, conn->http.args);
    }
    case Route::kStream:
      WatchExpiry(conn);
      return StartSse(conn, std::nullopt, conn->http.args);
    case Route::kStatus:
      return h.StatusPage();
    case Route::kWsMetrics: {
      Respond(conn, 200, "application/json", metrics_.WebSocketMetricsJson(CurrentGauges(), Now()));
      return 0;
    }
    case Route::kMetrics:
      Respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8",
              metrics_.Prometheus(CurrentGauges()));
      return 0;
    case Route::kWsEndpoint:
      RespondError(conn, wire::kBadRequest,
                   "this is a WebSocket endpoint: connect with a WebSocket client "
                   "(Upgrade: websocket)");
      return 0;
    case Route::kNone:
      break;
  }
  return wrong_method();
}

int Server::Impl::OnHttpBody(Conn* conn, const void* data, size_t len) {
  if (!conn->http.post_events || data == nullptr || conn->http.rate_limited_retry_s > 0) return 0;
  const size_t room =
      conn->http.expected_body - std::min(conn->http.expected_body, conn->http.body.size());
  conn->http.body.append(static_cast<const char*>(data), std::min(len, room));
  return 0;
}

int Server::Impl::OnHttpBodyComplete(Conn* conn) {
  if (!conn->http.post_events) return -1;
  conn->http.post_events = false;
  conn->http.expected_body = 0;
  if (const int64_t retry_s = conn->http.rate_limited_retry_s; retry_s > 0) {
    RespondError(conn, wire::kRateLimited,
                 fmt::format("more than {} publishes per second on this connection "
                             "(--publish-rate); nothing was appended; retry in {} s",
                             options_.publish_rate, retry_s),
                 {}, {}, {{"retry-after", std::to_string(retry_s)}});
    return 0;
  }
  const std::string& ct = conn->http.content_type;
  const bool ndjson = ct.rfind("application/x-ndjson", 0) == 0 ||
                      ct.rfind("application/ndjson", 0) == 0 ||
                      ct.rfind("application/jsonl", 0) == 0;
  DecodeLimits limits;
  limits.max_batch_events = options_.max_events_per_publish;
  DecodeResult decoded = ndjson ? DecodeNdjson(conn->http.body, limits, NowMillis())
                                : DecodeEvents(conn->http.body, limits, NowMillis());
  std::string().swap(conn->http.body);  // free it now; the events own their bytes
  if (!decoded.ok()) {
    RespondError(conn, IsBatchLimitError(decoded) ? wire::kTooManyEvents : wire::kInvalidEvent,
                 decoded.ToStatus().message(), decoded.errors);
    return 0;
  }
  if (auth_on()) {  // every event's session must be allowed (BeginPost checked the scope)
    AuthResult auth = CheckPublish(conn->claims.get(), decoded.events);
    if (!auth.ok()) return DenyHttp(conn, auth, false);
  }
  conn->http.awaiting = true;
  lws_set_timeout(conn->wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                  static_cast<int>(options_.deferred_response_timeout.count()));
  Append(conn, std::move(decoded.events), Completion::Kind::kHttpAppend, {});
  return 0;
}

void Server::Impl::OnHttpAppendDone(Conn* conn, Completion& done) {
  conn->http.awaiting = false;
  lws_set_timeout(conn->wsi, NO_PENDING_TIMEOUT, 0);
  AppendResult& result = *done.append;
  if (result.ok()) {
    Respond(conn, 200, "application/json", OffsetsBody(result.value()));
    return;
  }
  const std::string_view code = wire::ErrorForStatus(result.status());
  Headers headers;
  if (code == wire::kOverloaded || code == wire::kUnavailable) headers = {{"retry-after", "1"}};
  RespondError(conn, code, "append failed: " + result.status().ToString(), {}, {},
               std::move(headers));
}

void Server::Impl::OnHttpDeleteDone(Conn* conn, Completion& done) {
  conn->http.awaiting = false;
  lws_set_timeout(conn->wsi, NO_PENDING_TIMEOUT, 0);
  if (done.status.ok()) {
    std::string body = "{\"deleted\":";
    AppendJsonString(&body, done.session_id);
    body += done.hard ? ",\"hard\":true}\n" : ",\"hard\":false}\n";
    Respond(conn, 200, "application/json", std::move(body));
  } else if (done.status.code() == StatusCode::kNotFound) {
    RespondError(conn, wire::kSessionNotFound, fmt::format("no session \"{}\"", done.session_id));
  } else {
    RespondError(conn, wire::ErrorForStatus(done.status), done.status.ToString());
  }
}

}  // namespace tailbus::ws
