// HttpRequest (ws/client.h): one blocking HTTP/1.1 request over its own
// short-lived libwebsockets context, serviced on the caller's thread.
//
// Flow: connect -> request line + headers (Content-Length / Content-Type added
// in CLIENT_APPEND_HANDSHAKE_HEADER) -> body written in pieces from
// CLIENT_HTTP_WRITEABLE -> response headers (ESTABLISHED_CLIENT_HTTP) -> body
// (RECEIVE_CLIENT_HTTP_READ) -> COMPLETED_CLIENT_HTTP. A scheduled lws timer
// (sul) bounds the whole exchange: lws_service() ignores its timeout argument
// in 4.1 and would otherwise sleep until lws' own next timer.
#include "ws/client.h"

#include <libwebsockets.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

#include "ws/ws_client.h"

namespace tailbus {
namespace {

constexpr size_t kBodyPiece = 64 * 1024;
constexpr size_t kMaxResponseBytes = size_t{1} << 30;

struct HttpCall {
  lws_sorted_usec_list_t sul;  // the deadline timer; lws_container_of() finds the call
  lws_context* ctx = nullptr;

  std::string method;
  std::string_view body;
  std::string content_type;
  bool send_length = false;

  size_t sent = 0;
  std::vector<unsigned char> piece;

  bool done = false;
  bool completed = false;
  bool timed_out = false;
  bool length_given = false;
  std::string error;
  HttpResponse response;
};

void OnDeadline(lws_sorted_usec_list_t* sul) {
  HttpCall* call = lws_container_of(sul, HttpCall, sul);
  call->timed_out = true;
  call->done = true;
  // Timers run at the start of lws_service(), which then goes on to wait in
  // poll() for the next event: wake it so the caller's loop sees `done`.
  lws_cancel_service(call->ctx);
}

HttpCall* CallOf(lws* wsi) {
  return static_cast<HttpCall*>(lws_context_user(lws_get_context(wsi)));
}

int HttpCallback(lws* wsi, lws_callback_reasons reason, void* /*user*/, void* in, size_t len) {
  switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
      HttpCall* call = CallOf(wsi);
      call->error = in != nullptr && len > 0 ? std::string(static_cast<const char*>(in), len)
                                             : std::string("connection failed");
      call->done = true;
      return 0;
    }
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
      HttpCall* call = CallOf(wsi);
      auto** p = static_cast<unsigned char**>(in);
      unsigned char* end = *p + len;
      if (call->send_length) {
        std::string length = std::to_string(call->body.size());
        if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         reinterpret_cast<const unsigned char*>(length.data()),
                                         static_cast<int>(length.size()), p, end) != 0) {
          return -1;
        }
      }
      if (!call->body.empty()) {
        if (!call->content_type.empty() &&
            lws_add_http_header_by_token(
                wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                reinterpret_cast<const unsigned char*>(call->content_type.data()),
                static_cast<int>(call->content_type.size()), p, end) != 0) {
          return -1;
        }
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE: {
      HttpCall* call = CallOf(wsi);
      if (call->sent >= call->body.size()) return 0;  // extra callbacks happen
      size_t n = std::min(kBodyPiece, call->body.size() - call->sent);
      call->piece.resize(LWS_PRE + n);
      std::memcpy(call->piece.data() + LWS_PRE, call->body.data() + call->sent, n);
      bool last = call->sent + n == call->body.size();
      int written = lws_write(wsi, call->piece.data() + LWS_PRE, n,
                              last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
      if (written < 0 || static_cast<size_t>(written) < n) {
        call->error = "write failed while sending the request body";
        return -1;
      }
      call->sent += n;
      if (last) {
        lws_client_http_body_pending(wsi, 0);
      } else {
        lws_callback_on_writable(wsi);
      }
      return 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP: {
      HttpCall* call = CallOf(wsi);
      call->response.status = static_cast<int>(lws_http_client_http_response(wsi));
      int type_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
      if (type_len > 0) {
        std::string type(static_cast<size_t>(type_len) + 1, '\0');
        int got = lws_hdr_copy(wsi, type.data(), type_len + 1, WSI_TOKEN_HTTP_CONTENT_TYPE);
        type.resize(got > 0 ? static_cast<size_t>(got) : 0);
        call->response.content_type = std::move(type);
      }
      call->length_given = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0;
      return 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
      char buffer[LWS_PRE + 16 * 1024];
      char* start = buffer + LWS_PRE;
      int room = static_cast<int>(sizeof buffer - LWS_PRE);
      if (lws_http_client_read(wsi, &start, &room) < 0) return -1;
      return 0;
    }
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ: {
      HttpCall* call = CallOf(wsi);
      if (call->response.body.size() + len > kMaxResponseBytes) {
        call->error = "response body larger than 1 GiB";
        call->done = true;
        return -1;
      }
      call->response.body.append(static_cast<const char*>(in), len);
      return 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP: {
      HttpCall* call = CallOf(wsi);
      call->completed = true;
      call->done = true;
      return 0;
    }
    case LWS_CALLBACK_CLOSED_CLIENT_HTTP: {
      HttpCall* call = CallOf(wsi);
      if (!call->completed && call->error.empty()) {
        if (call->response.status == 0) {
          call->error = "the server closed the connection without answering";
        } else if (!call->length_given) {
          call->completed = true;  // HTTP/1.0 style: the body ends with the connection
        } else {
          call->error = "the server closed the connection before the response body was complete";
        }
      }
      call->done = true;
      return 0;
    }
    default:
      return 0;
  }
}

}  // namespace

Result<HttpResponse> HttpRequest(std::string_view method, std::string_view url,
                                 std::string_view body, std::string_view content_type,
                                 int timeout_ms, const std::string& ca_file) {
  Result<ParsedUrl> parsed = ParseUrl(url);
  if (!parsed.ok()) return parsed.status();
  if (parsed->scheme != "http" && parsed->scheme != "https") {
    return Status::InvalidArgument("bad URL '" + std::string(url) +
                                   "': expected http:// or https://");
  }
  if (parsed->path.size() > kMaxClientPathBytes) {
    return Status::InvalidArgument("URL path and query too long (" +
                                   std::to_string(parsed->path.size()) + " bytes; at most " +
                                   std::to_string(kMaxClientPathBytes) + ")");
  }
  if (method.empty() || method.find_first_of(" \r\n") != std::string_view::npos) {
    return Status::InvalidArgument("bad HTTP method '" + std::string(method) + "'");
  }
  ws_client_internal::InitLwsLogging();

  HttpCall call;
  std::memset(&call.sul, 0, sizeof call.sul);
  call.method = std::string(method);
  for (char& c : call.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  call.body = body;
  call.content_type = std::string(content_type);
  call.send_length =
      !body.empty() || call.method == "POST" || call.method == "PUT" || call.method == "PATCH";

  lws_protocols protocols[2];
  std::memset(protocols, 0, sizeof protocols);
  protocols[0].name = "tailbus-http-client";
  protocols[0].callback = &HttpCallback;
  protocols[0].tx_packet_size = kBodyPiece;

  lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.user = &call;
  info.fd_limit_per_thread = 4;  // one connection: small fd tables (see ws_client.cc)
  info.timeout_secs = static_cast<unsigned int>(std::max(timeout_ms, 0) / 1000 + 5);
  info.max_http_header_data = 16 * 1024;
  if (parsed->tls) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (!ca_file.empty()) info.client_ssl_ca_filepath = ca_file.c_str();
  }

  lws_context* ctx = lws_create_context(&info);
  if (ctx == nullptr) return Status::IoError("cannot create a libwebsockets client context");
  call.ctx = ctx;

  lws_client_connect_info i;
  std::memset(&i, 0, sizeof i);
  i.context = ctx;
  i.address = parsed->host.c_str();
  i.port = parsed->port;
  i.path = parsed->path.c_str();
  i.host = parsed->authority.c_str();
  i.method = call.method.c_str();
  i.local_protocol_name = protocols[0].name;
  i.alpn = "http/1.1";
  i.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (parsed->tls ? LCCSCF_USE_SSL : 0);

  lws_sul_schedule(ctx, 0, &call.sul, OnDeadline,
                   static_cast<lws_usec_t>(std::max(timeout_ms, 0)) * LWS_US_PER_MS);
  if (lws_client_connect_via_info(&i) == nullptr && !call.done) {
    call.error = "cannot connect to " + parsed->authority +
                 " (connection refused or address not resolvable)";
    call.done = true;
  }
  while (!call.done) {
    if (lws_service(ctx, 0) < 0) {
      if (call.error.empty()) call.error = "the libwebsockets service loop failed";
      break;
    }
  }
  lws_sul_cancel(&call.sul);
  lws_context_destroy(ctx);

  std::string what = call.method + " " + std::string(url);
  if (call.completed) return std::move(call.response);
  if (call.timed_out) {
    return Status::IoError(what + ": timed out after " + std::to_string(timeout_ms) + " ms");
  }
  return Status::IoError(what + ": " + (call.error.empty() ? "request failed" : call.error));
}

}  // namespace tailbus
