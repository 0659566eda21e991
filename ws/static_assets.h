// The web UI over HTTP: GET of one of its files (web/ui_files.h) answered from
// the copy embedded in the binary, or from --ui-dir on disk. "/" is the UI for
// browsers (an Accept header with text/html) and stays the JSON index for API
// clients. Called by Server::Impl::OnHttpRequest on the network thread.
#pragma once

#include "ws/server_internal.h"

namespace tailbus::ws {

// Answers `conn` and returns true when its GET request is for a UI file;
// returns false (nothing sent) otherwise, so the API routes and the 404 apply.
bool TryServeWebUi(Server::Impl& server, Conn* conn);

}  // namespace tailbus::ws
