// A minimal HTTP/1.1 server on an ephemeral loopback port for testing
// `tailbus publish --url`: records each request and answers it with a canned
// response (one request per connection, Connection: close).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tailbus::cli_test {

struct FakeRequest {
  std::string method;
  std::string path;
  std::string content_type;
  std::string body;
};

struct FakeResponse {
  int status = 200;
  std::string body;
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;

  explicit FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 16) != 0) {
      std::abort();
    }
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~FakeHttpServer() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<FakeRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      HandleConnection(fd);
      close(fd);
    }
  }

  static bool ReadMore(int fd, std::string& buf) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<size_t>(n));
    return true;
  }

  void HandleConnection(int fd) {
    std::string buf;
    size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore(fd, buf)) return;
    }
    FakeRequest req;
    std::string head = buf.substr(0, header_end);
    size_t line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    size_t sp1 = request_line.find(' ');
    size_t sp2 = request_line.find(' ', sp1 + 1);
    req.method = request_line.substr(0, sp1);
    req.path = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t content_length = 0;
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t end = head.find("\r\n", pos);
      if (end == std::string::npos) end = head.size();
      std::string line = head.substr(pos, end - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        if (strcasecmp(name.c_str(), "content-length") == 0) content_length = std::stoul(value);
        if (strcasecmp(name.c_str(), "content-type") == 0) req.content_type = value;
      }
      pos = end + 2;
    }
    std::string body = buf.substr(header_end + 4);
    while (body.size() < content_length) {
      if (!ReadMore(fd, body)) return;
    }
    req.body = body.substr(0, content_length);
    FakeResponse resp = handler_(req);
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) +
                      " Fake\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(resp.body.size()) + "\r\nConnection: close\r\n\r\n" +
                      resp.body;
    size_t sent = 0;
    while (sent < out.size()) {
      ssize_t n = write(fd, out.data() + sent, out.size() - sent);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    // Let the client read the answer and close first.
    std::string rest;
    while (ReadMore(fd, rest)) {
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<FakeRequest> requests_;
};

}  // namespace tailbus::cli_test
