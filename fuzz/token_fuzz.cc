// Fuzzes the token verifier (core/token.h: HS256 JWTs) with arbitrary tokens
// against a fixed secret. The seed corpus holds well-formed tokens signed with
// kSecret (fuzz/corpus/token_fuzz/) and malformed ones. Invariants:
// - a rejected token has a message saying why;
// - an accepted token is refused under another secret, and once its `exp`
//   has passed (exp is required): far in the future nothing verifies;
// - mint -> verify round trip: the claims of an accepted token minted again
//   verify, and minting those claims again gives the same token (minting is
//   deterministic, so the claims survived the round trip unchanged).
#include <cstdint>
#include <string>
#include <string_view>

#include "core/token.h"
#include "fuzz/fuzz_check.h"

namespace {

constexpr std::string_view kSecret = "tailbus-fuzz-secret-0123456789abcdef";
constexpr int64_t kNowS = 1'795'310'909;  // 2026-11-22T01:28:29Z
// Later than any exp a verifier should accept (year ~5.8e9), far from overflow.
constexpr int64_t kFarFutureS = int64_t{1} << 62;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view token(reinterpret_cast<const char*>(data), size);
  tailbus::Result<tailbus::TokenClaims> claims = tailbus::VerifyToken(token, kSecret, kNowS);
  if (!claims.ok()) {
    FUZZ_CHECK(!claims.status().message().empty(), "rejected without a reason");
    return 0;
  }
  FUZZ_CHECK(!tailbus::VerifyToken(token, "some other secret", kNowS).ok(),
             "a token verified under the wrong secret");
  FUZZ_CHECK(!tailbus::VerifyToken(token, kSecret, kFarFutureS).ok(),
             "a token verified after any possible exp");

  tailbus::Result<std::string> minted = tailbus::MintToken(*claims, kSecret);
  FUZZ_CHECK(minted.ok(), "claims of an accepted token cannot be minted: %s",
             minted.status().ToString().c_str());
  tailbus::Result<tailbus::TokenClaims> again = tailbus::VerifyToken(*minted, kSecret, kNowS);
  FUZZ_CHECK(again.ok(), "a minted token does not verify: %s", again.status().ToString().c_str());
  tailbus::Result<std::string> reminted = tailbus::MintToken(*again, kSecret);
  FUZZ_CHECK(reminted.ok() && *reminted == *minted, "claims changed in a mint/verify round trip");
  return 0;
}
