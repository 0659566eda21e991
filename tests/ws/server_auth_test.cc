// Access control against a real server with --auth-secret-file semantics on
// (ServerOptions::auth_secret): every endpoint × every kind of token, publish
// batches, subscribe frames, expiry on an open connection, origins, and the
// non-loopback refusal. See docs/SECURITY.md and ws/auth.h.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "core/token.h"
#include "server_test_support.h"
#include "ws/wire.h"

namespace tailbus::server_test {
namespace {

const std::string kSecret = "test-secret-0123456789abcdefghijklmnop";

int64_t NowS() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Mint(std::vector<std::string> sessions, bool sub, bool pub, bool admin,
                 int64_t ttl_s = 3600, const std::string& secret = kSecret) {
  TokenClaims c;
  c.subject = "test";
  c.expires_at_s = NowS() + ttl_s;
  c.can_subscribe = sub;
  c.can_publish = pub;
  c.is_admin = admin;
  if (sessions.size() == 1 && sessions[0] == "*") {
    c.all_sessions = true;
  } else {
    c.sessions = std::move(sessions);
  }
  Result<std::string> t = MintToken(c, secret);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : std::string();
}

// The tokens of the table, in column order.
enum Tok { kNone, kForged, kExpired, kWrongSession, kNoScope, kSessionOk, kAllOk, kTokCount };
const char* const kTokNames[] = {"none",     "forged",     "expired", "wrong_session",
                                 "no_scope", "session_ok", "all_ok"};

struct Tokens {
  std::string t[kTokCount];
  Tokens() {
    t[kNone] = "";
    t[kForged] = Mint({"*"}, true, true, true, 3600, "another-secret-0123456789abcdefghij");
    t[kExpired] = Mint({"*"}, true, true, true, -3600);
    t[kWrongSession] = Mint({"s2"}, true, true, true);
    t[kNoScope] = Mint({"*"}, false, false, false);
    t[kSessionOk] = Mint({"s1"}, true, true, true);
    t[kAllOk] = Mint({"*"}, true, true, true);
  }
};

std::vector<std::pair<std::string, std::string>> Bearer(const std::string& token) {
  if (token.empty()) return {{"Accept", "application/json"}};
  return {{"Authorization", "Bearer " + token}, {"Accept", "application/json"}};
}

class ServerAuth : public ::testing::Test {
 protected:
  static TestServerOptions Options() {
    TestServerOptions o;
    o.server.auth_secret = kSecret;
    return o;
  }
  ServerAuth() : server_(Options()) { server_.Append({Ev("s1", "message"), Ev("s2", "message")}); }
  TestServer server_;
  Tokens tok_;
};

struct HttpCase {
  const char* method;
  const char* target;
  const char* body;
  int expect[kTokCount];  // none, forged, expired, wrong_session, no_scope, session_ok, all_ok
};

TEST_F(ServerAuth, HttpEndpointByTokenTable) {
  const std::string s1_event = Ev("s1", "message");
  const HttpCase cases[] = {
      {"GET", "/api/status", nullptr, {200, 200, 200, 200, 200, 200, 200}},
      {"GET", "/", nullptr, {401, 401, 401, 200, 200, 200, 200}},
      {"GET", "/api/events", nullptr, {401, 401, 401, 403, 403, 403, 200}},
      {"GET", "/api/sessions", nullptr, {401, 401, 401, 403, 403, 403, 200}},
      {"GET", "/api/sessions/s1", nullptr, {401, 401, 401, 403, 403, 200, 200}},
      {"GET", "/api/sessions/s1/events", nullptr, {401, 401, 401, 403, 403, 200, 200}},
      {"GET", "/metrics", nullptr, {401, 401, 401, 403, 200, 403, 200}},
      {"GET", "/api/websocket-metrics", nullptr, {401, 401, 401, 403, 200, 403, 200}},
      {"GET", "/api/stream?session_id=s9", nullptr, {401, 401, 401, 403, 403, 403, 0}},
      {"GET", "/api/sessions/s9/stream", nullptr, {401, 401, 401, 403, 403, 403, 0}},
      {"GET", "/api/stream", nullptr, {401, 401, 401, 403, 403, 403, 0}},
      {"POST", "/api/events", s1_event.c_str(), {401, 401, 401, 403, 403, 200, 200}},
      // Deleting a session that does not exist: 404 only once the token allows it.
      {"DELETE", "/api/sessions/nosuch", nullptr, {401, 401, 401, 403, 403, 403, 404}},
      {"DELETE", "/api/sessions/s1?hard=false", nullptr, {401, 401, 401, 403, 403, 0, 0}},
  };
  for (const HttpCase& c : cases) {
    for (int t = 0; t < kTokCount; ++t) {
      if (c.expect[t] == 0) continue;  // a stream, or a change: covered elsewhere
      SCOPED_TRACE(std::string(c.method) + " " + c.target + " with token " + kTokNames[t]);
      HttpReply r =
          Http(server_.port(), c.method, c.target, c.body ? c.body : "", Bearer(tok_.t[t]), 5s);
      EXPECT_EQ(r.status, c.expect[t]) << r.body;
      if (r.status == 401 || r.status == 403) {
        rapidjson::Document j = r.Json();
        ASSERT_TRUE(j.IsObject()) << r.body;
        EXPECT_EQ(Str(j, "code"), r.status == 401 ? "unauthorized" : "forbidden");
        EXPECT_FALSE(Str(j, "error").empty());
        EXPECT_EQ(r.headers["www-authenticate"].rfind("Bearer realm=\"tailbus\"", 0), 0u)
            << r.headers["www-authenticate"];
        // The token never comes back.
        if (!tok_.t[t].empty()) {
          EXPECT_EQ(r.body.find(tok_.t[t]), std::string::npos);
        }
      }
    }
  }
  // Only the two allowed POSTs appended (2 events from the fixture + 2).
  EXPECT_EQ(server_.bus().head(), 4);
}

TEST_F(ServerAuth, ErrorMessagesSayWhy) {
  HttpReply none = Http(server_.port(), "GET", "/api/sessions/s1", {}, Bearer(""));
  EXPECT_NE(Str(none.Json(), "error").find("a token is required"), std::string::npos);
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer realm=\"tailbus\"");
  HttpReply expired = Http(server_.port(), "GET", "/api/sessions/s1", {}, Bearer(tok_.t[kExpired]));
  EXPECT_EQ(Str(expired.Json(), "error"), "token: expired");
  EXPECT_EQ(expired.headers["www-authenticate"],
            "Bearer realm=\"tailbus\", error=\"invalid_token\"");
  HttpReply forged = Http(server_.port(), "GET", "/api/sessions/s1", {}, Bearer(tok_.t[kForged]));
  EXPECT_EQ(Str(forged.Json(), "error"), "token: bad signature");
  HttpReply basic = Http(server_.port(), "GET", "/api/sessions/s1", {},
                         {{"Authorization", "Basic dXNlcjpwYXNz"}});
  EXPECT_EQ(basic.status, 401);
  EXPECT_NE(Str(basic.Json(), "error").find("Bearer"), std::string::npos);
  HttpReply wrong =
      Http(server_.port(), "GET", "/api/sessions/s1", {}, Bearer(tok_.t[kWrongSession]));
  EXPECT_EQ(Str(wrong.Json(), "error"), "the token does not allow session \"s1\"");
  EXPECT_EQ(wrong.headers["www-authenticate"],
            "Bearer realm=\"tailbus\", error=\"insufficient_scope\"");
}

TEST_F(ServerAuth, TokenInQueryParameterWorksLikeTheHeader) {
  EXPECT_EQ(Http(server_.port(), "GET", "/api/sessions/s1?token=" + tok_.t[kSessionOk]).status,
            200);
  EXPECT_EQ(Http(server_.port(), "GET", "/api/sessions/s1?token=" + tok_.t[kForged]).status, 401);
  EXPECT_EQ(Http(server_.port(), "GET", "/api/sessions/s1?token=" + tok_.t[kWrongSession]).status,
            403);
  // The header wins over the query parameter.
  EXPECT_EQ(Http(server_.port(), "GET", "/api/sessions/s1?token=" + tok_.t[kAllOk], {},
                 Bearer(tok_.t[kWrongSession]))
                .status,
            403);
}

TEST_F(ServerAuth, UiFilesAndPreflightStayPublic) {
  HttpReply ui = Http(server_.port(), "GET", "/", {}, {{"Accept", "text/html"}});
  EXPECT_EQ(ui.status, 200);
  EXPECT_NE(ui.body.find("<html"), std::string::npos);
  EXPECT_EQ(Http(server_.port(), "GET", "/app.js").status, 200);
  EXPECT_EQ(Http(server_.port(), "OPTIONS", "/api/events", {},
                 {{"Origin", "http://app.example"}, {"Access-Control-Request-Method", "POST"}})
                .status,
            204);
}

TEST_F(ServerAuth, SseStreamsStartWithAnAllowedToken) {
  for (const std::string& target : {"/api/sessions/s1/stream?after=0&token=" + tok_.t[kSessionOk],
                                    "/api/stream?session_id=s1&after=0&token=" + tok_.t[kSessionOk],
                                    "/api/stream?after=0&token=" + tok_.t[kAllOk]}) {
    SCOPED_TRACE(target);
    auto sock = Socket::Connect(server_.port());
    ASSERT_TRUE(sock);
    ASSERT_TRUE(sock->SendAll("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string got;
    ASSERT_TRUE(WaitUntil([&] {
      got += sock->Recv(50ms);
      return got.find("\"session_id\":\"s1\"") != std::string::npos || sock->eof();
    }));
    EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
    EXPECT_NE(got.find("\"session_id\":\"s1\""), std::string::npos) << got;
  }
}

TEST_F(ServerAuth, DeleteNeedsAdminAndTheSession) {
  const std::string pub_sub = Mint({"s1"}, true, true, false);
  EXPECT_EQ(Http(server_.port(), "DELETE", "/api/sessions/s1", {}, Bearer(pub_sub)).status, 403);
  EXPECT_EQ(
      Http(server_.port(), "DELETE", "/api/sessions/s1", {}, Bearer(tok_.t[kSessionOk])).status,
      200);
  EXPECT_EQ(Http(server_.port(), "GET", "/api/sessions/s1", {}, Bearer(tok_.t[kAllOk])).status,
            404);
}

TEST_F(ServerAuth, HttpBatchWithOneForbiddenEventAppendsNothing) {
  const int64_t head = server_.bus().head();
  const std::string batch = "[" + Ev("s1", "a") + "," + Ev("s2", "b") + "," + Ev("s1", "c") + "]";
  HttpReply r = Http(server_.port(), "POST", "/api/events", batch, Bearer(tok_.t[kSessionOk]));
  EXPECT_EQ(r.status, 403);
  rapidjson::Document j = r.Json();
  EXPECT_EQ(Str(j, "code"), "forbidden");
  EXPECT_NE(Str(j, "error").find("events[1].session_id"), std::string::npos) << r.body;
  ASSERT_TRUE(j.HasMember("details") && j["details"].IsArray() && j["details"].Size() == 1);
  EXPECT_EQ(Int(j["details"][0], "index"), 1);
  EXPECT_EQ(Str(j["details"][0], "field"), "session_id");
  EXPECT_EQ(server_.bus().head(), head);
  // NDJSON too.
  const std::string nd = Ev("s1", "a") + "\n" + Ev("s2", "b") + "\n";
  auto headers = Bearer(tok_.t[kSessionOk]);
  headers.emplace_back("Content-Type", "application/x-ndjson");
  EXPECT_EQ(Http(server_.port(), "POST", "/api/events", nd, headers).status, 403);
  EXPECT_EQ(server_.bus().head(), head);
}

// ---- WebSocket ------------------------------------------------------------------------

struct WsCase {
  const char* target;     // the token is appended as &token=
  int expect[kTokCount];  // close code, or 0: a hello
};

TEST_F(ServerAuth, WebSocketEndpointByTokenTable) {
  const WsCase cases[] = {
      {"/ws?after=0", {4401, 4401, 4401, 4403, 4403, 4403, 0}},
      {"/ws?session_id=s1", {4401, 4401, 4401, 4403, 4403, 0, 0}},
      {"/ws/events/s1?after=0", {4401, 4401, 4401, 4403, 4403, 0, 0}},
      {"/ws/receipt/s1?x=1", {4401, 4401, 4401, 4403, 4403, 0, 0}},
  };
  for (const WsCase& c : cases) {
    for (int t = 0; t < kTokCount; ++t) {
      SCOPED_TRACE(std::string(c.target) + " with token " + kTokNames[t]);
      const std::string target = std::string(c.target) + "&token=" + tok_.t[t];
      auto ws = WsClient::Connect(server_.port(), target);
      ASSERT_TRUE(ws);
      if (c.expect[t] == 0) {
        EXPECT_TRUE(ws->RecvType("hello", 5s)) << ws->last_text();
        ws->Close();
        continue;
      }
      auto err = ws->RecvType("error", 5s);
      ASSERT_TRUE(err);
      EXPECT_EQ(Str(*err, "code"), c.expect[t] == 4401 ? "unauthorized" : "forbidden");
      EXPECT_EQ(ws->WaitClose(5s), c.expect[t]);
    }
  }
}

TEST_F(ServerAuth, WebSocketAcceptsAuthorizationHeader) {
  auto ok = WsClient::Connect(server_.port(), "/ws/events/s1?after=0",
                              {{"Authorization", "Bearer " + tok_.t[kSessionOk]}});
  ASSERT_TRUE(ok);
  auto hello = ok->RecvType("hello", 5s);
  ASSERT_TRUE(hello);
  std::vector<std::string> seen;
  ASSERT_TRUE(WaitUntil([&] {
    auto m = ok->RecvJson(100ms);
    if (m) {
      for (const rapidjson::Value* e : EventsOf(*m)) seen.push_back(Str(*e, "session_id"));
    }
    return !seen.empty();
  }));
  EXPECT_EQ(seen, std::vector<std::string>{"s1"});
  auto bad = WsClient::Connect(server_.port(), "/ws/events/s2",
                               {{"Authorization", "Bearer " + tok_.t[kSessionOk]}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->WaitClose(5s), wire::kCloseForbidden);
}

TEST_F(ServerAuth, WebSocketPublishBatchWithOneForbiddenEventIsRejectedWhole) {
  auto ws = WsClient::Connect(server_.port(), "/ws/events/s1?token=" + tok_.t[kSessionOk]);
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello", 5s));
  const int64_t head = server_.bus().head();
  ASSERT_TRUE(ws->SendText(R"({"type":"publish","request_id":7,"events":[)" + Ev("s1", "a") + "," +
                           Ev("s2", "b") + "]}"));
  auto err = ws->RecvType("error", 5s);
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "forbidden");
  EXPECT_NE(Str(*err, "error").find("events[1].session_id"), std::string::npos) << ws->last_text();
  EXPECT_EQ(Int(*err, "request_id"), 7);
  // The connection stays usable: an allowed publish is acknowledged.
  ASSERT_TRUE(ws->SendText(R"({"type":"publish","request_id":8,"event":)" + Ev("s1", "c") + "}"));
  auto ack = ws->RecvType("ack", 5s);
  ASSERT_TRUE(ack);
  EXPECT_EQ(Int(*ack, "request_id"), 8);
  EXPECT_EQ(server_.bus().head(), head + 1);
}

TEST_F(ServerAuth, WebSocketPublishNeedsPublishScope) {
  const std::string read_only = Mint({"s1"}, true, false, false);
  auto ws = WsClient::Connect(server_.port(), "/ws/events/s1?token=" + read_only);
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello", 5s));
  const int64_t head = server_.bus().head();
  ASSERT_TRUE(ws->SendText(R"({"type":"message","content":"hi"})"));  // chat frame (§1)
  auto err = ws->RecvType("error", 5s);
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "forbidden");
  EXPECT_EQ(Str(*err, "error"), "the token lacks the \"publish\" scope");
  EXPECT_EQ(server_.bus().head(), head);
}

TEST_F(ServerAuth, SubscribeFrameCannotWidenTheToken) {
  auto ws = WsClient::Connect(server_.port(), "/ws?session_id=s1&token=" + tok_.t[kSessionOk]);
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello", 5s));
  // Another session, and "every session" (no session_id, match-all filter).
  ASSERT_TRUE(ws->SendText(R"({"type":"subscribe","request_id":1,"session_id":"s2","after":0})"));
  auto e1 = ws->RecvType("error", 5s);
  ASSERT_TRUE(e1);
  EXPECT_EQ(Int(*e1, "request_id"), 1);
  ASSERT_TRUE(ws->SendText(R"({"type":"subscribe","request_id":2,"after":0,"filter":{}})"));
  // That one is accepted but stays bound to s1: only s1 history arrives.
  auto hello = ws->RecvType("hello", 5s);
  ASSERT_TRUE(hello);
  EXPECT_EQ(Str(*hello, "session_id"), "s1");
  server_.Append({Ev("s2", "secret"), Ev("s1", "marker")});
  std::vector<std::string> types;
  ASSERT_TRUE(WaitUntil([&] {
    auto m = ws->RecvJson(100ms);
    if (m) {
      for (const rapidjson::Value* e : EventsOf(*m)) {
        EXPECT_EQ(Str(*e, "session_id"), "s1");
        types.push_back(Str(*e, "event_type"));
      }
    }
    return std::find(types.begin(), types.end(), "marker") != types.end();
  }));
  EXPECT_EQ(std::find(types.begin(), types.end(), "secret"), types.end());
}

TEST_F(ServerAuth, OpenConnectionsAreClosedWithUnauthorizedWhenTheTokenExpires) {
  // exp is 1 s from now; the server closes at exp + the clock leeway. A
  // WebSocket and an SSE stream wait for it together.
  const std::string short_lived = Mint({"s1"}, true, false, false, 1);
  auto ws = WsClient::Connect(server_.port(), "/ws/events/s1?token=" + short_lived);
  ASSERT_TRUE(ws);
  auto sock = Socket::Connect(server_.port());
  ASSERT_TRUE(sock);
  ASSERT_TRUE(sock->SendAll("GET /api/sessions/s1/stream?token=" + short_lived +
                            " HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(ws->RecvType("hello", 5s));
  const auto limit = std::chrono::seconds(kClockLeewaySeconds + 15);
  auto err = ws->RecvType("error", limit);
  ASSERT_TRUE(err) << ws->last_text();
  EXPECT_EQ(Str(*err, "code"), "unauthorized");
  EXPECT_NE(Str(*err, "error").find("expired"), std::string::npos);
  EXPECT_EQ(ws->WaitClose(5s), wire::kCloseUnauthorized);
  // SSE: the stream ends after an `event: error` record.
  std::string got;
  ASSERT_TRUE(WaitUntil(
      [&] {
        got += sock->Recv(100ms);
        return sock->eof();
      },
      limit));
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_NE(got.find("event: error"), std::string::npos) << got;
  EXPECT_NE(got.find("unauthorized"), std::string::npos) << got;
}

// ---- origins and start-up ----------------------------------------------------------------

TEST(ServerOrigins, AllowedOriginsApplyToWebSocketUpgradeAndCors) {
  TestServerOptions opts;
  opts.server.allowed_origins = {"https://app.example"};
  TestServer server(opts);
  HttpReply good =
      Http(server.port(), "OPTIONS", "/api/events", {},
           {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(good.headers["access-control-allow-origin"], "https://app.example");
  HttpReply bad =
      Http(server.port(), "OPTIONS", "/api/events", {},
           {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(bad.headers.count("access-control-allow-origin"), 0u);

  auto ws_good = WsClient::Connect(server.port(), "/ws", {{"Origin", "https://app.example"}});
  ASSERT_TRUE(ws_good);
  EXPECT_TRUE(ws_good->RecvType("hello", 5s));
  auto ws_bad = WsClient::Connect(server.port(), "/ws", {{"Origin", "https://evil.example"}});
  ASSERT_TRUE(ws_bad);
  auto err = ws_bad->RecvType("error", 5s);
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "origin_not_allowed");
  EXPECT_EQ(ws_bad->WaitClose(5s), wire::kCloseOriginNotAllowed);
  // The server's own page (Origin == http://<Host>) is always allowed.
  const std::string self = "127.0.0.1:" + std::to_string(server.port());
  auto ws_self =
      WsClient::Connect(server.port(), "/ws", {{"Origin", "http://" + self}});  // Host: self
  ASSERT_TRUE(ws_self);
  EXPECT_TRUE(ws_self->RecvType("hello", 5s)) << ws_self->last_text();
}

TEST(ServerOrigins, StarAllowsAnyOrigin) {
  TestServerOptions opts;
  opts.server.allowed_origins = {"*"};
  TestServer server(opts);
  auto ws = WsClient::Connect(server.port(), "/ws", {{"Origin", "https://anything.example"}});
  ASSERT_TRUE(ws);
  EXPECT_TRUE(ws->RecvType("hello", 5s));
  HttpReply r = Http(server.port(), "GET", "/api/status", {}, {{"Origin", "https://x.example"}});
  EXPECT_EQ(r.headers["access-control-allow-origin"], "*");
}

TEST(ServerStartup, RefusesNonLoopbackWithoutSecretUnlessInsecure) {
  TempDir dir;
  auto store = LogStore::Open((dir.path() / "t.db").string(), StorageOptions{});
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto bus = Bus::Open(std::move(*store), BusOptions{});
  ASSERT_TRUE(bus.ok()) << bus.status().ToString();
  ws::ServerOptions o;
  o.listen = "0.0.0.0:0";
  auto refused = ws::Server::Create(**bus, o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("--auth-secret-file"), std::string::npos);
  o.auth_secret = "short";
  auto short_secret = ws::Server::Create(**bus, o);
  ASSERT_FALSE(short_secret.ok());
  EXPECT_NE(short_secret.status().message().find("at least 32"), std::string::npos);
  o.auth_secret = kSecret;
  auto with_secret = ws::Server::Create(**bus, o);
  EXPECT_TRUE(with_secret.ok()) << with_secret.status().ToString();
  with_secret = Status::Unavailable("released");  // frees the port
  o.auth_secret.clear();
  o.insecure_no_auth = true;
  auto insecure = ws::Server::Create(**bus, o);
  EXPECT_TRUE(insecure.ok()) << insecure.status().ToString();
  insecure = Status::Unavailable("released");
  (*bus)->Close();
}

}  // namespace
}  // namespace tailbus::server_test
