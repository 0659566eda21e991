#include "cli/secret_file.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/token.h"

namespace tailbus::cli {

namespace {
constexpr size_t kMaxSecretFileBytes = 64 * 1024;
}  // namespace

Result<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument(
        fmt::format("secret file {}: cannot read it ({})", path, std::strerror(errno)));
  }
  std::string secret;
  char buf[4096];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    secret.append(buf, static_cast<size_t>(in.gcount()));
    if (secret.size() > kMaxSecretFileBytes) {
      return Status::InvalidArgument(
          fmt::format("secret file {}: larger than {} bytes", path, kMaxSecretFileBytes));
    }
  }
  if (!secret.empty() && secret.back() == '\n') {
    secret.pop_back();
    if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  }
  if (secret.size() < kMinSecretBytes) {
    return Status::InvalidArgument(
        fmt::format("secret file {}: {} bytes, a secret must be at least {} bytes (make one with "
                    "`openssl rand -base64 48 > {}`)",
                    path, secret.size(), kMinSecretBytes, path));
  }
  return secret;
}

}  // namespace tailbus::cli
