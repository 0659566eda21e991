// tailbus token: mints an access token (core/token.h) for a server started
// with --auth-secret-file. Prints the token and a newline on stdout, nothing
// else, so that `TOKEN=$(tailbus token ...)` works.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/secret_file.h"
#include "core/token.h"

namespace tailbus::cli {
namespace {

// Longest --ttl: ten years (keeps exp far from overflow; long-lived tokens
// are a bad idea anyway).
constexpr int64_t kMaxTtlSeconds = int64_t{3650} * 86400;

struct TokenOptions {
  std::string secret_file;
  std::string subject;
  std::string sessions;
  std::string scope = "subscribe";
  std::string ttl = "1h";
};

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(std::move(item));
    start = comma + 1;
  }
  return out;
}

// "30s", "15m", "1h", "7d" -> seconds.
Result<int64_t> ParseTtl(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument(fmt::format(
        "--ttl: expected a number followed by s, m, h or d (e.g. 30s, 15m, 1h, 7d), got \"{}\"",
        text.substr(0, 40)));
  };
  if (text.size() < 2) return bad();
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return bad();
  }
  int64_t n = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + (c - '0');
    if (n > kMaxTtlSeconds) break;
  }
  if (n == 0) return Status::InvalidArgument("--ttl: must be more than 0");
  if (n > kMaxTtlSeconds / unit) {
    return Status::InvalidArgument("--ttl: at most 3650d");
  }
  return n * unit;
}

int RunToken(const TokenOptions& opts) {
  TokenClaims claims;
  claims.subject = opts.subject;
  if (claims.subject.empty()) return Fail("--sub: must not be empty", kExitUsage);
  for (const std::string& scope : Split(opts.scope)) {
    if (scope == "publish") {
      claims.can_publish = true;
    } else if (scope == "subscribe") {
      claims.can_subscribe = true;
    } else if (scope == "admin") {
      claims.is_admin = true;
    } else {
      return Fail(
          fmt::format("--scope: unknown scope \"{}\" (use publish, subscribe, admin)", scope),
          kExitUsage);
    }
  }
  if (!claims.can_publish && !claims.can_subscribe && !claims.is_admin) {
    return Fail("--scope: give at least one of publish, subscribe, admin", kExitUsage);
  }
  std::vector<std::string> sessions = Split(opts.sessions);
  if (sessions.empty()) {
    return Fail("--sessions: give session ids (A,B) or '*' for every session", kExitUsage);
  }
  if (sessions.size() == 1 && sessions[0] == "*") {
    claims.all_sessions = true;
  } else {
    claims.sessions = std::move(sessions);
  }
  Result<int64_t> ttl = ParseTtl(opts.ttl);
  if (!ttl.ok()) return Fail(ttl.status().message(), kExitUsage);
  Result<std::string> secret = ReadSecretFile(opts.secret_file);
  if (!secret.ok()) return Fail(secret.status().message(), kExitUsage);
  const int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  claims.expires_at_s = now_s + *ttl;
  Result<std::string> token = MintToken(claims, *secret);
  if (!token.ok()) return Fail(token.status().message(), kExitUsage);
  std::fwrite(token->data(), 1, token->size(), stdout);
  std::fputc('\n', stdout);
  return std::fflush(stdout) == 0 ? kExitOk : kExitError;
}

}  // namespace

void RegisterTokenCommand(CLI::App& app, CommandAction& action) {
  auto opts = std::make_shared<TokenOptions>();
  CLI::App* cmd = app.add_subcommand(
      "token", "Mint an access token (JWT, HS256) for a server started with --auth-secret-file");
  cmd->footer(
      "Every flag can also be set in the environment (TAILBUS_AUTH_SECRET_FILE, "
      "TAILBUS_TOKEN_SUB, ...).\n"
      "Examples:\n"
      "  openssl rand -base64 48 > secret && chmod 600 secret\n"
      "  tailbus token --secret-file secret --sub ui --sessions '*' --scope subscribe --ttl 8h\n"
      "  TOKEN=$(tailbus token --secret-file secret --sub agent-1 --sessions s1,s2 "
      "--scope publish,subscribe --ttl 15m)\n"
      "  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/api/sessions/s1\n"
      "Tokens: docs/SECURITY.md.");
  cmd->add_option("--secret-file", opts->secret_file,
                  "File holding the server's secret (at least 32 bytes; one trailing newline is "
                  "ignored)")
      ->envname("TAILBUS_AUTH_SECRET_FILE")
      ->type_name("FILE")
      ->required();
  cmd->add_option("--sub", opts->subject, "Who the token is for (the sub claim)")
      ->envname("TAILBUS_TOKEN_SUB")
      ->type_name("NAME")
      ->required();
  cmd->add_option("--sessions", opts->sessions,
                  "Comma-separated session ids the token may use, or '*' for every session")
      ->envname("TAILBUS_TOKEN_SESSIONS")
      ->type_name("A,B|*")
      ->required();
  cmd->add_option("--scope", opts->scope,
                  "Comma-separated rights: subscribe (read), publish (append), admin (delete)")
      ->envname("TAILBUS_TOKEN_SCOPE")
      ->type_name("SCOPES")
      ->capture_default_str();
  cmd->add_option("--ttl", opts->ttl, "Lifetime: 30s, 15m, 1h, 7d (the exp claim)")
      ->envname("TAILBUS_TOKEN_TTL")
      ->type_name("DURATION")
      ->capture_default_str();
  cmd->callback([opts, &action] { action = [opts] { return RunToken(*opts); }; });
}

}  // namespace tailbus::cli
