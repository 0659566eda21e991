// The epoll event loop (libev) the server runs libwebsockets on, when
// available. libwebsockets 4.1's default loop is poll(): every turn costs
// O(open sockets), which dominates at thousands of connections (measured: with
// 9,000 idle WebSocket connections, commit-to-delivery p50 went from 0.17 ms
// to 18 ms). With libev's epoll backend a turn costs O(ready sockets).
//
// Wraps the few libev calls the server needs so ev.h stays out of the rest of
// ws/. The loop is handed to libwebsockets as a "foreign" loop
// (LWS_SERVER_OPTION_LIBEV + foreign_loops; lws loads its libev plugin,
// Debian package libwebsockets-evlib-ev). Network thread only.
#pragma once

namespace tailbus::ws {

// True when this build has libev support.
bool EpollLoopSupported();
// A new epoll-backed libev loop, or nullptr.
void* NewEpollLoop();
// Blocks until at least one event was handled.
void RunLoopOnce(void* loop);
void DestroyLoop(void* loop);

}  // namespace tailbus::ws
