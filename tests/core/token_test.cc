#include "core/token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

namespace tailbus {
namespace {

constexpr std::string_view kSecret = "0123456789abcdef0123456789abcdef";
constexpr int64_t kNow = 1'900'000'000;

// Signs header.payload with OpenSSL directly, so that tests can build tokens
// the minting code would never produce (alg none, duplicate keys, ...).
std::string Sign(std::string_view header_json, std::string_view payload_json,
                 std::string_view secret = kSecret) {
  std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload_json);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + Base64UrlEncode(std::string_view(reinterpret_cast<char*>(mac), len));
}

std::string SignPayload(std::string_view payload_json) {
  return Sign(R"({"alg":"HS256","typ":"JWT"})", payload_json);
}

std::string ErrorOf(std::string_view token, std::string_view secret = kSecret, int64_t now = kNow) {
  Result<TokenClaims> r = VerifyToken(token, secret, now);
  return r.ok() ? "OK" : r.status().message();
}

TEST(TokenTest, Base64UrlMatchesRfc4648Vectors) {
  // RFC 4648 §10 (base64, padding dropped: identical in base64url for these).
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");  // the two url-safe characters
  EXPECT_EQ(*Base64UrlDecode("Zm9vYmE"), "fooba");
  EXPECT_EQ(*Base64UrlDecode("-_8"), "\xfb\xff");
}

TEST(TokenTest, Base64UrlDecodeRejectsPaddingOtherAlphabetsAndNonCanonicalBits) {
  EXPECT_FALSE(Base64UrlDecode("Zm8=").ok());   // padding
  EXPECT_FALSE(Base64UrlDecode("+/8").ok());    // standard base64 alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm 8").ok());   // whitespace
  EXPECT_FALSE(Base64UrlDecode("Zm9vY").ok());  // length % 4 == 1
  EXPECT_FALSE(Base64UrlDecode("Zm9").ok());    // "fo" is Zm8: the last 2 bits must be 0
  EXPECT_FALSE(Base64UrlDecode("Zh").ok());     // "f" is Zg: the last 4 bits must be 0
}

// RFC 7515 Appendix A.1: the HS256 example. Its payload has no `sub`, so the
// verifier must get past the signature and then refuse the claims; one
// changed character must give "bad signature" instead.
TEST(TokenTest, VerifiesRfc7515AppendixA1SignatureThenRequiresSub) {
  const std::string key = *Base64UrlDecode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  const std::string token =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
      "fQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  EXPECT_EQ(ErrorOf(token, key, 1'300'819'000), "token: claim sub: missing");
  std::string tampered = token;
  tampered[tampered.size() - 2] = 'Y';
  EXPECT_EQ(ErrorOf(tampered, key, 1'300'819'000), "token: bad signature");
}

// Computed independently with Python:
//   hmac.new(b"0123456789abcdef0123456789abcdef", header_dot_payload, hashlib.sha256)
TEST(TokenTest, AcceptsTokenComputedIndependentlyWithPythonHmac) {
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiJhZ2VudC03IiwiZXhwIjoyMDAwMDAwMDAwLCJzY29wZSI6InN1YnNjcmliZSBwdWJsaXNoIiwic2Vzc2lv"
      "bnMiOlsiczEiLCJzMiJdfQ.K42MrG9WkwtJPclrmU4LY_2pP2vHVwgQseBEbKgAero";
  Result<TokenClaims> r = VerifyToken(token, kSecret, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->subject, "agent-7");
  EXPECT_EQ(r->expires_at_s, 2'000'000'000);
  EXPECT_TRUE(r->can_subscribe);
  EXPECT_TRUE(r->can_publish);
  EXPECT_FALSE(r->is_admin);
  EXPECT_FALSE(r->all_sessions);
  EXPECT_EQ(r->sessions, (std::vector<std::string>{"s1", "s2"}));
  EXPECT_TRUE(r->AllowsSession("s2"));
  EXPECT_FALSE(r->AllowsSession("s3"));
  EXPECT_EQ(ErrorOf(token, "another secret, also 32 bytes long"), "token: bad signature");
}

TEST(TokenTest, MintedTokenRoundTrips) {
  TokenClaims c;
  c.subject = "ui";
  c.expires_at_s = kNow + 60;
  c.is_admin = true;
  c.all_sessions = true;
  Result<std::string> token = MintToken(c, kSecret);
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  Result<TokenClaims> r = VerifyToken(*token, kSecret, kNow);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->subject, "ui");
  EXPECT_TRUE(r->is_admin);
  EXPECT_FALSE(r->can_publish);
  EXPECT_FALSE(r->can_subscribe);
  EXPECT_TRUE(r->all_sessions);
  EXPECT_TRUE(r->AllowsSession("anything"));
}

TEST(TokenTest, MintRefusesEmptySecretSubjectAndBadSessionIds) {
  TokenClaims c;
  c.subject = "x";
  c.expires_at_s = kNow;
  EXPECT_FALSE(MintToken(c, "").ok());
  c.sessions = {"ok", std::string("bad\nid")};
  EXPECT_FALSE(MintToken(c, kSecret).ok());
  c.sessions = {"*"};
  EXPECT_FALSE(MintToken(c, kSecret).ok());  // use all_sessions
  c.sessions.clear();
  c.subject.clear();
  EXPECT_FALSE(MintToken(c, kSecret).ok());
}

TEST(TokenTest, RejectsTamperedPayloadAndSignature) {
  const std::string good = SignPayload(R"({"sub":"a","exp":2000000000,"sessions":["s1"]})");
  ASSERT_EQ(ErrorOf(good), "OK");
  const size_t dot1 = good.find('.');
  const size_t dot2 = good.rfind('.');
  // Same header and signature, payload widened to every session.
  std::string widened = good.substr(0, dot1 + 1) +
                        Base64UrlEncode(R"({"sub":"a","exp":2000000000,"sessions":["*"]})") +
                        good.substr(dot2);
  EXPECT_EQ(ErrorOf(widened), "token: bad signature");
  std::string sig_flipped = good;
  sig_flipped[dot2 + 1] = sig_flipped[dot2 + 1] == 'A' ? 'B' : 'A';
  EXPECT_EQ(ErrorOf(sig_flipped), "token: bad signature");
  EXPECT_EQ(ErrorOf(good.substr(0, dot2 + 1)), "token: bad signature");         // empty sig
  EXPECT_EQ(ErrorOf(good.substr(0, good.size() - 4)), "token: bad signature");  // short sig
}

TEST(TokenTest, RejectsAlgNoneAndOtherAlgorithms) {
  const std::string payload = R"({"sub":"a","exp":2000000000,"sessions":["*"]})";
  // The classic attack: alg none with an empty signature.
  std::string none = Base64UrlEncode(R"({"alg":"none"})") + "." + Base64UrlEncode(payload) + ".";
  EXPECT_EQ(ErrorOf(none), "token: alg: only HS256 is accepted, got \"none\"");
  EXPECT_EQ(ErrorOf(Sign(R"({"alg":"HS512"})", payload)),
            "token: alg: only HS256 is accepted, got \"HS512\"");
  EXPECT_EQ(ErrorOf(Sign(R"({"alg":"hs256"})", payload)),
            "token: alg: only HS256 is accepted, got \"hs256\"");
  EXPECT_EQ(ErrorOf(Sign(R"({"typ":"JWT"})", payload)), "token: alg: missing");
  EXPECT_EQ(ErrorOf(Sign(R"({"alg":"HS256","typ":"JWE"})", payload)),
            "token: header typ: must be \"JWT\" when present");
  EXPECT_EQ(ErrorOf(Sign(R"({"alg":"HS256","kid":"k1"})", payload)),
            "token: header: unsupported member \"kid\"");
  EXPECT_EQ(ErrorOf(Sign(R"({"alg":"HS256","alg":"none"})", payload)),
            "token: header: duplicate key \"alg\"");
  EXPECT_EQ(ErrorOf(Sign(R"(["HS256"])", payload)), "token: header: not a JSON object");
  EXPECT_EQ(ErrorOf(Sign(R"({"alg":"HS256"})", payload)), "OK");  // typ is optional
}

TEST(TokenTest, RejectsExpiredAndNotYetValidWithLeeway) {
  auto with_exp = [](int64_t exp) {
    return SignPayload(R"({"sub":"a","exp":)" + std::to_string(exp) + "}");
  };
  EXPECT_EQ(ErrorOf(with_exp(kNow - 3600)), "token: expired");
  EXPECT_EQ(ErrorOf(with_exp(kNow - kClockLeewaySeconds)), "token: expired");
  EXPECT_EQ(ErrorOf(with_exp(kNow - kClockLeewaySeconds + 1)), "OK");  // within the leeway
  EXPECT_EQ(ErrorOf(with_exp(kNow + 1)), "OK");
  const std::string nbf_future = SignPayload(R"({"sub":"a","exp":2000000000,"nbf":)" +
                                             std::to_string(kNow + kClockLeewaySeconds + 1) + "}");
  EXPECT_EQ(ErrorOf(nbf_future), "token: not yet valid (nbf)");
  const std::string nbf_now = SignPayload(R"({"sub":"a","exp":2000000000,"nbf":)" +
                                          std::to_string(kNow + kClockLeewaySeconds) + "}");
  EXPECT_EQ(ErrorOf(nbf_now), "OK");
}

TEST(TokenTest, RequiresExpAndSubWithTheRightTypes) {
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a"})")), "token: claim exp: missing");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"exp":2000000000})")), "token: claim sub: missing");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":"2000000000"})")),
            "token: claim exp: must be an integer (seconds since the epoch)");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000.5})")),
            "token: claim exp: must be an integer (seconds since the epoch)");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":1e30})")),
            "token: claim exp: must be an integer (seconds since the epoch)");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":7,"exp":2000000000})")),
            "token: claim sub: must be a non-empty string");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"","exp":2000000000})")),
            "token: claim sub: must be a non-empty string");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000,"nbf":"x"})")),
            "token: claim nbf: must be an integer (seconds since the epoch)");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000,"exp":1})")),
            "token: payload: duplicate key \"exp\"");
  EXPECT_EQ(ErrorOf(SignPayload(R"([1,2])")), "token: payload: not a JSON object");
  EXPECT_EQ(ErrorOf(SignPayload("{\"sub\":\"a\xff\",\"exp\":2000000000}")),
            "token: payload: not a JSON object");  // invalid UTF-8
}

TEST(TokenTest, AcceptsScopeAsStringOrArrayAndIgnoresUnknownValues) {
  Result<TokenClaims> a =
      VerifyToken(SignPayload(R"({"sub":"a","exp":2000000000,"scope":"read:x  publish admin"})"),
                  kSecret, kNow);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(a->can_publish);
  EXPECT_TRUE(a->is_admin);
  EXPECT_FALSE(a->can_subscribe);
  Result<TokenClaims> b =
      VerifyToken(SignPayload(R"({"sub":"a","exp":2000000000,"scope":["subscribe","Publish"]})"),
                  kSecret, kNow);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE(b->can_subscribe);
  EXPECT_FALSE(b->can_publish);  // values are case-sensitive
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000,"scope":["publish",1]})")),
            "token: claim scope: array items must be strings");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000,"scope":{"publish":true}})")),
            "token: claim scope: must be a space-separated string or an array of strings");
  Result<TokenClaims> none =
      VerifyToken(SignPayload(R"({"sub":"a","exp":2000000000})"), kSecret, kNow);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->can_publish || none->can_subscribe || none->is_admin || none->all_sessions);
  EXPECT_FALSE(none->AllowsSession("s1"));
}

TEST(TokenTest, SessionsMustBeAnArrayOfIdsOrStarAlone) {
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000,"sessions":"*"})")),
            "token: claim sessions: must be an array of session ids or [\"*\"]");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000,"sessions":["s1",2]})")),
            "token: claim sessions: items must be strings");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000,"sessions":["s1","*"]})")),
            "token: claim sessions: \"*\" must be the only item");
  EXPECT_EQ(ErrorOf(SignPayload(R"({"sub":"a","exp":2000000000,"sessions":[""]})")),
            "token: claim sessions: a session id must be 1..128 bytes without control characters");
  Result<TokenClaims> r =
      VerifyToken(SignPayload(R"({"sub":"a","exp":2000000000,"sessions":["*"]})"), kSecret, kNow);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->all_sessions);
  EXPECT_TRUE(r->sessions.empty());
}

TEST(TokenTest, RejectsMalformedStructureAndHugeTokens) {
  EXPECT_EQ(ErrorOf(""), "token: empty");
  EXPECT_EQ(ErrorOf("abc"), "token: malformed (expected three base64url parts separated by '.')");
  EXPECT_EQ(ErrorOf("a.b"), "token: malformed (expected three base64url parts separated by '.')");
  EXPECT_EQ(ErrorOf("a.b.c.d"),
            "token: malformed (expected three base64url parts separated by '.')");
  const std::string good = SignPayload(R"({"sub":"a","exp":2000000000})");
  EXPECT_EQ(ErrorOf(good + "="), "token: bad signature");  // padded signature
  EXPECT_EQ(ErrorOf(" " + good), "token: header: invalid base64url character");
  const size_t dot1 = good.find('.');
  EXPECT_EQ(ErrorOf(good.substr(0, dot1) + "=" + good.substr(dot1)),
            "token: header: base64url must not be padded with '='");
  std::string huge =
      SignPayload(R"({"sub":")" + std::string(10'000, 'x') + R"(","exp":2000000000})");
  EXPECT_EQ(ErrorOf(huge), "token: longer than 8192 bytes");
  EXPECT_EQ(ErrorOf(std::string(1 << 20, '.')), "token: longer than 8192 bytes");
  EXPECT_EQ(ErrorOf(good, ""), "token: no secret configured");
}

}  // namespace
}  // namespace tailbus
