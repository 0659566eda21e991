// Thousands of WebSocket client connections on one epoll thread (fan-out
// subscribers, idle connections). Minimal RFC 6455 client: text frames,
// fragmentation, ping -> pong, close.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tailbus::bench {

class WsPool {
 public:
  using OnMessage = std::function<void(size_t idx, std::string_view msg, int64_t recv_ns)>;
  ~WsPool();
  // Opens one connection per path (batches of `parallel` handshakes in flight).
  // False with *error on the first failure.
  bool Connect(int port, const std::vector<std::string>& paths, std::string* error,
               size_t parallel = 200);
  // Starts the receive thread; `on_message` runs on it.
  void Start(OnMessage on_message);
  void Stop();  // stops the thread and closes every socket
  size_t size() const { return conns_.size(); }
  int64_t closed() const { return closed_.load(); }

 private:
  struct Conn {
    int fd = -1;
    std::string buf;
    size_t pos = 0;
    std::string partial;
  };
  void Loop();
  bool Drain(size_t i, int64_t now);
  std::vector<Conn> conns_;
  int ep_ = -1;
  OnMessage on_message_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> closed_{0};
  std::thread thread_;
};

}  // namespace tailbus::bench
