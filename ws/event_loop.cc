#include "ws/event_loop.h"

#if defined(TAILBUS_WITH_LIBEV)
#include <ev.h>
#endif

namespace tailbus::ws {

#if defined(TAILBUS_WITH_LIBEV)

bool EpollLoopSupported() { return true; }

void* NewEpollLoop() {
  const unsigned flags =
      static_cast<unsigned>(EVBACKEND_EPOLL) | static_cast<unsigned>(EVFLAG_NOENV);
  struct ev_loop* loop = ev_loop_new(flags);
  return loop;
}

void RunLoopOnce(void* loop) { ev_run(static_cast<struct ev_loop*>(loop), EVRUN_ONCE); }

void DestroyLoop(void* loop) {
  if (loop != nullptr) ev_loop_destroy(static_cast<struct ev_loop*>(loop));
}

#else

bool EpollLoopSupported() { return false; }
void* NewEpollLoop() { return nullptr; }
void RunLoopOnce(void* /*loop*/) {}
void DestroyLoop(void* /*loop*/) {}

#endif

}  // namespace tailbus::ws
