// Reading the HS256 secret shared by `tailbus token` and `tailbus serve
// --auth-secret-file` (docs/SECURITY.md "Tokens").
#pragma once

#include <string>

#include "core/status.h"

namespace tailbus::cli {

// The file's bytes with ONE trailing newline ("\n" or "\r\n") removed, so
// that `openssl rand -base64 48 > F` and an editor-written file both work.
// InvalidArgument naming the file when it cannot be read, is larger than
// 64 KiB, or holds fewer than kMinSecretBytes (core/token.h) bytes.
[[nodiscard]] Result<std::string> ReadSecretFile(const std::string& path);

}  // namespace tailbus::cli
