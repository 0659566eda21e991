// A full disk under the real `tailbus serve`, simulated with a file-size limit:
// the server runs with RLIMIT_FSIZE small and SIGXFSZ ignored, so once the log
// (its WAL) would grow past the limit every write fails with EFBIG, as it would
// with ENOSPC. Then:
//   - appends fail with 503 `unavailable` (HTTP) / error `unavailable`
//     (WebSocket publish), nothing of a refused batch is stored, the server
//     keeps running and serving reads;
//   - everything acknowledged before stays intact;
//   - once the limit is raised on the running process (prlimit(2), as space
//     coming back), appends succeed again at once and offsets continue with no
//     gap; a subscriber that tailed the log throughout saw every event exactly
//     once.
#include <fmt/format.h>
#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/reliability/log_audit.h"
#include "tests/reliability/serve_process.h"
#include "tests/test_util/temp_dir.h"
#include "ws/client.h"
#include "ws/ws_client.h"

namespace tailbus::reliability {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int64_t kFileSizeLimit = 2 << 20;  // the "disk": 2 MiB per file
constexpr int kEventsPerBatch = 20;

struct Posted {
  int status = 0;
  std::string body;
  std::vector<std::string> ids;
};

// POSTs one batch of kEventsPerBatch ~2 KiB events with ids "<tag>-<n>".
Posted PostBatch(const std::string& url, const std::string& tag, int64_t* seq) {
  Posted p;
  std::string json = "[";
  for (int i = 0; i < kEventsPerBatch; ++i) {
    p.ids.push_back(fmt::format("{}-{}", tag, (*seq)++));
    if (i > 0) json += ',';
    json += fmt::format(R"({{"session_id":"s{}","type":"fill","event_id":"{}","content":"{}"}})",
                        i % 4, p.ids.back(), std::string(2000, 'f'));
  }
  json += "]";
  auto r = HttpRequest("POST", url + "/api/events", json, "application/json", 30'000);
  if (!r.ok()) {
    p.body = r.status().ToString();
    return p;
  }
  p.status = r->status;
  p.body = r->body;
  return p;
}

// Records an acknowledged batch in the ledger; false when the ack is malformed.
bool RecordAck(Ledger& ledger, const Posted& p) {
  rapidjson::Document d;
  d.Parse(p.body.data(), p.body.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("offsets") || !d["offsets"].IsArray() ||
      d["offsets"].Size() != p.ids.size()) {
    return false;
  }
  for (rapidjson::SizeType i = 0; i < d["offsets"].Size(); ++i) {
    ledger.Record(p.ids[i], d["offsets"][i].GetInt64());
  }
  return true;
}

std::string ErrorCode(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("code") || !d["code"].IsString()) {
    return {};
  }
  return d["code"].GetString();
}

int64_t Head(const std::string& url) {
  auto r = HttpRequest("GET", url + "/api/status");
  if (!r.ok() || r->status != 200) return -1;
  rapidjson::Document d;
  d.Parse(r->body.data(), r->body.size());
  return d.IsObject() && d.HasMember("head") ? d["head"].GetInt64() : -1;
}

TEST(DiskFullTest, AppendsFailWith503UntilSpaceReturnsAndNothingAcknowledgedIsLost) {
  TempDir dir("tailbus-diskfull");
  ASSERT_FALSE(dir.path().empty());
  ServeSpec spec;
  spec.db = (dir.path() / "full.db").string();
  spec.log = dir.path() / "serve.log";
  spec.file_size_limit = kFileSizeLimit;
  auto started = ServeProcess::Start(spec);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  std::unique_ptr<ServeProcess> server = std::move(*started);
  const std::string url = server->url();

  std::atomic<int> port{server->port()};
  ResumingSubscriber tail(port, "", /*contiguous=*/true);
  Ledger ledger;
  int64_t seq = 0;

  // Fill the "disk". 2 MiB holds well under 50 batches of 40 KiB.
  Posted refused;
  int accepted = 0;
  for (int i = 0; i < 200 && refused.status == 0; ++i) {
    Posted p = PostBatch(url, "before", &seq);
    ASSERT_NE(p.status, 0) << "the server stopped answering: " << p.body << "\n" << server->Log();
    if (p.status == 200) {
      ASSERT_TRUE(RecordAck(ledger, p)) << p.body;
      ++accepted;
    } else {
      refused = p;
    }
  }
  ASSERT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(ErrorCode(refused.body), "unavailable") << refused.body;
  ASSERT_GT(accepted, 0) << "the limit left no room for any batch";
  const int64_t head_when_full = Head(url);
  ASSERT_EQ(head_when_full, static_cast<int64_t>(ledger.size()));

  // While full: every append is refused, over HTTP and WebSocket, nothing is
  // stored, and the server keeps serving.
  for (int i = 0; i < 5; ++i) {
    Posted p = PostBatch(url, "while-full", &seq);
    EXPECT_EQ(p.status, 503) << p.body;
    EXPECT_EQ(ErrorCode(p.body), "unavailable") << p.body;
  }
  {
    auto ws = WsClient::Connect(server->ws_url() + "/ws");
    ASSERT_TRUE(ws.ok()) << ws.status().ToString();
    // As large as the HTTP batch that did not fit (a small one might).
    std::string events;
    for (int i = 0; i < kEventsPerBatch; ++i) {
      events += fmt::format(R"({}{{"session_id":"s1","type":"fill","event_id":"ws-full-{}",)"
                            R"("content":"{}"}})",
                            i > 0 ? "," : "", i, std::string(2000, 'w'));
    }
    ASSERT_TRUE(
        (*ws)->Send(R"({"type":"publish","request_id":"full","events":[)" + events + "]}").ok());
    std::string error_frame;
    const auto deadline = Clock::now() + 30s;
    while (error_frame.empty() && Clock::now() < deadline) {
      auto msg = (*ws)->Receive(100);
      if (msg.ok() && msg->find(R"("request_id":"full")") != std::string::npos) error_frame = *msg;
    }
    EXPECT_NE(error_frame.find(R"("type":"error")"), std::string::npos) << error_frame;
    EXPECT_NE(error_frame.find(R"("code":"unavailable")"), std::string::npos) << error_frame;
  }
  EXPECT_TRUE(server->Running()) << server->Log();
  EXPECT_EQ(Head(url), head_when_full) << "a refused append stored something";
  {
    auto log = ReadLog(url);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    auto problems = AuditLog(*log, ledger.Snapshot(), tail.Seen());
    EXPECT_TRUE(problems.empty()) << "while full:\n" << JoinProblems(problems);
  }

  // Space returns: appends succeed again at once, offsets go on without a gap.
  ASSERT_TRUE(server->SetFileSizeLimit(0).ok());
  for (int i = 0; i < 60; ++i) {
    Posted p = PostBatch(url, "after", &seq);
    ASSERT_EQ(p.status, 200) << "append " << i << " after space returned: " << p.body << "\n"
                             << server->Log();
    ASSERT_TRUE(RecordAck(ledger, p)) << p.body;
  }
  const auto acked = ledger.Snapshot();
  ASSERT_EQ(acked.begin()->first, 1);
  ASSERT_EQ(acked.rbegin()->first, static_cast<int64_t>(acked.size()))
      << "offsets of acknowledged events are not contiguous";
  EXPECT_GT(acked.size(), static_cast<size_t>(kFileSizeLimit / 2000)) << "past the old limit";

  const int64_t head = Head(url);
  EXPECT_EQ(head, static_cast<int64_t>(acked.size()));
  const auto deadline = Clock::now() + 60s;
  while (tail.last() < head && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(tail.last(), head) << "the subscriber did not reach the head";
  auto log = ReadLog(url);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  auto problems = AuditLog(*log, acked, tail.Seen());
  EXPECT_TRUE(problems.empty()) << "after space returned:\n" << JoinProblems(problems);
  tail.Stop();
  EXPECT_TRUE(tail.Problems().empty()) << JoinProblems(tail.Problems());
  EXPECT_EQ(tail.connections(), 1) << "the subscriber was disconnected";
  EXPECT_TRUE(ledger.Problems().empty()) << JoinProblems(ledger.Problems());

  EXPECT_EQ(server->Terminate(), 0) << server->Log();
  EXPECT_EQ(IntegrityCheck(spec.db, dir.path() / "check"), "ok");
}

}  // namespace
}  // namespace tailbus::reliability
