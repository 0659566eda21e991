#include "bench/ws_pool.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "bench/bench_common.h"

namespace tailbus::bench {

WsPool::~WsPool() { Stop(); }

bool WsPool::Connect(int port, const std::vector<std::string>& paths, std::string* error,
                     size_t parallel) {
  if (ep_ < 0) ep_ = epoll_create1(EPOLL_CLOEXEC);
  const size_t base = conns_.size();
  conns_.resize(base + paths.size());
  for (size_t b = 0; b < paths.size(); b += parallel) {
    const size_t e = std::min(paths.size(), b + parallel);
    for (size_t i = b; i < e; ++i) {
      Conn& c = conns_[base + i];
      c.fd = TcpConnect(port);
      if (c.fd < 0) {
        *error = "connect #" + std::to_string(base + i) + " failed: " + strerror(errno);
        return false;
      }
      std::string req = WsUpgradeRequest(port, paths[i]);
      if (!WriteAll(c.fd, req.data(), req.size())) {
        *error = "upgrade write failed";
        return false;
      }
    }
    for (size_t i = b; i < e; ++i) {
      Conn& c = conns_[base + i];
      char tmp[4096];
      size_t end;
      while ((end = c.buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t r = recv(c.fd, tmp, sizeof tmp, 0);
        if (r <= 0) {
          *error = "connection #" + std::to_string(base + i) + " closed during upgrade";
          return false;
        }
        c.buf.append(tmp, static_cast<size_t>(r));
      }
      if (c.buf.compare(0, 12, "HTTP/1.1 101") != 0) {
        *error = "upgrade refused for " + paths[i] + ": " + c.buf.substr(0, c.buf.find("\r\n"));
        return false;
      }
      c.buf.erase(0, end + 4);
      fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = base + i;
      epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    }
  }
  return true;
}

void WsPool::Start(OnMessage on_message) {
  on_message_ = std::move(on_message);
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void WsPool::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  for (auto& c : conns_)
    if (c.fd >= 0) {
      close(c.fd);
      c.fd = -1;
    }
  conns_.clear();
  if (ep_ >= 0) close(ep_);
  ep_ = -1;
}

// Parses every complete frame in conns_[i].buf; false when the peer closed.
bool WsPool::Drain(size_t i, int64_t now) {
  Conn& c = conns_[i];
  while (true) {
    WsFrame f;
    long used = ParseWsFrame(c.buf.data() + c.pos, c.buf.size() - c.pos, &f);
    if (used < 0) Fail("malformed WebSocket frame on connection " + std::to_string(i));
    if (used == 0) break;
    c.pos += static_cast<size_t>(used);
    if (f.opcode == 8) return false;
    if (f.opcode == 9) {
      std::string pong;
      AppendWsFrame(pong, std::string_view(f.data, f.len), 10);
      WriteAll(c.fd, pong.data(), pong.size());
      continue;
    }
    if (f.opcode == 10) continue;
    if (f.fin && c.partial.empty()) {
      on_message_(i, std::string_view(f.data, f.len), now);
    } else {
      c.partial.append(f.data, f.len);
      if (f.fin) {
        on_message_(i, c.partial, now);
        c.partial.clear();
      }
    }
  }
  if (c.pos == c.buf.size()) {
    c.buf.clear();
    c.pos = 0;
  } else if (c.pos > 65536) {
    c.buf.erase(0, c.pos);
    c.pos = 0;
  }
  return true;
}

void WsPool::Loop() {
  for (size_t i = 0; i < conns_.size(); ++i)
    if (!conns_[i].buf.empty()) Drain(i, NowNs());
  std::vector<epoll_event> evs(1024);
  std::vector<char> tmp(1 << 18);
  while (!stop_.load(std::memory_order_relaxed)) {
    int n = epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 20);
    for (int k = 0; k < n; ++k) {
      const size_t i = evs[static_cast<size_t>(k)].data.u64;
      Conn& c = conns_[i];
      bool open = true;
      while (true) {
        ssize_t r = recv(c.fd, tmp.data(), tmp.size(), 0);
        if (r > 0) {
          c.buf.append(tmp.data(), static_cast<size_t>(r));
          if (!Drain(i, NowNs())) {
            open = false;
            break;
          }
          if (static_cast<size_t>(r) < tmp.size()) break;
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
        open = false;
        break;
      }
      if (!open) {
        epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
        closed_.fetch_add(1);
      }
    }
  }
}

}  // namespace tailbus::bench
