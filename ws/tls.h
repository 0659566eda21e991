// Checks the TLS files of `tailbus serve --tls-cert/--tls-key` before
// libwebsockets gets them, so a bad file is refused with one line naming it
// (libwebsockets would only fail to create the vhost).
#pragma once

#include <string>

#include "core/status.h"

namespace tailbus::ws {

// Both empty: OK (no TLS). One without the other: InvalidArgument. Otherwise
// the certificate must be a readable PEM certificate, the key a readable PEM
// private key, and the key must belong to the certificate. Any thread.
[[nodiscard]] Status CheckTlsFiles(const std::string& cert_file, const std::string& key_file);

}  // namespace tailbus::ws
