// --tls-cert / --tls-key checks at start-up: both or neither, and a missing,
// garbage or mismatched file is refused with one line naming it. (HTTPS and
// WSS themselves, with certificate verification, are tested from Python in
// tests/ws/python/test_tls.py.) Certificates are made with the openssl CLI.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "tests/ws/server_test_support.h"
#include "ws/client.h"
#include "ws/tls.h"
#include "ws/ws_client.h"

namespace tailbus::server_test {
namespace {

class ServerTls : public ::testing::Test {
 protected:
  void SetUp() override {
    cert_ = (dir_.path() / "cert.pem").string();
    key_ = (dir_.path() / "key.pem").string();
    other_key_ = (dir_.path() / "other.pem").string();
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout '" +
        key_ + "' -out '" + cert_ +
        "' >/dev/null 2>&1 && openssl genpkey -algorithm EC -pkeyopt "
        "ec_paramgen_curve:prime256v1 -out '" +
        other_key_ + "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl CLI failed: " << cmd;
  }

  // Server::Create's error for these TLS files ("" if it started).
  std::string CreateError(const std::string& cert, const std::string& key) {
    auto store = LogStore::Open((dir_.path() / "t.db").string(), StorageOptions{});
    EXPECT_TRUE(store.ok());
    auto bus = Bus::Open(std::move(store).value(), BusOptions{});
    EXPECT_TRUE(bus.ok());
    ws::ServerOptions opts;
    opts.listen = "127.0.0.1:0";
    opts.tls_cert = cert;
    opts.tls_key = key;
    std::string error;
    {
      auto server = ws::Server::Create(**bus, opts);
      if (!server.ok()) {
        EXPECT_EQ(server.status().code(), StatusCode::kInvalidArgument);
        error = server.status().message();
      } else {
        EXPECT_TRUE((*server)->tls());
        EXPECT_EQ((*server)->base_url().rfind("https://127.0.0.1:", 0), 0u);
      }
    }  // the server goes before the bus
    (*bus)->Close();
    return error;
  }

  TempDir dir_;
  std::string cert_, key_, other_key_;
};

TEST_F(ServerTls, StartsWithAMatchingCertificateAndKey) { EXPECT_EQ(CreateError(cert_, key_), ""); }

TEST_F(ServerTls, NeedsBothFlags) {
  EXPECT_EQ(CreateError(cert_, ""),
            "TLS needs both --tls-cert and --tls-key (got only --tls-cert)");
  EXPECT_EQ(CreateError("", key_), "TLS needs both --tls-cert and --tls-key (got only --tls-key)");
}

TEST_F(ServerTls, RefusesAnUnreadableFileNamingIt) {
  const std::string missing = (dir_.path() / "missing.pem").string();
  EXPECT_EQ(CreateError(missing, key_),
            "--tls-cert " + missing + ": cannot read: No such file or directory");
  EXPECT_EQ(CreateError(cert_, missing),
            "--tls-key " + missing + ": cannot read: No such file or directory");
}

TEST_F(ServerTls, RefusesGarbageNamingTheFile) {
  const std::string garbage = (dir_.path() / "garbage.pem").string();
  std::ofstream(garbage) << "not a certificate\n";
  EXPECT_EQ(CreateError(garbage, key_),
            "--tls-cert " + garbage + ": not a PEM certificate (-----BEGIN CERTIFICATE-----)");
  EXPECT_EQ(CreateError(cert_, garbage),
            "--tls-key " + garbage + ": not an unencrypted PEM private key");
  // A certificate given as the key is not a key either.
  EXPECT_EQ(CreateError(cert_, cert_),
            "--tls-key " + cert_ + ": not an unencrypted PEM private key");
}

TEST_F(ServerTls, RefusesAKeyOfAnotherCertificate) {
  EXPECT_EQ(CreateError(cert_, other_key_),
            "--tls-key " + other_key_ + ": does not match the certificate in " + cert_);
}

TEST_F(ServerTls, PlainHttpOnTheTlsPortGetsNoHttpAnswer) {
  TestServerOptions opts;
  opts.server.tls_cert = cert_;
  opts.server.tls_key = key_;
  TestServer server(opts);
  for (int i = 0; i < 3; ++i) {
    HttpReply reply = RawHttp(server.port(), "GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n", 10s);
    EXPECT_EQ(reply.status, 0) << "a plain-text request was answered in plain text";
    EXPECT_TRUE(reply.closed);
  }
  EXPECT_FALSE(server.stopped());
}

TEST_F(ServerTls, AStalledTlsHandshakeIsClosedByTheHeaderTimeout) {
  TestServerOptions opts;
  opts.server.tls_cert = cert_;
  opts.server.tls_key = key_;
  opts.server.header_timeout = std::chrono::milliseconds(1000);
  TestServer server(opts);
  // Half a TLS record header, then silence: libwebsockets alone waits for
  // its handshake timeout (20-30 s); the header timeout closes it in 1-2 s.
  auto stalled = Socket::Connect(server.port());
  ASSERT_TRUE(stalled);
  ASSERT_TRUE(stalled->SendAll(std::string("\x16\x03", 2)));
  EXPECT_TRUE(stalled->WaitClosed(10s));
}

TEST(ServerPlain, StatusSaysTlsIsOff) {
  TestServer server;
  HttpReply reply = Http(server.port(), "GET", "/api/status");
  ASSERT_EQ(reply.status, 200);
  rapidjson::Document doc = reply.Json();
  ASSERT_TRUE(doc.IsObject() && doc.HasMember("tls"));
  EXPECT_FALSE(doc["tls"].GetBool());
}

}  // namespace
}  // namespace tailbus::server_test
