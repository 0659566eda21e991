// The project's own C++ client (HttpRequest, WsClient) against a real
// `tailbus serve` started on an ephemeral loopback port.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/ws/client_test_support.h"
#include "ws/client.h"
#include "ws/ws_client.h"

namespace tailbus {
namespace {

using client_test::TempDir;
using client_test::TestServer;

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  EXPECT_FALSE(doc.HasParseError()) << text;
  return doc;
}

std::string TypeOf(const rapidjson::Document& doc) {
  if (!doc.IsObject() || !doc.HasMember("type") || !doc["type"].IsString()) return {};
  return doc["type"].GetString();
}

class ClientServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TestServer>(dir_.path());
    ASSERT_TRUE(server_->Start()) << "tailbus serve did not start: " << server_->log();
  }

  // POSTs `body` to /api/events; returns the committed offsets.
  std::vector<int64_t> Publish(const std::string& body) {
    Result<HttpResponse> r = HttpRequest("POST", server_->http_url() + "/api/events", body);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    EXPECT_EQ(r->status, 200) << r->body;
    rapidjson::Document doc = ParseJson(r->body);
    std::vector<int64_t> offsets;
    if (doc.IsObject() && doc.HasMember("offsets") && doc["offsets"].IsArray()) {
      for (const auto& v : doc["offsets"].GetArray()) offsets.push_back(v.GetInt64());
    }
    return offsets;
  }

  TempDir dir_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(ClientServerTest, HttpPostAndGetEvents) {
  std::vector<int64_t> one = Publish(R"({"session_id":"s1","event_type":"tool_call","n":1})");
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], 1);
  std::vector<int64_t> two = Publish(
      R"([{"session_id":"s1","event_type":"a"},{"session_id":"s2","event_type":"b","x":{"y":[1,2]}}])");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0], 2);
  EXPECT_EQ(two[1], 3);

  Result<HttpResponse> page = HttpRequest("GET", server_->http_url() + "/api/events?after=0");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->content_type.find("application/json"), std::string::npos) << page->content_type;
  rapidjson::Document doc = ParseJson(page->body);
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("events") && doc["events"].IsArray()) << page->body;
  ASSERT_EQ(doc["events"].Size(), 3u);
  EXPECT_EQ(doc["events"][0]["offset"].GetInt64(), 1);
  EXPECT_EQ(doc["events"][2]["offset"].GetInt64(), 3);
  EXPECT_STREQ(doc["events"][2]["session_id"].GetString(), "s2");

  Result<HttpResponse> session =
      HttpRequest("GET", server_->http_url() + "/api/sessions/s1/events?after=0");
  ASSERT_TRUE(session.ok());
  EXPECT_EQ(session->status, 200);
  doc = ParseJson(session->body);
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("events"));
  EXPECT_EQ(doc["events"].Size(), 2u);

  Result<HttpResponse> status = HttpRequest("GET", server_->http_url() + "/api/status");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->status, 200);
  doc = ParseJson(status->body);
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("head")) << status->body;
  EXPECT_EQ(doc["head"].GetInt64(), 3);

  // Bad input: 400 with details, nothing appended.
  Result<HttpResponse> bad =
      HttpRequest("POST", server_->http_url() + "/api/events", R"({"event_type":"x"})");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_NE(bad->body.find("session_id"), std::string::npos) << bad->body;

  Result<HttpResponse> missing = HttpRequest("GET", server_->http_url() + "/no/such/path");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(ClientServerTest, WsReceivesHelloThenBatchesThenLive) {
  ASSERT_EQ(Publish(R"([{"session_id":"s1","event_type":"a"},{"session_id":"s1","event_type":"b"},)"
                    R"({"session_id":"s2","event_type":"c"}])")
                .size(),
            3u);
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(server_->ws_url() + "/ws?after=0");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  WsClient& client = **c;

  Result<std::string> first = client.Receive(10'000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  rapidjson::Document hello = ParseJson(*first);
  ASSERT_EQ(TypeOf(hello), "hello") << *first;
  EXPECT_TRUE(hello["epoch"].IsString());
  EXPECT_EQ(hello["head"].GetInt64(), 3);

  // History: batch frames until caught_up, covering offsets 1..3 in order.
  std::vector<int64_t> offsets;
  bool caught_up = false;
  while (!caught_up) {
    Result<std::string> m = client.Receive(10'000);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    rapidjson::Document doc = ParseJson(*m);
    std::string type = TypeOf(doc);
    if (type == "caught_up") {
      caught_up = true;
      EXPECT_EQ(doc["offset"].GetInt64(), 3);
    } else {
      ASSERT_EQ(type, "batch") << *m;
      ASSERT_EQ(doc["count"].GetInt64(), static_cast<int64_t>(doc["events"].Size()));
      for (const auto& e : doc["events"].GetArray()) offsets.push_back(e["offset"].GetInt64());
    }
  }
  EXPECT_EQ(offsets, (std::vector<int64_t>{1, 2, 3}));

  // Live: a new event arrives in a batch frame (batch_size defaults to 50).
  ASSERT_EQ(Publish(R"({"session_id":"s3","event_type":"live"})").size(), 1u);
  Result<std::string> live = client.Receive(10'000);
  ASSERT_TRUE(live.ok()) << live.status().ToString();
  rapidjson::Document doc = ParseJson(*live);
  ASSERT_EQ(TypeOf(doc), "batch") << *live;
  ASSERT_EQ(doc["events"].Size(), 1u);
  EXPECT_EQ(doc["events"][0]["offset"].GetInt64(), 4);
  EXPECT_STREQ(doc["events"][0]["event_type"].GetString(), "live");

  EXPECT_TRUE(client.Close(1000, "done").ok());
}

TEST_F(ClientServerTest, WsSingleEventFramesAndSessionEndpoint) {
  Result<std::unique_ptr<WsClient>> c =
      WsClient::Connect(server_->ws_url() + "/ws/events/s1?batch_size=1");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Result<std::string> hello = (*c)->Receive(10'000);
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(TypeOf(ParseJson(*hello)), "hello");
  ASSERT_EQ(Publish(R"([{"session_id":"s2","event_type":"other"},)"
                    R"({"session_id":"s1","event_type":"mine"}])")
                .size(),
            2u);
  Result<std::string> m = (*c)->Receive(10'000);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  rapidjson::Document doc = ParseJson(*m);
  EXPECT_STREQ(doc["event_type"].GetString(), "mine") << *m;
  EXPECT_STREQ(doc["session_id"].GetString(), "s1");
  EXPECT_EQ(doc["offset"].GetInt64(), 2);
  // Nothing from the other session follows.
  EXPECT_EQ((*c)->Receive(300).status().code(), StatusCode::kBusy);
}

TEST_F(ClientServerTest, GracefulShutdownClosesWith1001) {
  Result<std::unique_ptr<WsClient>> c = WsClient::Connect(server_->ws_url() + "/ws");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE((*c)->Receive(10'000).ok());  // hello
  std::optional<int> exit_status = server_->Stop();
  ASSERT_TRUE(exit_status.has_value());
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0) << server_->log();
  Result<std::string> end = (*c)->Receive(10'000);
  ASSERT_EQ(end.status().code(), StatusCode::kUnavailable) << end.status().ToString();
  std::optional<WsCloseInfo> info = (*c)->close_info();
  ASSERT_TRUE(info.has_value());
  EXPECT_TRUE(info->received_close_frame);
  EXPECT_EQ(info->code, 1001);
}

}  // namespace
}  // namespace tailbus
