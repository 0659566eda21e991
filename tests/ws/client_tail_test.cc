// `tailbus tail` end to end: a real `tailbus serve`, a producer publishing
// over HTTP, and the tail process. The server is killed and restarted while
// the producer keeps publishing; tail must reconnect, say so on stderr, and
// print every committed offset exactly once, in order.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/ws/client_test_support.h"
#include "ws/client.h"

namespace tailbus {
namespace {

using client_test::Child;
using client_test::TempDir;
using client_test::TestServer;
using client_test::WaitUntil;

// The offsets of the NDJSON lines tail printed so far (complete lines only).
// A line that is not an event object with an offset is an error.
struct Printed {
  std::vector<int64_t> offsets;
  std::vector<std::string> lines;
  std::string error;
};

Printed ParseTailOutput(const std::string& out) {
  Printed p;
  std::istringstream in(out);
  std::string line;
  size_t consumed = 0;
  while (std::getline(in, line)) {
    consumed += line.size() + 1;
    if (consumed > out.size()) break;  // last line without '\n': still being written
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("offset") ||
        !doc["offset"].IsInt64()) {
      p.error = "not an event line: " + line;
      return p;
    }
    p.offsets.push_back(doc["offset"].GetInt64());
    p.lines.push_back(line);
  }
  return p;
}

int64_t Head(const TestServer& server) {
  Result<HttpResponse> r = HttpRequest("GET", server.http_url() + "/api/status", {}, {}, 5'000);
  if (!r.ok() || r->status != 200) return -1;
  rapidjson::Document doc;
  doc.Parse(r->body.data(), r->body.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("head")) return -1;
  return doc["head"].GetInt64();
}

// Publishes batches of events over HTTP on its own thread until stopped,
// retrying through server outages.
class Producer {
 public:
  Producer(std::string url, std::string session_prefix, int sessions)
      : url_(std::move(url)), prefix_(std::move(session_prefix)), sessions_(sessions) {}
  ~Producer() { Stop(); }

  void Start() {
    thread_ = std::thread([this] {
      int seq = 0;
      while (!stop_.load()) {
        std::string body = "[";
        for (int i = 0; i < 10; ++i, ++seq) {
          if (i > 0) body += ',';
          body += R"({"session_id":")" + prefix_ + std::to_string(seq % sessions_) +
                  R"(","event_type":"tick","seq":)" + std::to_string(seq) + "}";
        }
        body += "]";
        Result<HttpResponse> r =
            HttpRequest("POST", url_ + "/api/events", body, "application/json", 2'000);
        if (r.ok() && r->status == 200) {
          ++batches_;
        } else {
          ++failures_;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(r.ok() ? 5 : 50));
      }
    });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int batches() const { return batches_.load(); }
  int failures() const { return failures_.load(); }

 private:
  std::string url_;
  std::string prefix_;
  int sessions_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> batches_{0};
  std::atomic<int> failures_{0};
};

class TailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(dir_.path());
    ASSERT_TRUE(server_->Start()) << "tailbus serve did not start: " << server_->log();
  }

  bool StartTail(std::vector<std::string> args) {
    std::vector<std::string> argv = {client_test::TailbusBinary(), "tail", "--url",
                                     server_->ws_url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return tail_.Start(argv, dir_.File("tail.out"), dir_.File("tail.err"));
  }

  Printed Output() const { return ParseTailOutput(tail_.Stdout()); }

  // Waits until tail printed an event with offset >= `offset`.
  bool WaitForOffset(int64_t offset, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    return WaitUntil(
        [&] {
          Printed p = Output();
          return !p.error.empty() || (!p.offsets.empty() && p.offsets.back() >= offset);
        },
        timeout);
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
  Child tail_;
};

// The resume guarantee across server crashes, with a producer running.
TEST_F(TailTest, ResumesWithoutGapOrDuplicateAcrossServerRestarts) {
  ASSERT_TRUE(StartTail({"--after", "0", "--format", "json"}));
  Producer producer(server_->http_url(), "s", 7);
  producer.Start();

  for (int round = 1; round <= 2; ++round) {
    // Let tail print a good part of the stream, then kill the server mid-stream.
    ASSERT_TRUE(WaitForOffset(150 * round)) << "tail stderr: " << tail_.Stderr();
    server_->Crash();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(server_->Restart()) << server_->log();
    // tail notices, reconnects and resumes: its stderr says so.
    ASSERT_TRUE(WaitUntil(
        [&] {
          std::string err = tail_.Stderr();
          size_t n = 0;
          for (size_t pos = err.find("reconnected to"); pos != std::string::npos;
               pos = err.find("reconnected to", pos + 1)) {
            ++n;
          }
          return n >= static_cast<size_t>(round);
        },
        std::chrono::seconds(60)))
        << "tail stderr: " << tail_.Stderr();
  }
  ASSERT_TRUE(WaitUntil([&] { return producer.batches() > 60; }, std::chrono::seconds(60)));
  producer.Stop();

  int64_t head = Head(*server_);
  ASSERT_GT(head, 450);
  ASSERT_TRUE(WaitForOffset(head)) << "tail stderr: " << tail_.Stderr();
  std::optional<int> status = tail_.Kill(SIGINT);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;

  Printed p = Output();
  ASSERT_TRUE(p.error.empty()) << p.error;
  // Offsets are gap-free from 1: complete and exactly once means 1..head.
  ASSERT_EQ(p.offsets.size(), static_cast<size_t>(head)) << "tail stderr: " << tail_.Stderr();
  for (size_t i = 0; i < p.offsets.size(); ++i) {
    ASSERT_EQ(p.offsets[i], static_cast<int64_t>(i) + 1) << "at line " << i + 1;
  }

  std::string err = tail_.Stderr();
  EXPECT_NE(err.find("reconnecting in"), std::string::npos) << err;
  EXPECT_NE(err.find("resuming after offset"), std::string::npos) << err;

  // Each line is the event's JSON exactly as the server serves it.
  Result<HttpResponse> page =
      HttpRequest("GET", server_->http_url() + "/api/events?after=0&limit=100");
  ASSERT_TRUE(page.ok());
  for (size_t i = 0; i < 100; ++i) {
    EXPECT_NE(page->body.find(p.lines[i]), std::string::npos) << "line " << i + 1;
  }
}

// Live tail (no --after) of one session with single-event frames: only that
// session's events, and a restart in between loses and repeats nothing.
TEST_F(TailTest, LiveSessionTailAcrossRestart) {
  ASSERT_TRUE(StartTail({"--session", "s1", "--batch-size", "1", "--format", "json"}));
  // Wait for tail to be subscribed: it notes the hello (which fixes the live
  // start point) on stderr.
  ASSERT_TRUE(WaitUntil([&] { return tail_.Stderr().find("connected to") != std::string::npos; }))
      << "tail stderr: " << tail_.Stderr();

  auto publish = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      std::string body = R"([{"session_id":"s1","event_type":"mine","i":)" + std::to_string(i) +
                         R"(},{"session_id":"s2","event_type":"other","i":)" + std::to_string(i) +
                         "}]";
      Result<HttpResponse> r = HttpRequest("POST", server_->http_url() + "/api/events", body);
      ASSERT_TRUE(r.ok() && r->status == 200);
    }
  };
  publish(0, 20);
  ASSERT_TRUE(WaitForOffset(39)) << tail_.Stderr();
  server_->Crash();
  ASSERT_TRUE(server_->Restart()) << server_->log();
  // Published while tail may still be reconnecting: resume covers them.
  publish(20, 40);
  ASSERT_TRUE(WaitForOffset(79)) << tail_.Stderr();
  EXPECT_EQ(tail_.Kill(SIGINT).value_or(-1), 0);

  Printed p = Output();
  ASSERT_TRUE(p.error.empty()) << p.error;
  ASSERT_EQ(p.offsets.size(), 40u) << tail_.Stderr();
  for (size_t i = 0; i < p.offsets.size(); ++i) {
    EXPECT_EQ(p.offsets[i], static_cast<int64_t>(2 * i + 1));  // s1's events are the odd offsets
    EXPECT_NE(p.lines[i].find(R"("session_id":"s1")"), std::string::npos) << p.lines[i];
  }
  EXPECT_NE(tail_.Stderr().find("reconnecting in"), std::string::npos) << tail_.Stderr();

  // Single-event frames too: each line is the event's JSON exactly as served.
  Result<HttpResponse> page =
      HttpRequest("GET", server_->http_url() + "/api/sessions/s1/events?after=0&limit=100");
  ASSERT_TRUE(page.ok());
  for (size_t i = 0; i < p.lines.size(); ++i) {
    EXPECT_NE(page->body.find(p.lines[i]), std::string::npos) << p.lines[i];
  }
}

// A server with a different database (another epoch): tail is told to reset,
// warns on stderr and continues with the new log.
TEST_F(TailTest, ResetWarnsAndContinues) {
  ASSERT_TRUE(StartTail({"--after", "0", "--format", "json"}));
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(HttpRequest("POST", server_->http_url() + "/api/events",
                            R"({"session_id":"a","event_type":"old"})")
                    .ok());
  }
  ASSERT_TRUE(WaitForOffset(5)) << tail_.Stderr();
  server_->Crash();
  std::filesystem::remove(server_->db_path());
  std::filesystem::remove(server_->db_path() + "-wal");
  std::filesystem::remove(server_->db_path() + "-shm");
  ASSERT_TRUE(server_->Restart()) << server_->log();
  ASSERT_TRUE(WaitUntil([&] { return tail_.Stderr().find("warning") != std::string::npos; },
                        std::chrono::seconds(60)))
      << tail_.Stderr();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(HttpRequest("POST", server_->http_url() + "/api/events",
                            R"({"session_id":"b","event_type":"new"})")
                    .ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return Output().offsets.size() >= 8; }, std::chrono::seconds(60)))
      << tail_.Stderr();
  EXPECT_EQ(tail_.Kill(SIGINT).value_or(-1), 0);
  Printed p = Output();
  ASSERT_TRUE(p.error.empty()) << p.error;
  EXPECT_EQ(p.offsets, (std::vector<int64_t>{1, 2, 3, 4, 5, 1, 2, 3}));
  EXPECT_NE(tail_.Stderr().find("epoch_mismatch"), std::string::npos) << tail_.Stderr();
}

TEST_F(TailTest, PrettyFormatAndBadFlags) {
  ASSERT_TRUE(HttpRequest("POST", server_->http_url() + "/api/events",
                          R"({"session_id":"sess-7","event_type":"tool_call","tool_name":"grep"})")
                  .ok());
  ASSERT_TRUE(StartTail({"--after", "0", "--format", "pretty", "--color", "never"}));
  ASSERT_TRUE(WaitUntil([&] { return tail_.Stdout().find("sess-7") != std::string::npos; }))
      << tail_.Stderr();
  EXPECT_EQ(tail_.Kill(SIGINT).value_or(-1), 0);
  std::string out = tail_.Stdout();
  EXPECT_NE(out.find("OFFSET"), std::string::npos) << out;
  EXPECT_NE(out.find("tool_call"), std::string::npos) << out;
  EXPECT_NE(out.find("grep"), std::string::npos) << out;

  // A bad filter is a usage error (2) before any connection.
  Child bad;
  ASSERT_TRUE(bad.Start({client_test::TailbusBinary(), "tail", "--url", server_->ws_url(),
                         "--filter", R"({"nope":1})"},
                        dir_.File("bad.out"), dir_.File("bad.err")));
  std::optional<int> st = bad.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 2) << bad.Stderr();
  EXPECT_NE(bad.Stderr().find("nope"), std::string::npos) << bad.Stderr();
}

// With --auth-secret-file: --token is sent (Authorization: Bearer), and a
// refused token ends tail with exit 1 (4401/4403 cannot be fixed by retrying).
TEST(TailAuthTest, TokenIsSentAndARefusedTokenIsFatal) {
  TempDir dir;
  const std::string secret_path = dir.File("secret");
  { std::ofstream(secret_path) << "tail-auth-secret-0123456789abcdefghij\n"; }
  TestServer server(dir.path());
  ASSERT_TRUE(server.Start({"--auth-secret-file", secret_path})) << server.log();
  auto mint = [&](const std::string& sessions) {
    Child c;
    EXPECT_TRUE(c.Start({client_test::TailbusBinary(), "token", "--secret-file", secret_path,
                         "--sub", "tail", "--sessions", sessions, "--scope", "subscribe,publish"},
                        dir.File("mint.out"), dir.File("mint.err")));
    EXPECT_TRUE(c.Wait(std::chrono::seconds(30)).has_value());
    std::string out = c.Stdout();
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  };
  const std::string s1 = mint("s1");
  ASSERT_FALSE(s1.empty());
  ASSERT_TRUE(HttpRequest("POST", server.http_url() + "/api/events?token=" + s1,
                          R"({"session_id":"s1","event_type":"note"})")
                  .ok());

  // publish --url --token (and without it: the server's 401, exit 1).
  Child pub;
  ASSERT_TRUE(pub.Start({client_test::TailbusBinary(), "publish", "--url", server.http_url(),
                         "--token", s1, "--session", "s1", "--type", "cli_note"},
                        dir.File("pub.out"), dir.File("pub.err")));
  std::optional<int> pub_st = pub.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(pub_st.has_value());
  EXPECT_TRUE(WIFEXITED(*pub_st) && WEXITSTATUS(*pub_st) == 0) << pub.Stderr();
  EXPECT_EQ(pub.Stdout(), "2\n");
  Child anon;
  ASSERT_TRUE(anon.Start({client_test::TailbusBinary(), "publish", "--url", server.http_url(),
                          "--session", "s1", "--type", "cli_note"},
                         dir.File("anon.out"), dir.File("anon.err")));
  std::optional<int> anon_st = anon.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(anon_st.has_value());
  EXPECT_TRUE(WIFEXITED(*anon_st) && WEXITSTATUS(*anon_st) == 1) << anon.Stderr();
  EXPECT_NE(anon.Stderr().find("token"), std::string::npos) << anon.Stderr();

  Child ok;
  ASSERT_TRUE(ok.Start({client_test::TailbusBinary(), "tail", "--url", server.ws_url(), "--session",
                        "s1", "--after", "0", "--format", "json", "--token", s1},
                       dir.File("ok.out"), dir.File("ok.err")));
  ASSERT_TRUE(WaitUntil([&] { return ok.Stdout().find("\"cli_note\"") != std::string::npos; }))
      << ok.Stderr();
  EXPECT_EQ(ok.Kill(SIGINT).value_or(-1), 0);
  EXPECT_EQ(ok.Stderr().find(s1), std::string::npos) << "the token is never printed";

  // Every session with a one-session token: 4403, exit 1 without retrying.
  Child refused;
  ASSERT_TRUE(
      refused.Start({client_test::TailbusBinary(), "tail", "--url", server.ws_url(), "--token", s1},
                    dir.File("no.out"), dir.File("no.err")));
  std::optional<int> st = refused.Wait(std::chrono::seconds(30));
  ASSERT_TRUE(st.has_value()) << refused.Stderr();
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 1) << refused.Stderr();
  EXPECT_NE(refused.Stderr().find("4403"), std::string::npos) << refused.Stderr();
}

}  // namespace
}  // namespace tailbus
