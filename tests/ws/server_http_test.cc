// The HTTP API against an in-process server: ingest (JSON, arrays, NDJSON),
// errors with details, history pages, sessions, status, metrics, CORS, 404/405,
// malformed requests, 411/413 and 100-continue.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/ws/server_test_support.h"
#include "ws/event_loop.h"

namespace tailbus::server_test {
namespace {

TEST(ServerHttp, PostOneEventArrayAndNdjson) {
  TestServer server;
  HttpReply one =
      Http(server.port(), "POST", "/api/events", Ev("s1", "message", "\"content\":\"hi\""));
  ASSERT_EQ(one.status, 200) << one.body;
  auto j1 = one.Json();
  EXPECT_EQ(j1["offsets"][0].GetInt(), 1);
  EXPECT_EQ(j1["first"].GetInt(), 1);
  EXPECT_EQ(j1["last"].GetInt(), 1);

  HttpReply arr =
      Http(server.port(), "POST", "/api/events", "[" + Ev("s1", "a") + "," + Ev("s2", "b") + "]");
  ASSERT_EQ(arr.status, 200) << arr.body;
  EXPECT_EQ(arr.Json()["first"].GetInt(), 2);
  EXPECT_EQ(arr.Json()["last"].GetInt(), 3);

  HttpReply nd =
      Http(server.port(), "POST", "/api/events", Ev("s3", "x") + "\n\n" + Ev("s3", "y") + "\n",
           {{"Content-Type", "application/x-ndjson"}});
  ASSERT_EQ(nd.status, 200) << nd.body;
  EXPECT_EQ(nd.Json()["offsets"].Size(), 2u);
  EXPECT_EQ(server.bus().head(), 5);
}

TEST(ServerHttp, BadEventIsRejectedWholeWithDetails) {
  TestServer server;
  HttpReply r =
      Http(server.port(), "POST", "/api/events", "[" + Ev("s1", "a") + ",{\"event_type\":\"b\"}]");
  ASSERT_EQ(r.status, 400) << r.body;
  auto j = r.Json();
  EXPECT_EQ(Str(j, "code"), "invalid_event");
  EXPECT_NE(Str(j, "error").find("events[1].session_id"), std::string::npos) << r.body;
  ASSERT_TRUE(j["details"].IsArray());
  ASSERT_GE(j["details"].Size(), 1u);
  EXPECT_EQ(j["details"][0]["index"].GetInt(), 1);
  EXPECT_EQ(Str(j["details"][0], "field"), "session_id");
  EXPECT_EQ(server.bus().head(), 0);  // nothing appended

  HttpReply bad_json = Http(server.port(), "POST", "/api/events", "{nope");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_TRUE(bad_json.Json()["details"][0]["index"].IsNull());
  HttpReply empty = Http(server.port(), "POST", "/api/events", "");
  EXPECT_EQ(empty.status, 400) << empty.body;
}

TEST(ServerHttp, HistoryPagesWithFilterAndNextAfter) {
  TestServer server;
  std::vector<std::string> events;
  for (int i = 0; i < 30; ++i) {
    events.push_back(Ev(i % 2 ? "odd" : "even", i % 3 ? "tool_call" : "message",
                        "\"tool_name\":\"t" + std::to_string(i % 5) + "\""));
  }
  server.Append(events);
  HttpReply all = Http(server.port(), "GET", "/api/events?after=0&limit=7");
  ASSERT_EQ(all.status, 200) << all.body;
  auto j = all.Json();
  EXPECT_EQ(j["events"].Size(), 7u);
  EXPECT_EQ(j["next_after"].GetInt(), 7);
  EXPECT_TRUE(j["has_more"].GetBool());
  EXPECT_EQ(j["head"].GetInt(), 30);
  EXPECT_FALSE(Str(j, "epoch").empty());

  // Page through with a filter; every event matches and offsets increase.
  int64_t after = 0;
  std::vector<int64_t> seen;
  for (int pages = 0; pages < 20; ++pages) {
    HttpReply page = Http(server.port(), "GET",
                          "/api/events?limit=4&after=" + std::to_string(after) +
                              "&filter=%7B%22event_types%22%3A%5B%22tool_call%22%5D%7D");
    ASSERT_EQ(page.status, 200) << page.body;
    auto p = page.Json();
    for (const auto& e : p["events"].GetArray()) {
      EXPECT_EQ(Str(e, "event_type"), "tool_call");
      seen.push_back(e["offset"].GetInt64());
    }
    after = p["next_after"].GetInt64();
    if (!p["has_more"].GetBool()) break;
  }
  EXPECT_EQ(seen.size(), 20u);  // i % 3 != 0 for 20 of 0..29
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));

  HttpReply session = Http(server.port(), "GET", "/api/sessions/odd/events?limit=100");
  ASSERT_EQ(session.status, 200);
  auto sj = session.Json();
  for (const auto& e : sj["events"].GetArray()) EXPECT_EQ(Str(e, "session_id"), "odd");
  EXPECT_EQ(sj["events"].Size(), 15u);
  // A filter cannot widen a session-bound path.
  HttpReply widened =
      Http(server.port(), "GET",
           "/api/sessions/odd/events?filter=%7B%22session_ids%22%3A%5B%22even%22%5D%7D");
  ASSERT_EQ(widened.status, 200);
  EXPECT_EQ(widened.Json()["events"].Size(), 0u);
  EXPECT_EQ(Http(server.port(), "GET", "/api/sessions/none/events").status, 404);
}

TEST(ServerHttp, HistoryParameterErrors) {
  TestServer server;
  EXPECT_EQ(Http(server.port(), "GET", "/api/events?after=-1").status, 400);
  EXPECT_EQ(Http(server.port(), "GET", "/api/events?limit=0").status, 400);
  EXPECT_EQ(Http(server.port(), "GET", "/api/events?limit=100000").status, 400);
  HttpReply filter = Http(server.port(), "GET", "/api/events?filter=%7B%22nope%22%3A1%7D");
  EXPECT_EQ(filter.status, 400);
  EXPECT_EQ(Str(filter.Json(), "code"), "bad_filter");
  EXPECT_NE(Str(filter.Json(), "error").find("filter.nope"), std::string::npos) << filter.body;
  HttpReply dup = Http(server.port(), "GET", "/api/events?after=1&after=2");
  EXPECT_EQ(dup.status, 400);
  HttpReply epoch = Http(server.port(), "GET", "/api/events?epoch=other");
  EXPECT_EQ(epoch.status, 409);
  EXPECT_EQ(Str(epoch.Json(), "code"), "epoch_mismatch");
}

TEST(ServerHttp, SessionsListGetAndDelete) {
  TestServer server;
  server.Append({Ev("a", "x"), Ev("b", "error"), Ev("a", "y", "\"cost_tokens\":7")});
  HttpReply list = Http(server.port(), "GET", "/api/sessions?limit=10");
  ASSERT_EQ(list.status, 200) << list.body;
  auto l = list.Json();
  ASSERT_EQ(l["sessions"].Size(), 2u);
  EXPECT_EQ(Str(l["sessions"][0], "session_id"), "a");  // newest activity first
  EXPECT_EQ(l["sessions"][0]["event_count"].GetInt(), 2);
  EXPECT_EQ(l["sessions"][0]["total_cost_tokens"].GetInt(), 7);
  EXPECT_EQ(l["sessions"][1]["error_count"].GetInt(), 1);
  HttpReply page2 = Http(server.port(), "GET", "/api/sessions?limit=1&offset=1");
  EXPECT_EQ(Str(page2.Json()["sessions"][0], "session_id"), "b");

  HttpReply one = Http(server.port(), "GET", "/api/sessions/a");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(Str(one.Json(), "session_id"), "a");
  EXPECT_EQ(Http(server.port(), "GET", "/api/sessions/zzz").status, 404);

  HttpReply del = Http(server.port(), "DELETE", "/api/sessions/a");
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_FALSE(del.Json()["hard"].GetBool());
  EXPECT_EQ(Http(server.port(), "GET", "/api/sessions/a").status, 404);
  HttpReply hard = Http(server.port(), "DELETE", "/api/sessions/b?hard=true");
  ASSERT_EQ(hard.status, 200) << hard.body;
  EXPECT_TRUE(hard.Json()["hard"].GetBool());
  EXPECT_EQ(Http(server.port(), "GET", "/api/sessions").Json()["sessions"].Size(), 0u);
}

TEST(ServerHttp, StatusMetricsAndWebSocketMetrics) {
  TestServer server;
  server.Append({Ev("a", "x")});
  HttpReply status = Http(server.port(), "GET", "/api/status");
  ASSERT_EQ(status.status, 200);
  auto s = status.Json();
  EXPECT_EQ(Str(s, "version"), TAILBUS_VERSION);
  EXPECT_EQ(s["head"].GetInt(), 1);
  EXPECT_EQ(s["earliest"].GetInt(), 1);
  EXPECT_GT(s["database_bytes"].GetInt64(), 0);
  EXPECT_TRUE(s.HasMember("uptime_seconds"));
  EXPECT_TRUE(s.HasMember("connections"));
  EXPECT_TRUE(s.HasMember("subscribers"));
  const char* loop = std::getenv("TAILBUS_TEST_EVENT_LOOP");
  EXPECT_EQ(Str(s, "event_loop"), loop != nullptr && *loop
                                      ? std::string(loop)
                                      : std::string(ws::EpollLoopSupported() ? "epoll" : "poll"));

  Http(server.port(), "POST", "/api/events", Ev("a", "y"));
  Http(server.port(), "POST", "/api/events", "{bad");
  HttpReply metrics = Http(server.port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.headers["content-type"].rfind("text/plain", 0), 0u);
  for (const char* name :
       {"tailbus_appended_events_total 1", "tailbus_delivered_events_total",
        "tailbus_delivered_bytes_total", "tailbus_connections ", "tailbus_subscribers ",
        "tailbus_commit_latency_seconds_bucket", "tailbus_delivery_latency_seconds_bucket",
        "tailbus_slow_client_closes_total",
        "tailbus_rejected_inputs_total{reason=\"invalid_event\"} 1"}) {
    EXPECT_NE(metrics.body.find(name), std::string::npos) << name;
  }

  auto ws = WsClient::Connect(server.port(), "/ws/events/a");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  HttpReply wsm = Http(server.port(), "GET", "/api/websocket-metrics");
  ASSERT_EQ(wsm.status, 200);
  auto w = wsm.Json();
  EXPECT_EQ(w["active_sessions"].GetInt(), 1);
  EXPECT_EQ(w["total_connected_clients"].GetInt(), 1);
  EXPECT_TRUE(w.HasMember("total_events_broadcast"));
  EXPECT_TRUE(w.HasMember("total_bytes_sent"));
  EXPECT_EQ(w["sessions"]["a"]["connected_clients"].GetInt(), 1);
  EXPECT_TRUE(w["sessions"]["a"].HasMember("total_events_sent"));
  EXPECT_TRUE(w["sessions"]["a"].HasMember("total_bytes_sent"));
  EXPECT_TRUE(w["sessions"]["a"].HasMember("uptime_seconds"));
}

TEST(ServerHttp, NotFoundMethodNotAllowedAndCors) {
  TestServer server;
  HttpReply nf = Http(server.port(), "GET", "/nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(Str(nf.Json(), "code"), "not_found");
  HttpReply na = Http(server.port(), "GET", "/api/sessions/a/other");
  EXPECT_EQ(na.status, 404);
  HttpReply put = Http(server.port(), "PUT", "/api/events", "x");
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(Str(put.Json(), "code"), "method_not_allowed");
  HttpReply del = Http(server.port(), "DELETE", "/api/status");
  EXPECT_EQ(del.status, 405);
  EXPECT_EQ(del.headers["allow"], "GET, OPTIONS");
  HttpReply plain_ws = Http(server.port(), "GET", "/ws");
  EXPECT_EQ(plain_ws.status, 400);

  // Loopback default: any origin.
  HttpReply pre =
      Http(server.port(), "OPTIONS", "/api/events", {},
           {{"Origin", "http://app.example"}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.headers["access-control-allow-origin"], "*");
  EXPECT_NE(pre.headers["access-control-allow-methods"].find("POST"), std::string::npos);
  HttpReply get = Http(server.port(), "GET", "/api/status", {}, {{"Origin", "http://x"}});
  EXPECT_EQ(get.headers["access-control-allow-origin"], "*");
}

TEST(ServerHttp, ConfiguredCorsOrigins) {
  TestServerOptions opts;
  opts.server.allowed_origins = {"http://good.example"};
  TestServer server(opts);
  HttpReply good =
      Http(server.port(), "GET", "/api/status", {}, {{"Origin", "http://good.example"}});
  EXPECT_EQ(good.headers["access-control-allow-origin"], "http://good.example");
  EXPECT_EQ(good.headers["vary"], "Origin");
  HttpReply bad =
      Http(server.port(), "GET", "/api/status", {}, {{"Origin", "http://evil.example"}});
  EXPECT_EQ(bad.status, 200);
  EXPECT_EQ(bad.headers.count("access-control-allow-origin"), 0u);
  int status = 0;
  EXPECT_FALSE(WsClient::Connect(server.port(), "/ws", {{"Origin", "http://evil.example"}}, 0,
                                 &status) == nullptr);  // upgrade happens, then a close
  auto ws = WsClient::Connect(server.port(), "/ws", {{"Origin", "http://evil.example"}});
  ASSERT_TRUE(ws);
  auto err = ws->RecvType("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "origin_not_allowed");
  EXPECT_EQ(ws->WaitClose(), 4003);  // wire::kCloseOriginNotAllowed
}

TEST(ServerHttp, LengthRequiredAndBodyTooLargeAndContinue) {
  TestServerOptions opts;
  opts.server.max_body_bytes = 1000;
  TestServer server(opts);
  const std::string host = "Host: x\r\n";
  HttpReply no_len = RawHttp(server.port(), "POST /api/events HTTP/1.1\r\n" + host + "\r\n");
  EXPECT_EQ(no_len.status, 411);
  EXPECT_EQ(Str(no_len.Json(), "code"), "length_required");
  HttpReply chunked =
      RawHttp(server.port(), "POST /api/events HTTP/1.1\r\n" + host +
                                 "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.status, 411);
  // Over the cap: answered from the headers alone, before any body byte is sent.
  HttpReply big = RawHttp(server.port(),
                          "POST /api/events HTTP/1.1\r\n" + host + "Content-Length: 1001\r\n\r\n");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(Str(big.Json(), "code"), "body_too_large");
  EXPECT_TRUE(big.closed);
  // Expect: 100-continue gets the interim response, then the real one.
  auto socket = Socket::Connect(server.port());
  ASSERT_TRUE(socket);
  const std::string body = Ev("s", "a");
  ASSERT_TRUE(socket->SendAll(
      "POST /api/events HTTP/1.1\r\n" + host +
      "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  HttpReply cont = ReadHttpReply(*socket, kWait);
  EXPECT_EQ(cont.status, 100);
  ASSERT_TRUE(socket->SendAll(body));
  HttpReply done = ReadHttpReply(*socket, kWait);
  EXPECT_EQ(done.status, 200) << done.body;
  // The server is still fine.
  EXPECT_EQ(Http(server.port(), "GET", "/api/status").status, 200);
}

TEST(ServerHttp, TooManyEventsPerPublish) {
  TestServerOptions opts;
  opts.server.max_events_per_publish = 3;
  TestServer server(opts);
  std::string arr =
      "[" + Ev("s", "a") + "," + Ev("s", "a") + "," + Ev("s", "a") + "," + Ev("s", "a") + "]";
  HttpReply r = Http(server.port(), "POST", "/api/events", arr);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_EQ(Str(r.Json(), "code"), "too_many_events");
  std::string nd;
  for (int i = 0; i < 4; ++i) nd += Ev("s", "a") + "\n";
  HttpReply n =
      Http(server.port(), "POST", "/api/events", nd, {{"Content-Type", "application/x-ndjson"}});
  EXPECT_EQ(n.status, 413);
  EXPECT_EQ(server.bus().head(), 0);
}

TEST(ServerHttp, KeepAliveServesSeveralRequestsOnOneConnection) {
  TestServer server;
  auto socket = Socket::Connect(server.port());
  ASSERT_TRUE(socket);
  for (int i = 0; i < 3; ++i) {
    const std::string body = Ev("k", "a");
    ASSERT_TRUE(socket->SendAll("POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body));
    HttpReply r = ReadHttpReply(*socket, kWait);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json()["first"].GetInt(), i + 1);
  }
  ASSERT_TRUE(socket->SendAll("GET /api/events?after=0 HTTP/1.1\r\nHost: x\r\n\r\n"));
  HttpReply page = ReadHttpReply(*socket, kWait);
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.Json()["events"].Size(), 3u);
}

TEST(ServerHttp, UnavailableWhenTheLogCannotWrite) {
  TestServerOptions opts;
  opts.storage.max_page_count = 64;  // a tiny "disk"
  TestServer server(opts);
  std::string big(20'000, 'x');
  int status = 200;
  std::string body;
  for (int i = 0; i < 100 && status == 200; ++i) {
    std::string arr = "[";
    for (int k = 0; k < 10; ++k) {
      if (k > 0) arr += ',';
      arr += Ev("s", "a", "\"blob\":\"" + big + "\"");
    }
    arr += "]";
    HttpReply r = Http(server.port(), "POST", "/api/events", arr);
    status = r.status;
    body = r.body;
  }
  ASSERT_EQ(status, 503) << body;
  rapidjson::Document j;
  j.Parse(body.c_str());
  EXPECT_EQ(Str(j, "code"), "unavailable");
  EXPECT_NE(Str(j, "error").find("DiskFull"), std::string::npos) << body;
  EXPECT_EQ(Http(server.port(), "GET", "/api/status").status, 200);  // still serving reads
}

}  // namespace
}  // namespace tailbus::server_test
