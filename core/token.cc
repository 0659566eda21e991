// HS256 tokens (see token.h for the accepted format).
//
// Invariants:
// - the signature is checked (constant time) before the payload is parsed;
// - every rejection returns InvalidArgument("token: ...") and never echoes
//   the token or the secret;
// - the only cryptography is OpenSSL's HMAC(EVP_sha256()) and CRYPTO_memcmp.
#include "core/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <set>

namespace tailbus {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr size_t kSignatureBytes = 32;  // SHA-256
constexpr size_t kMaxSessionIdBytes = 128;

Status Bad(std::string msg) { return Status::InvalidArgument("token: " + std::move(msg)); }

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

Result<std::array<unsigned char, kSignatureBytes>> Hmac(std::string_view secret,
                                                        std::string_view data) {
  std::array<unsigned char, kSignatureBytes> out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &len) == nullptr ||
      len != kSignatureBytes) {
    return Status::IoError("token: HMAC-SHA256 failed (OpenSSL)");
  }
  return out;
}

// Session ids follow the event decoder's rule: 1..128 bytes, no control characters.
bool ValidSessionId(std::string_view id) {
  if (id.empty() || id.size() > kMaxSessionIdBytes) return false;
  return std::none_of(id.begin(), id.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

Status NoDuplicateKeys(const rapidjson::Value& object, std::string_view what) {
  std::set<std::string_view> seen;
  for (auto m = object.MemberBegin(); m != object.MemberEnd(); ++m) {
    std::string_view name(m->name.GetString(), m->name.GetStringLength());
    if (!seen.insert(name).second) {
      return Bad(std::string(what) + ": duplicate key \"" + std::string(name.substr(0, 32)) + "\"");
    }
  }
  return Status::Ok();
}

Result<rapidjson::Document> ParseObject(std::string_view json, std::string_view what) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Bad(std::string(what) + ": not a JSON object");
  }
  TAILBUS_RETURN_IF_ERROR(NoDuplicateKeys(doc, what));
  return doc;
}

Status CheckHeader(std::string_view segment) {
  Result<std::string> json = Base64UrlDecode(segment);
  if (!json.ok()) return Bad("header: " + json.status().message());
  Result<rapidjson::Document> doc = ParseObject(*json, "header");
  if (!doc.ok()) return doc.status();
  bool has_alg = false;
  const rapidjson::Value& header = *doc;  // const iterators: clang's C++20 != is unambiguous
  for (auto m = header.MemberBegin(); m != header.MemberEnd(); ++m) {
    std::string_view name(m->name.GetString(), m->name.GetStringLength());
    const rapidjson::Value& v = m->value;
    const std::string_view s =
        v.IsString() ? std::string_view(v.GetString(), v.GetStringLength()) : std::string_view();
    if (name == "alg") {
      if (!v.IsString() || s != "HS256") {
        return Bad("alg: only HS256 is accepted, got " +
                   (v.IsString() ? "\"" + std::string(s.substr(0, 16)) + "\"" : "a non-string"));
      }
      has_alg = true;
    } else if (name == "typ") {
      if (!v.IsString() || s != "JWT") return Bad("header typ: must be \"JWT\" when present");
    } else {
      return Bad("header: unsupported member \"" + std::string(name.substr(0, 32)) + "\"");
    }
  }
  if (!has_alg) return Bad("alg: missing");
  return Status::Ok();
}

Status AddScope(std::string_view value, TokenClaims* claims) {
  if (value == "publish") {
    claims->can_publish = true;
  } else if (value == "subscribe") {
    claims->can_subscribe = true;
  } else if (value == "admin") {
    claims->is_admin = true;
  }
  // Unknown values are ignored on purpose (token.h).
  return Status::Ok();
}

Status ReadScope(const rapidjson::Value& v, TokenClaims* claims) {
  if (v.IsString()) {
    std::string_view rest(v.GetString(), v.GetStringLength());
    while (!rest.empty()) {
      const size_t sp = rest.find(' ');
      const std::string_view word = rest.substr(0, sp);
      if (!word.empty()) TAILBUS_RETURN_IF_ERROR(AddScope(word, claims));
      if (sp == std::string_view::npos) break;
      rest.remove_prefix(sp + 1);
    }
    return Status::Ok();
  }
  if (v.IsArray()) {
    for (const rapidjson::Value& item : v.GetArray()) {
      if (!item.IsString()) return Bad("claim scope: array items must be strings");
      TAILBUS_RETURN_IF_ERROR(
          AddScope(std::string_view(item.GetString(), item.GetStringLength()), claims));
    }
    return Status::Ok();
  }
  return Bad("claim scope: must be a space-separated string or an array of strings");
}

Status ReadSessions(const rapidjson::Value& v, TokenClaims* claims) {
  if (!v.IsArray()) return Bad("claim sessions: must be an array of session ids or [\"*\"]");
  for (const rapidjson::Value& item : v.GetArray()) {
    if (!item.IsString()) return Bad("claim sessions: items must be strings");
    std::string_view id(item.GetString(), item.GetStringLength());
    if (id == "*") {
      if (v.Size() != 1) return Bad("claim sessions: \"*\" must be the only item");
      claims->all_sessions = true;
      return Status::Ok();
    }
    if (!ValidSessionId(id)) {
      return Bad("claim sessions: a session id must be 1..128 bytes without control characters");
    }
    claims->sessions.emplace_back(id);
  }
  return Status::Ok();
}

Status ReadClaims(const rapidjson::Document& doc, int64_t now_s, TokenClaims* claims) {
  bool has_sub = false;
  bool has_exp = false;
  std::optional<int64_t> nbf;
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    std::string_view name(m->name.GetString(), m->name.GetStringLength());
    const rapidjson::Value& v = m->value;
    if (name == "sub") {
      if (!v.IsString() || v.GetStringLength() == 0) {
        return Bad("claim sub: must be a non-empty string");
      }
      claims->subject.assign(v.GetString(), v.GetStringLength());
      has_sub = true;
    } else if (name == "exp") {
      if (!v.IsInt64()) return Bad("claim exp: must be an integer (seconds since the epoch)");
      claims->expires_at_s = v.GetInt64();
      has_exp = true;
    } else if (name == "nbf") {
      if (!v.IsInt64()) return Bad("claim nbf: must be an integer (seconds since the epoch)");
      nbf = v.GetInt64();
    } else if (name == "scope") {
      TAILBUS_RETURN_IF_ERROR(ReadScope(v, claims));
    } else if (name == "sessions") {
      TAILBUS_RETURN_IF_ERROR(ReadSessions(v, claims));
    }
  }
  if (!has_sub) return Bad("claim sub: missing");
  if (!has_exp) return Bad("claim exp: missing");
  // Written so that no addition can overflow (exp and nbf are attacker-chosen
  // only with a valid signature, but stay careful).
  if (claims->expires_at_s <= now_s - kClockLeewaySeconds) return Bad("expired");
  if (nbf && *nbf - kClockLeewaySeconds > now_s) return Bad("not yet valid (nbf)");
  return Status::Ok();
}

}  // namespace

bool TokenClaims::AllowsSession(std::string_view session_id) const {
  if (all_sessions) return true;
  return std::find(sessions.begin(), sessions.end(), session_id) != sessions.end();
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += kAlphabet[n >> 6 & 63];
    out += kAlphabet[n & 63];
  }
  if (bytes.size() - i == 1) {
    const uint32_t n = at(i) << 16;
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
  } else if (bytes.size() - i == 2) {
    const uint32_t n = at(i) << 16 | at(i + 1) << 8;
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += kAlphabet[n >> 6 & 63];
  }
  return out;
}

Result<std::string> Base64UrlDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int v = DecodeChar(c);
    if (v < 0) {
      return Status::InvalidArgument(c == '=' ? "base64url must not be padded with '='"
                                              : "invalid base64url character");
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (text.size() % 4 == 1) return Status::InvalidArgument("invalid base64url length");
  // Left-over bits (2 or 4) must be zero: otherwise several spellings would
  // decode to the same bytes.
  if ((acc & ((1u << bits) - 1)) != 0) {
    return Status::InvalidArgument("non-canonical base64url (unused bits set)");
  }
  return out;
}

Result<TokenClaims> VerifyToken(std::string_view token, std::string_view secret, int64_t now_s) {
  if (secret.empty()) return Bad("no secret configured");
  if (token.empty()) return Bad("empty");
  if (token.size() > kMaxTokenBytes) {
    return Bad("longer than " + std::to_string(kMaxTokenBytes) + " bytes");
  }
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Bad("malformed (expected three base64url parts separated by '.')");
  }
  const std::string_view header = token.substr(0, dot1);
  const std::string_view payload = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const std::string_view signature = token.substr(dot2 + 1);
  TAILBUS_RETURN_IF_ERROR(CheckHeader(header));

  Result<std::string> sig = Base64UrlDecode(signature);
  if (!sig.ok() || sig->size() != kSignatureBytes) return Bad("bad signature");
  auto expected = Hmac(secret, token.substr(0, dot2));
  if (!expected.ok()) return expected.status();
  if (CRYPTO_memcmp(expected->data(), sig->data(), kSignatureBytes) != 0) {
    return Bad("bad signature");
  }

  Result<std::string> json = Base64UrlDecode(payload);
  if (!json.ok()) return Bad("payload: " + json.status().message());
  Result<rapidjson::Document> doc = ParseObject(*json, "payload");
  if (!doc.ok()) return doc.status();
  TokenClaims claims;
  TAILBUS_RETURN_IF_ERROR(ReadClaims(*doc, now_s, &claims));
  return claims;
}

Result<std::string> MintToken(const TokenClaims& claims, std::string_view secret) {
  if (secret.empty()) return Status::InvalidArgument("token: the secret is empty");
  if (claims.subject.empty()) return Status::InvalidArgument("token: sub must not be empty");
  if (claims.expires_at_s <= 0) return Status::InvalidArgument("token: exp must be > 0");
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("sub");
  w.String(claims.subject.data(), static_cast<rapidjson::SizeType>(claims.subject.size()));
  w.Key("exp");
  w.Int64(claims.expires_at_s);
  std::string scope;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!scope.empty()) scope += ' ';
    scope += name;
  };
  add(claims.can_subscribe, "subscribe");
  add(claims.can_publish, "publish");
  add(claims.is_admin, "admin");
  w.Key("scope");
  w.String(scope.data(), static_cast<rapidjson::SizeType>(scope.size()));
  w.Key("sessions");
  w.StartArray();
  if (claims.all_sessions) {
    w.String("*");
  } else {
    for (const std::string& id : claims.sessions) {
      if (!ValidSessionId(id) || id == "*") {
        return Status::InvalidArgument(
            "token: a session id must be 1..128 bytes without control characters (\"*\" alone "
            "means every session)");
      }
      w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
    }
  }
  w.EndArray();
  w.EndObject();
  std::string signing_input = Base64UrlEncode(R"({"alg":"HS256","typ":"JWT"})");
  signing_input += '.';
  signing_input += Base64UrlEncode(std::string_view(buf.GetString(), buf.GetSize()));
  auto mac = Hmac(secret, signing_input);
  if (!mac.ok()) return mac.status();
  std::string token = std::move(signing_input);
  token += '.';
  token +=
      Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(mac->data()), mac->size()));
  if (token.size() > kMaxTokenBytes) {
    return Status::InvalidArgument("token: longer than " + std::to_string(kMaxTokenBytes) +
                                   " bytes (too many sessions)");
  }
  return token;
}

}  // namespace tailbus
