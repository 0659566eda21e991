// `tailbus token` through the real binary (the minted token is checked with
// core/token.h's verifier), and `tailbus serve`'s refusals around auth.
#include "core/token.h"

#include <chrono>

#include "cli_test_util.h"

namespace tailbus::cli_test {
namespace {

constexpr std::string_view kSecret = "cli-test-secret-0123456789abcdefghij";

class TokenCommandTest : public CliTest {
 protected:
  std::string SecretFile(std::string_view content) {
    const std::filesystem::path p = dir_ / "secret";
    WriteFile(p, content);
    return p.string();
  }
  static int64_t NowS() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

TEST_F(TokenCommandTest, MintsAVerifiableTokenWithTheGivenClaims) {
  const std::string secret = SecretFile(std::string(kSecret) + "\n");  // one newline is stripped
  const int64_t before = NowS();
  RunResult r = RunTailbus({"token", "--secret-file", secret, "--sub", "agent-1", "--sessions",
                            "s1, s2", "--scope", "subscribe,publish", "--ttl", "15m"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.err, "");
  ASSERT_EQ(Lines(r.out).size(), 1u) << r;
  const std::string token = Lines(r.out)[0];
  Result<TokenClaims> claims = VerifyToken(token, kSecret, NowS());
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->subject, "agent-1");
  EXPECT_TRUE(claims->can_subscribe);
  EXPECT_TRUE(claims->can_publish);
  EXPECT_FALSE(claims->is_admin);
  EXPECT_EQ(claims->sessions, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_GE(claims->expires_at_s, before + 15 * 60);
  EXPECT_LE(claims->expires_at_s, NowS() + 15 * 60);
  // Not valid under the secret with its newline kept.
  EXPECT_FALSE(VerifyToken(token, std::string(kSecret) + "\n", NowS()).ok());
}

TEST_F(TokenCommandTest, StarMeansEverySessionAndTtlUnitsWork) {
  const std::string secret = SecretFile(kSecret);
  struct {
    const char* ttl;
    int64_t seconds;
  } cases[] = {{"30s", 30}, {"15m", 900}, {"1h", 3600}, {"7d", 7 * 86400}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.ttl);
    const int64_t before = NowS();
    RunResult r = RunTailbus({"token", "--secret-file", secret, "--sub", "ui", "--sessions", "*",
                              "--scope", "admin", "--ttl", c.ttl});
    ASSERT_EQ(r.exit_code, 0) << r;
    Result<TokenClaims> claims = VerifyToken(Lines(r.out).at(0), kSecret, NowS());
    ASSERT_TRUE(claims.ok()) << claims.status().ToString();
    EXPECT_TRUE(claims->all_sessions);
    EXPECT_TRUE(claims->is_admin);
    EXPECT_GE(claims->expires_at_s, before + c.seconds);
    EXPECT_LE(claims->expires_at_s, NowS() + c.seconds);
  }
}

TEST_F(TokenCommandTest, FlagsCanComeFromTheEnvironment) {
  const std::string secret = SecretFile(kSecret);
  RunResult r = RunTailbus(
      {"token"}, {},
      {"TAILBUS_AUTH_SECRET_FILE=" + secret, "TAILBUS_TOKEN_SUB=envy", "TAILBUS_TOKEN_SESSIONS=a",
       "TAILBUS_TOKEN_SCOPE=publish", "TAILBUS_TOKEN_TTL=1h"});
  ASSERT_EQ(r.exit_code, 0) << r;
  Result<TokenClaims> claims = VerifyToken(Lines(r.out).at(0), kSecret, NowS());
  ASSERT_TRUE(claims.ok()) << claims.status().ToString();
  EXPECT_EQ(claims->subject, "envy");
  EXPECT_TRUE(claims->can_publish);
}

TEST_F(TokenCommandTest, RefusesShortSecretFileWithAClearMessage) {
  const std::string secret = SecretFile("too-short\n");
  RunResult r = RunTailbus(
      {"token", "--secret-file", secret, "--sub", "x", "--sessions", "*", "--ttl", "1h"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_EQ(r.out, "");
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("9 bytes, a secret must be at least 32 bytes"), std::string::npos) << r;
  RunResult missing = RunTailbus(
      {"token", "--secret-file", (dir_ / "nope").string(), "--sub", "x", "--sessions", "*"});
  EXPECT_EQ(missing.exit_code, 2) << missing;
  EXPECT_NE(missing.err.find("cannot read it"), std::string::npos) << missing;
}

TEST_F(TokenCommandTest, RejectsBadScopeTtlAndSessions) {
  const std::string secret = SecretFile(kSecret);
  auto run = [&](std::string sessions, std::string scope, std::string ttl) {
    return RunTailbus({"token", "--secret-file", secret, "--sub", "x", "--sessions", sessions,
                       "--scope", scope, "--ttl", ttl});
  };
  struct {
    RunResult r;
    const char* needle;
  } cases[] = {
      {run("*", "read", "1h"), "--scope: unknown scope \"read\""},
      {run("*", ",", "1h"), "--scope: give at least one"},
      {run("*", "publish", "1y"), "--ttl: expected a number followed by s, m, h or d"},
      {run("*", "publish", "h"), "--ttl: expected a number"},
      {run("*", "publish", "-5m"), "--ttl: expected a number"},
      {run("*", "publish", "0s"), "--ttl: must be more than 0"},
      {run("*", "publish", "99999d"), "--ttl: at most 3650d"},
      {run(",", "publish", "1h"), "--sessions: give session ids"},
      {run("a,*", "publish", "1h"), "session id"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.r.exit_code, 2) << c.needle << "\n" << c.r;
    EXPECT_EQ(c.r.out, "");
    EXPECT_ONE_LINE_ERROR(c.r);
    EXPECT_NE(c.r.err.find(c.needle), std::string::npos) << c.r;
  }
}

TEST_F(TokenCommandTest, ServeRefusesNonLoopbackWithoutSecret) {
  RunResult r = Run({"serve", "--listen", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("refusing to listen on 0.0.0.0:0 (not loopback) without access control"),
            std::string::npos)
      << r;
  EXPECT_NE(r.err.find("--insecure-no-auth"), std::string::npos) << r;
}

TEST_F(TokenCommandTest, ServeRefusesShortSecretFile) {
  RunResult r =
      Run({"serve", "--listen", "127.0.0.1:0", "--auth-secret-file", SecretFile("short")});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_ONE_LINE_ERROR(r);
  EXPECT_NE(r.err.find("at least 32 bytes"), std::string::npos) << r;
}

}  // namespace
}  // namespace tailbus::cli_test
