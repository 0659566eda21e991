#include "ws/static_assets.h"

#include <utility>

#include "web/ui_files.h"

namespace tailbus::ws {

bool TryServeWebUi(Server::Impl& server, Conn* conn) {
  const std::string& path = conn->http.path;
  if (!IsUiPath(path)) return false;
  if (path == "/" && !AcceptsHtml(Server::Impl::Header(conn->wsi, WSI_TOKEN_HTTP_ACCEPT))) {
    return false;  // API clients keep the JSON index at "/"
  }
  std::optional<UiResponse> ui = ServeUiFile(path, server.options_.ui_dir);
  if (!ui) return false;
  server.Respond(conn, ui->status, std::move(ui->content_type), std::move(ui->body),
                 std::move(ui->headers));
  return true;
}

}  // namespace tailbus::ws
