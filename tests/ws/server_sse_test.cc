// Server-Sent Events: hello / events with ids / caught_up / live, resume with
// Last-Event-ID (and ?lastEventId=), session streams, heartbeats, bad input.
#include <gtest/gtest.h>

#include "tests/ws/server_test_support.h"

namespace tailbus::server_test {
namespace {

// An SSE stream read from a raw socket.
class SseStream {
 public:
  SseStream(int port, const std::string& target,
            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    socket_ = Socket::Connect(port);
    if (!socket_) return;
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n";
    for (const auto& [n, v] : headers) req += n + ": " + v + "\r\n";
    req += "\r\n";
    socket_->SendAll(req);
    std::string rest;
    reply_ = ReadHttpReplyHead(&rest);
    text_ = rest;
  }
  const HttpReply& reply() const { return reply_; }

  // Reads until `needle` appears in the stream (bounded); true when found.
  bool WaitFor(const std::string& needle, std::chrono::milliseconds timeout = kWait) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (text_.find(needle) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline || socket_->eof()) return false;
      text_ += socket_->Recv(200ms);
    }
    return true;
  }
  const std::string& text() const { return text_; }
  Socket& socket() { return *socket_; }

 private:
  // The status line and headers only (the body streams).
  HttpReply ReadHttpReplyHead(std::string* rest) {
    HttpReply reply;
    std::string data;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    size_t end;
    while ((end = data.find("\r\n\r\n")) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline || socket_->eof()) return reply;
      data += socket_->Recv(200ms);
    }
    reply.status = std::atoi(data.c_str() + 9);
    std::string head = data.substr(0, end);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (head.find("content-type: text/event-stream") != std::string::npos) {
      reply.headers["content-type"] = "text/event-stream";
    }
    *rest = data.substr(end + 4);
    if (reply.status != 200) reply.body = *rest;
    return reply;
  }

  std::unique_ptr<Socket> socket_;
  HttpReply reply_;
  std::string text_;
};

TEST(ServerSse, StreamResumesFromLastEventId) {
  TestServer server;
  server.Append({Ev("a", "x"), Ev("b", "y"), Ev("a", "z"), Ev("b", "w"), Ev("a", "v")});
  SseStream sse(server.port(), "/api/stream", {{"Last-Event-ID", "2"}});
  ASSERT_EQ(sse.reply().status, 200);
  EXPECT_EQ(sse.reply().headers.at("content-type"), "text/event-stream");
  ASSERT_TRUE(sse.WaitFor("event: caught_up")) << sse.text();
  const std::string& t = sse.text();
  EXPECT_EQ(t.rfind("event: hello\ndata: {\"type\":\"hello\"", 0), 0u) << t;
  EXPECT_EQ(t.find("id: 1\n"), std::string::npos);
  EXPECT_EQ(t.find("id: 2\n"), std::string::npos);
  const size_t i3 = t.find("id: 3\ndata: {\"offset\":3,");
  const size_t i5 = t.find("id: 5\n");
  ASSERT_NE(i3, std::string::npos) << t;
  ASSERT_NE(i5, std::string::npos);
  EXPECT_LT(i3, i5);
  EXPECT_LT(i5, t.find("event: caught_up\ndata: {\"type\":\"caught_up\",\"offset\":5}"));
  server.Append({Ev("a", "live")});
  EXPECT_TRUE(sse.WaitFor("id: 6\n"));
}

TEST(ServerSse, SessionStreamAndQueryResume) {
  TestServer server;
  server.Append({Ev("a", "x"), Ev("b", "y"), Ev("a", "z")});
  SseStream sse(server.port(), "/api/sessions/a/stream?lastEventId=0");
  ASSERT_EQ(sse.reply().status, 200);
  ASSERT_TRUE(sse.WaitFor("event: caught_up"));
  EXPECT_NE(sse.text().find("id: 1\n"), std::string::npos);
  EXPECT_EQ(sse.text().find("id: 2\n"), std::string::npos);  // session b
  EXPECT_NE(sse.text().find("id: 3\n"), std::string::npos);
  server.Append({Ev("b", "live"), Ev("a", "live")});
  ASSERT_TRUE(sse.WaitFor("id: 5\n"));
  EXPECT_EQ(sse.text().find("id: 4\n"), std::string::npos);

  // A filter on the general stream.
  SseStream filtered(server.port(),
                     "/api/stream?after=0&filter=%7B%22event_types%22%3A%5B%22z%22%5D%7D");
  ASSERT_TRUE(filtered.WaitFor("event: caught_up"));
  EXPECT_NE(filtered.text().find("id: 3\n"), std::string::npos);
  EXPECT_EQ(filtered.text().find("id: 1\n"), std::string::npos);
}

TEST(ServerSse, HeartbeatsWhileIdle) {
  TestServerOptions opts;
  opts.server.sse_heartbeat = std::chrono::milliseconds(100);
  TestServer server(opts);
  SseStream sse(server.port(), "/api/stream");
  ASSERT_EQ(sse.reply().status, 200);
  EXPECT_TRUE(sse.WaitFor(": heartbeat\n\n"));
}

TEST(ServerSse, BadRequests) {
  TestServer server;
  HttpReply bad_id = Http(server.port(), "GET", "/api/stream", {}, {{"Last-Event-ID", "abc"}});
  EXPECT_EQ(bad_id.status, 400);
  EXPECT_EQ(Str(bad_id.Json(), "code"), "bad_request");
  HttpReply bad_filter = Http(server.port(), "GET", "/api/stream?filter=%7B");
  EXPECT_EQ(bad_filter.status, 400);
  EXPECT_EQ(Str(bad_filter.Json(), "code"), "bad_filter");
  EXPECT_EQ(Http(server.port(), "POST", "/api/stream", "x").status, 405);
}

}  // namespace
}  // namespace tailbus::server_test
