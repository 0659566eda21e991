// WebSocket subscriptions against an in-process server: hello, batch and
// single frames, every filter kind, session isolation, batch windows,
// caught_up, resume, resets, publish/message/subscribe/ping, bad input.
#include <gtest/gtest.h>

#include <set>

#include "tests/ws/server_test_support.h"

namespace tailbus::server_test {
namespace {

// Reads frames until `want` events arrived (or the bound passes); returns their offsets.
std::vector<int64_t> ReadEvents(WsClient& ws, size_t want,
                                std::vector<std::string>* frames = nullptr,
                                std::chrono::milliseconds timeout = kWait) {
  std::vector<int64_t> offsets;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (offsets.size() < want) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto doc = ws.RecvJson(left);
    if (!doc) break;
    if (frames) frames->push_back(ws.last_text());
    for (const rapidjson::Value* e : EventsOf(*doc)) offsets.push_back(Int(*e, "offset"));
  }
  return offsets;
}

// Events until caught_up (which must come); returns their offsets.
std::vector<int64_t> ReadUntilCaughtUp(WsClient& ws, int64_t* caught_up_offset = nullptr) {
  std::vector<int64_t> offsets;
  while (true) {
    auto doc = ws.RecvJson();
    if (!doc) {
      ADD_FAILURE() << "no caught_up; last: " << ws.last_text();
      return offsets;
    }
    if (Str(*doc, "type") == "caught_up") {
      if (caught_up_offset) *caught_up_offset = Int(*doc, "offset");
      return offsets;
    }
    for (const rapidjson::Value* e : EventsOf(*doc)) offsets.push_back(Int(*e, "offset"));
  }
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

TEST(ServerWs, HelloThenLiveBatches) {
  TestServer server;
  server.Append({Ev("s", "old")});
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  auto hello = ws->RecvJson();
  ASSERT_TRUE(hello);
  EXPECT_EQ(Str(*hello, "type"), "hello");
  EXPECT_EQ(Str(*hello, "epoch"), server.bus().epoch());
  EXPECT_EQ(Int(*hello, "head"), 1);
  EXPECT_EQ(Int(*hello, "earliest"), 1);
  EXPECT_TRUE((*hello)["session_id"].IsNull());
  EXPECT_TRUE((*hello)["filter"].IsObject());
  EXPECT_TRUE((*hello)["after"].IsNull());
  EXPECT_EQ(Int(*hello, "batch_size"), 50);
  EXPECT_EQ(Int(*hello, "batch_window_ms"), 0);
  EXPECT_EQ(Str(*hello, "server"), "tailbus/" TAILBUS_VERSION);

  server.Append({Ev("s", "a"), Ev("t", "b"), Ev("s", "c")});
  std::vector<std::string> frames;
  EXPECT_EQ(ReadEvents(*ws, 3, &frames), Range(2, 4));  // live only: not the old event
  rapidjson::Document first;
  first.Parse(frames[0].c_str());
  EXPECT_EQ(Str(first, "type"), "batch");
  EXPECT_EQ(Int(first, "count"), static_cast<int64_t>(first["events"].Size()));
  EXPECT_EQ(Int(first, "first_offset"), 2);
  EXPECT_FALSE(Str(first, "timestamp").empty());
  // Even one event comes as a batch when batch_size > 1 (§4 clients read count/events).
  server.Append({Ev("s", "d")});
  auto one = ws->RecvJson();
  ASSERT_TRUE(one);
  EXPECT_EQ(Str(*one, "type"), "batch");
  EXPECT_EQ(Int(*one, "count"), 1);
}

TEST(ServerWs, SingleEventFramesAndTheTypeMemberRule) {
  TestServer server;
  auto ws = WsClient::Connect(server.port(), "/ws?batch_size=1");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  server.Append({Ev("s", "tool_call", "\"tool_name\":\"search\""),
                 R"({"session_id":"s","type":"assistant","content":"hello","streaming":true})"});
  auto e1 = ws->RecvJson();
  ASSERT_TRUE(e1);
  EXPECT_EQ(Str(*e1, "type"), "event");
  EXPECT_EQ(Str(*e1, "event_type"), "tool_call");
  EXPECT_EQ(Str(*e1, "tool_name"), "search");
  EXPECT_FALSE(Str(*e1, "timestamp").empty());
  EXPECT_EQ(Int(*e1, "offset"), 1);
  auto e2 = ws->RecvJson();
  ASSERT_TRUE(e2);
  EXPECT_EQ(Str(*e2, "type"), "assistant");  // the event's own type wins (background §1)
  EXPECT_EQ(Str(*e2, "event_type"), "assistant");
  EXPECT_EQ(Str(*e2, "content"), "hello");
  EXPECT_NE(ws->last_text().find("\"type\":\"assistant\""), std::string::npos);
  EXPECT_EQ(ws->last_text().find("\"type\":\"event\""), std::string::npos);
}

struct FilterCase {
  const char* name;
  const char* filter;             // URL-encoded by hand below (simple chars only)
  std::vector<int64_t> expected;  // offsets of the fixture below
};

TEST(ServerWs, FiltersOfEveryKind) {
  TestServer server;
  server.Append({
      Ev("s1", "tool_call",
         R"("tool_name":"search","status":"ok","agent_id":"a1","model":"m1","feature_id":"f1","cost_tokens":5,"duration_ms":10)"),
      Ev("s2", "tool_call",
         R"("tool_name":"fetch","status":"error","agent_id":"a2","model":"m2","feature_id":"f2","cost_tokens":50,"duration_ms":500)"),
      Ev("s1", "message", R"("agent_id":"a1","total_tokens":100)"),
      Ev("s3", "error", R"("status":"failed","execution_duration_seconds":2)"),
      Ev("s2", "openai_call", R"("model":"m1","prompt_tokens":3,"completion_tokens":4)"),
  });
  const std::vector<FilterCase> cases = {
      {"event_types", R"({"event_types":["tool_call","error"]})", {1, 2, 4}},
      {"session_id", R"({"session_id":"s2"})", {2, 5}},
      {"session_ids", R"({"session_ids":["s1","s3"]})", {1, 3, 4}},
      {"agent_ids", R"({"agent_ids":["a1"]})", {1, 3}},
      {"tool_names", R"({"tool_names":["fetch"]})", {2}},
      {"statuses", R"({"statuses":["error","failed"]})", {2, 4}},
      {"models", R"({"models":["m1"]})", {1, 5}},
      {"feature_ids", R"({"feature_ids":["f2"]})", {2}},
      {"cost_threshold_tokens", R"({"cost_threshold_tokens":7})", {2, 3}},
      {"min_duration_ms", R"({"min_duration_ms":500})", {2, 4}},
      {"any", R"({"any":[{"tool_names":["search"]},{"event_types":["error"]}]})", {1, 4}},
      {"and", R"({"event_types":["tool_call"],"session_ids":["s2"]})", {2}},
      {"empty", R"({})", {1, 2, 3, 4, 5}},
  };
  for (const FilterCase& c : cases) {
    SCOPED_TRACE(c.name);
    std::string encoded;
    for (char ch : std::string(c.filter)) {
      if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_') {
        encoded += ch;
      } else {
        char buf[4];
        std::snprintf(buf, sizeof(buf), "%%%02X", static_cast<unsigned char>(ch));
        encoded += buf;
      }
    }
    auto ws = WsClient::Connect(server.port(), "/ws?after=0&filter=" + encoded);
    ASSERT_TRUE(ws);
    auto hello = ws->RecvType("hello");
    ASSERT_TRUE(hello) << ws->last_text();
    EXPECT_EQ(ReadUntilCaughtUp(*ws), c.expected);
  }
}

TEST(ServerWs, SessionEndpointNeverDeliversAnotherSession) {
  TestServer server;
  server.Append({Ev("a", "x"), Ev("b", "x"), Ev("a", "y")});
  // A filter naming another session cannot widen the path's session.
  auto widened = WsClient::Connect(
      server.port(), "/ws/events/a?after=0&filter=%7B%22session_ids%22%3A%5B%22b%22%5D%7D");
  ASSERT_TRUE(widened);
  auto hello = widened->RecvType("hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(Str(*hello, "session_id"), "a");
  EXPECT_TRUE(ReadUntilCaughtUp(*widened).empty());

  auto ws = WsClient::Connect(server.port(), "/ws/events/a?after=0&batch_size=1");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  EXPECT_EQ(ReadUntilCaughtUp(*ws), (std::vector<int64_t>{1, 3}));
  auto narrowed = WsClient::Connect(server.port(), "/ws?session_id=b&after=0");
  ASSERT_TRUE(narrowed);
  ASSERT_TRUE(narrowed->RecvType("hello"));
  EXPECT_EQ(ReadUntilCaughtUp(*narrowed), (std::vector<int64_t>{2}));

  // Live: interleaved sessions; the session endpoint sees only its own.
  std::vector<std::string> batch;
  for (int i = 0; i < 200; ++i) batch.push_back(Ev(i % 2 ? "a" : "b", "live"));
  server.Append(batch);
  std::vector<std::string> frames;
  std::vector<int64_t> got = ReadEvents(*ws, 100, &frames);
  EXPECT_EQ(got.size(), 100u);
  for (const std::string& f : frames) EXPECT_EQ(f.find("\"session_id\":\"b\""), std::string::npos);
  // A contradicting session_id on a session path is refused.
  auto contradict = WsClient::Connect(server.port(), "/ws/events/a?session_id=b");
  ASSERT_TRUE(contradict);
  auto err = contradict->RecvType("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(contradict->WaitClose(), 4400);
}

TEST(ServerWs, BatchWindowHoldsAPartialBatch) {
  TestServerOptions opts;
  opts.server.max_batch_window_ms = 600'000;
  TestServer server(opts);
  auto ws = WsClient::Connect(server.port(), "/ws?batch_size=10&batch_window_ms=4000");
  ASSERT_TRUE(ws);
  auto hello = ws->RecvType("hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(Int(*hello, "batch_window_ms"), 4000);
  server.Append({Ev("s", "a")});
  server.Append({Ev("s", "b")});
  auto frame = ws->RecvJson();
  ASSERT_TRUE(frame);
  EXPECT_EQ(Int(*frame, "count"), 2);  // held until the window passed, then sent together

  // A full batch does not wait for the window.
  auto full = WsClient::Connect(server.port(), "/ws?batch_size=2&batch_window_ms=600000");
  ASSERT_TRUE(full);
  ASSERT_TRUE(full->RecvType("hello"));
  server.Append({Ev("s", "c"), Ev("s", "d"), Ev("s", "e")});
  auto f1 = full->RecvJson();
  ASSERT_TRUE(f1) << "a full batch must not wait for the 10-minute window";
  EXPECT_EQ(Int(*f1, "count"), 2);
  // poll_interval is accepted as an alias (background.md §4).
  auto alias = WsClient::Connect(server.port(), "/ws?poll_interval=100");
  ASSERT_TRUE(alias);
  auto h = alias->RecvType("hello");
  ASSERT_TRUE(h);
  EXPECT_EQ(Int(*h, "batch_window_ms"), 100);
}

TEST(ServerWs, CaughtUpOnceAfterHistoryThenLive) {
  TestServer server;
  std::vector<std::string> events;
  for (int i = 0; i < 120; ++i) events.push_back(Ev("s", "h"));
  server.Append(events);
  auto ws = WsClient::Connect(server.port(), "/ws?after=0&batch_size=50");
  ASSERT_TRUE(ws);
  auto hello = ws->RecvType("hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(Int(*hello, "after"), 0);
  std::vector<std::string> frames;
  int64_t caught_up = 0;
  EXPECT_EQ(ReadUntilCaughtUp(*ws, &caught_up), Range(1, 120));
  EXPECT_EQ(caught_up, 120);
  server.Append({Ev("s", "live")});
  std::vector<std::string> skipped;
  EXPECT_EQ(ReadEvents(*ws, 1, &skipped), std::vector<int64_t>{121});
  for (const std::string& f : skipped) EXPECT_EQ(f.find("caught_up"), std::string::npos);

  // Resume in the middle.
  auto resumed = WsClient::Connect(server.port(), "/ws?after=60&batch_size=1000");
  ASSERT_TRUE(resumed);
  ASSERT_TRUE(resumed->RecvType("hello"));
  EXPECT_EQ(ReadUntilCaughtUp(*resumed), Range(61, 121));
}

TEST(ServerWs, EpochMismatchAndOffsetAheadReset) {
  TestServer server;
  server.Append({Ev("s", "a"), Ev("s", "b")});
  auto ws = WsClient::Connect(server.port(), "/ws?after=1&epoch=not-this-one");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  auto reset = ws->RecvJson();
  ASSERT_TRUE(reset);
  EXPECT_EQ(Str(*reset, "type"), "reset");
  EXPECT_EQ(Str(*reset, "reason"), "epoch_mismatch");
  EXPECT_EQ(Str(*reset, "epoch"), server.bus().epoch());
  EXPECT_EQ(Int(*reset, "earliest"), 1);
  EXPECT_EQ(ReadUntilCaughtUp(*ws), Range(1, 2));  // from the earliest again

  auto ahead = WsClient::Connect(server.port(), "/ws?after=99");
  ASSERT_TRUE(ahead);
  ASSERT_TRUE(ahead->RecvType("hello"));
  auto r2 = ahead->RecvType("reset");
  ASSERT_TRUE(r2);
  EXPECT_EQ(Str(*r2, "reason"), "offset_ahead");

  auto strict = WsClient::Connect(server.port(), "/ws?after=1&epoch=nope&strict=1");
  ASSERT_TRUE(strict);
  ASSERT_TRUE(strict->RecvType("hello"));
  auto err = strict->RecvType("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "epoch_mismatch");
  EXPECT_EQ(strict->WaitClose(), 4409);

  // The right epoch resumes normally.
  auto ok = WsClient::Connect(server.port(), "/ws?after=1&epoch=" + server.bus().epoch());
  ASSERT_TRUE(ok);
  ASSERT_TRUE(ok->RecvType("hello"));
  EXPECT_EQ(ReadUntilCaughtUp(*ok), std::vector<int64_t>{2});
}

TEST(ServerWs, EvictedOffsetReset) {
  TestServerOptions opts;
  opts.bus.retention.max_events = 10;
  opts.bus.retention_interval = std::chrono::milliseconds(10);
  TestServer server(opts);
  std::vector<std::string> events;
  for (int i = 0; i < 40; ++i) events.push_back(Ev("s", "e"));
  server.Append(events);
  ASSERT_TRUE(WaitUntil([&] { return server.bus().earliest() > 20; }));
  const int64_t earliest = server.bus().earliest();
  auto ws = WsClient::Connect(server.port(), "/ws?after=3&batch_size=100");
  ASSERT_TRUE(ws);
  auto hello = ws->RecvType("hello");
  ASSERT_TRUE(hello);
  auto reset = ws->RecvJson();
  ASSERT_TRUE(reset);
  EXPECT_EQ(Str(*reset, "type"), "reset");
  EXPECT_EQ(Str(*reset, "reason"), "offset_evicted");
  EXPECT_GE(Int(*reset, "earliest"), earliest);
  std::vector<int64_t> got = ReadUntilCaughtUp(*ws);
  ASSERT_FALSE(got.empty());
  EXPECT_GE(got.front(), earliest);
  EXPECT_EQ(got.back(), 40);

  auto strict = WsClient::Connect(server.port(), "/ws?after=3&strict=true");
  ASSERT_TRUE(strict);
  ASSERT_TRUE(strict->RecvType("hello"));
  auto err = strict->RecvType("error");
  ASSERT_TRUE(err);
  EXPECT_EQ(Str(*err, "code"), "offset_evicted");
  EXPECT_EQ(strict->WaitClose(), 4409);
  // after=0 means "everything retained": no reset.
  auto all = WsClient::Connect(server.port(), "/ws?after=0&batch_size=100");
  ASSERT_TRUE(all);
  ASSERT_TRUE(all->RecvType("hello"));
  auto next = all->RecvJson();
  ASSERT_TRUE(next);
  EXPECT_NE(Str(*next, "type"), "reset");
}

TEST(ServerWs, PublishAckAndErrorsKeepTheConnection) {
  TestServer server;
  auto ws = WsClient::Connect(server.port(), "/ws?batch_size=1");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  ASSERT_TRUE(ws->SendText(R"({"type":"publish","request_id":"r1","event":)" + Ev("p", "a") + "}"));
  std::vector<std::string> skipped;
  auto ack = ws->RecvType("ack", kWait, &skipped);
  ASSERT_TRUE(ack);
  EXPECT_EQ(Str(*ack, "request_id"), "r1");
  EXPECT_EQ((*ack)["offsets"][0].GetInt(), 1);
  ASSERT_TRUE(ws->SendText(R"({"type":"publish","request_id":2,"events":[)" + Ev("p", "b") + "," +
                           Ev("p", "c") + "]}"));
  auto ack2 = ws->RecvType("ack");
  ASSERT_TRUE(ack2);
  EXPECT_EQ(Int(*ack2, "request_id"), 2);
  EXPECT_EQ((*ack2)["offsets"].Size(), 2u);

  struct Bad {
    std::string message;
    std::string code;
  };
  const std::vector<Bad> bad = {
      {R"({"type":"publish","request_id":3,"events":[{"session_id":"p","event_type":"ok"},{"event_type":"x"}]})",
       "invalid_event"},
      {R"({"type":"publish","request_id":4})", "bad_message"},
      {R"({"type":"nope"})", "unknown_type"},
      {R"({"no_type":1})", "bad_message"},
      {R"([1,2])", "bad_message"},
      {R"({"type":"subscribe","filter":{"bogus":1}})", "bad_filter"},
      {R"({"type":"subscribe","batch_size":0})", "bad_request"},
      {R"({"type":"subscribe","surprise":0})", "bad_message"},
      {"{not json", "bad_json"},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.message);
    ASSERT_TRUE(ws->SendText(b.message));
    auto err = ws->RecvType("error");
    ASSERT_TRUE(err);
    EXPECT_EQ(Str(*err, "code"), b.code);
    if (b.code == "invalid_event") {
      EXPECT_EQ(Int(*err, "request_id"), 3);
      ASSERT_TRUE((*err)["details"].IsArray());
      EXPECT_EQ((*err)["details"][0]["index"].GetInt(), 1);
      EXPECT_EQ(Str((*err)["details"][0], "field"), "session_id");
    }
  }
  ASSERT_TRUE(ws->SendFrame(2, "binary"));
  auto bin = ws->RecvType("error");
  ASSERT_TRUE(bin);
  EXPECT_EQ(Str(*bin, "code"), "binary_not_supported");
  ASSERT_TRUE(ws->SendText(R"({"type":"ping"})"));
  EXPECT_TRUE(ws->RecvType("pong"));
  ASSERT_TRUE(ws->SendText("ping"));
  bool pong = false;
  for (int i = 0; i < 10 && !pong; ++i) {
    WsMessage m = ws->Recv();
    pong = m.kind == WsMessage::kText && m.data == "pong";
  }
  EXPECT_TRUE(pong);
  // Still subscribed and delivering; nothing of the bad batch was appended.
  server.Append({Ev("p", "after")});
  // (The connection's own publishes, offsets 1-3, may still be on their way to
  // it as a subscriber: read until the new event.)
  int64_t after_offset = 0;
  while (after_offset == 0) {
    auto doc = ws->RecvJson();
    ASSERT_TRUE(doc);
    for (const rapidjson::Value* e : EventsOf(*doc)) {
      if (Str(*e, "event_type") == "after") after_offset = Int(*e, "offset");
    }
  }
  EXPECT_EQ(after_offset, 4);
}

TEST(ServerWs, ChatMessageReachesAnotherSubscriberOfTheSession) {
  TestServer server;
  auto a = WsClient::Connect(server.port(), "/ws?session_id=chat1");
  auto b = WsClient::Connect(server.port(), "/ws?session_id=chat1");
  auto other = WsClient::Connect(server.port(), "/ws?session_id=chat2");
  ASSERT_TRUE(a && b && other);
  auto hello = b->RecvType("hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(Int(*hello, "batch_size"), 1);  // chat clients get single-event frames
  ASSERT_TRUE(a->RecvType("hello"));
  ASSERT_TRUE(other->RecvType("hello"));
  ASSERT_TRUE(
      a->SendText(R"({"type":"message","session_id":"chat1","content":"What is the diagnosis?"})"));
  auto got = b->RecvJson();
  ASSERT_TRUE(got);
  EXPECT_EQ(Str(*got, "type"), "message");
  EXPECT_EQ(Str(*got, "content"), "What is the diagnosis?");
  EXPECT_EQ(Str(*got, "session_id"), "chat1");
  EXPECT_TRUE(a->RecvType("ack"));
  // session_id may be left out on a bound connection.
  ASSERT_TRUE(a->SendText(R"({"type":"message","content":"second"})"));
  auto second = b->RecvJson();
  ASSERT_TRUE(second);
  EXPECT_EQ(Str(*second, "content"), "second");
  EXPECT_EQ(Str(*second, "session_id"), "chat1");
  // The other session saw nothing.
  EXPECT_EQ(other->Recv(300ms).kind, WsMessage::kTimeout);
}

TEST(ServerWs, SubscribeReplacesTheSubscription) {
  TestServer server;
  server.Append({Ev("s", "a"), Ev("s", "b"), Ev("s", "a"), Ev("s", "b")});
  auto ws = WsClient::Connect(server.port(), "/ws");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  ASSERT_TRUE(ws->SendText(
      R"({"type":"subscribe","filter":{"event_types":["b"]},"after":0,"batch_size":1})"));
  auto hello = ws->RecvType("hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(Int(*hello, "batch_size"), 1);
  EXPECT_EQ(Int(*hello, "after"), 0);
  EXPECT_TRUE((*hello)["filter"].HasMember("event_types"));
  EXPECT_EQ(ReadUntilCaughtUp(*ws), (std::vector<int64_t>{2, 4}));
}

TEST(ServerWs, ReceiptEndpoint) {
  TestServer server;
  auto ws = WsClient::Connect(server.port(), "/ws/receipt/job-7");
  ASSERT_TRUE(ws);
  auto hello = ws->RecvJson();
  ASSERT_TRUE(hello);
  EXPECT_EQ(Str(*hello, "type"), "hello");
  EXPECT_EQ(Str(*hello, "session_id"), "job-7");
  auto connected = ws->RecvJson();
  ASSERT_TRUE(connected);
  EXPECT_EQ(Str(*connected, "type"), "connected");
  EXPECT_EQ(Str(*connected, "receipt_id"), "job-7");
  ASSERT_TRUE(ws->SendText("ping"));
  WsMessage pong = ws->Recv();
  EXPECT_EQ(pong.kind, WsMessage::kText);
  EXPECT_EQ(pong.data, "pong");
  server.Append(
      {Ev("other", "processing_started"), Ev("job-7", "tool_progress", "\"progress\":40")});
  auto e = ws->RecvJson();
  ASSERT_TRUE(e);
  EXPECT_EQ(Str(*e, "event_type"), "tool_progress");
  EXPECT_EQ(Int(*e, "progress"), 40);
}

TEST(ServerWs, BadConnectParametersCloseWithTheirCode) {
  TestServer server;
  struct Case {
    std::string target;
    std::string code;
    int close;
  };
  const std::vector<Case> cases = {
      {"/ws?batch_size=0", "bad_request", 4400},
      {"/ws?batch_size=1001", "bad_request", 4400},
      {"/ws?batch_window_ms=-1", "bad_request", 4400},
      {"/ws?after=x", "bad_request", 4400},
      {"/ws?after=1&after=2", "bad_request", 4400},
      {"/ws?strict=maybe", "bad_request", 4400},
      {"/ws?filter=%7Bbad", "bad_filter", 4400},
      {"/ws?filter=%7B%22any%22%3A%5B%5D%7D", "bad_filter", 4400},
      {"/ws?batch_window_ms=5&poll_interval=5", "bad_request", 4400},
      {"/ws/events", "not_found", 4404},
      {"/nowhere", "not_found", 4404},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    auto ws = WsClient::Connect(server.port(), c.target);
    ASSERT_TRUE(ws);
    auto err = ws->RecvJson();
    ASSERT_TRUE(err);
    EXPECT_EQ(Str(*err, "type"), "error");
    EXPECT_EQ(Str(*err, "code"), c.code);
    EXPECT_FALSE(Str(*err, "error").empty());
    EXPECT_EQ(ws->WaitClose(), c.close);
  }
  EXPECT_EQ(Http(server.port(), "GET", "/api/status").status, 200);
}

TEST(ServerWs, LargeBatchesAndFramesStayWithinLimits) {
  TestServerOptions opts;
  opts.server.max_frame_bytes = 64 * 1024;
  TestServer server(opts);
  std::vector<std::string> events;
  const std::string blob(4000, 'z');
  for (int i = 0; i < 300; ++i) events.push_back(Ev("s", "big", "\"blob\":\"" + blob + "\""));
  server.Append(events);
  auto ws = WsClient::Connect(server.port(), "/ws?after=0&batch_size=1000");
  ASSERT_TRUE(ws);
  ASSERT_TRUE(ws->RecvType("hello"));
  std::vector<std::string> frames;
  EXPECT_EQ(ReadEvents(*ws, 300, &frames), Range(1, 300));
  for (const std::string& f : frames) EXPECT_LT(f.size(), 64u * 1024 + 8000);
}

}  // namespace
}  // namespace tailbus::server_test
