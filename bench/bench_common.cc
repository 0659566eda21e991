#include "bench/bench_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace tailbus::bench {

void SleepUntilNs(int64_t t_ns) {
  timespec ts{};
  ts.tv_sec = t_ns / 1'000'000'000;
  ts.tv_nsec = t_ns % 1'000'000'000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}
void SleepMs(int64_t ms) { SleepUntilNs(NowNs() + ms * 1'000'000); }

void Fail(const std::string& what) {
  std::fprintf(stderr, "tailbus-bench: CORRECTNESS FAILURE: %s\n", what.c_str());
  throw BenchFailure(what);
}

double Histogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_));
  if (rank >= count_) rank = count_ - 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen > rank) {
      if (i < static_cast<size_t>(kSub)) return static_cast<double>(i);
      const int shift = static_cast<int>(i / kSub) - 1;
      const uint64_t lo = (static_cast<uint64_t>(i % kSub) + kSub) << shift;
      const uint64_t hi = lo + (uint64_t{1} << shift);
      const double mid = (static_cast<double>(lo) + static_cast<double>(hi)) / 2;
      return mid > static_cast<double>(max_) ? static_cast<double>(max_) : mid;
    }
  }
  return static_cast<double>(max_);
}

void AddLatency(Row& row, const std::string& p, const Histogram& h) {
  row.Add(p + "_p50_ms", h.Quantile(0.50) / 1e6);
  row.Add(p + "_p90_ms", h.Quantile(0.90) / 1e6);
  row.Add(p + "_p99_ms", h.Quantile(0.99) / 1e6);
  row.Add(p + "_p999_ms", h.Quantile(0.999) / 1e6);
  row.Add(p + "_max_ms", h.max_ns() / 1e6);
  row.Add(p + "_samples", static_cast<double>(h.count()));
}

void PrintRow(const Row& r) {
  std::printf("  %-9s %-11s %-34s", r.system.c_str(), r.scenario.c_str(), r.mode.c_str());
  for (const auto& [k, v] : r.metrics) {
    if (v == static_cast<double>(static_cast<int64_t>(v)) && v > 100)
      std::printf(" %s=%lld", k.c_str(), static_cast<long long>(v));
    else
      std::printf(" %s=%.3g", k.c_str(), v);
  }
  std::printf("\n");
  std::fflush(stdout);
}

// ---- processes ---------------------------------------------------------------------

Child Spawn(const std::vector<std::string>& argv, const std::string& log, int cpu) {
  Child c;
  c.name = argv.at(0);
  pid_t pid = fork();
  if (pid < 0) Fail("fork: " + std::string(strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      sched_setaffinity(0, sizeof(set), &set);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  c.pid = pid;
  return c;
}

void Stop(Child& c) {
  if (c.pid <= 0) return;
  kill(c.pid, SIGTERM);
  const int64_t deadline = NowNs() + 10'000'000'000;
  int status = 0;
  while (true) {
    pid_t r = waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid || r < 0) break;
    if (NowNs() > deadline) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &status, 0);
      break;
    }
    SleepMs(20);
  }
  c.pid = -1;
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool WaitPort(int port, int timeout_ms) {
  const int64_t deadline = NowNs() + int64_t{timeout_ms} * 1'000'000;
  while (NowNs() < deadline) {
    int fd = TcpConnect(port);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    SleepMs(20);
  }
  return false;
}

std::string RunCapture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// ---- sockets -------------------------------------------------------------------------

int TcpConnect(int port, bool nonblocking) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  if (nonblocking) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd pfd{fd, POLLOUT, 0};
        poll(&pfd, 1, 1000);
        continue;
      }
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// ---- WebSocket -------------------------------------------------------------------------

void AppendWsFrame(std::string& out, std::string_view payload, int opcode) {
  out.push_back(static_cast<char>(0x80 | opcode));
  const size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  out.append(4, '\0');  // mask key 0
  out.append(payload);
}

long ParseWsFrame(const char* p, size_t n, WsFrame* f) {
  if (n < 2) return 0;
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  f->fin = (u[0] & 0x80) != 0;
  f->opcode = u[0] & 0x0f;
  if (u[1] & 0x80) return -1;  // servers never mask
  uint64_t len = u[1] & 0x7f;
  size_t h = 2;
  if (len == 126) {
    if (n < 4) return 0;
    len = (uint64_t{u[2]} << 8) | u[3];
    h = 4;
  } else if (len == 127) {
    if (n < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | u[2 + i];
    h = 10;
  }
  if (n < h + len) return 0;
  f->data = p + h;
  f->len = len;
  return static_cast<long>(h + len);
}

std::string WsUpgradeRequest(int port, std::string_view path) {
  std::string r = "GET ";
  r += path;
  r += " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
       "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  return r;
}

WsConn::~WsConn() { Close(); }
void WsConn::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool WsConn::Open(int port, std::string_view path, std::string* error) {
  fd_ = TcpConnect(port);
  if (fd_ < 0) {
    *error = "connect failed";
    return false;
  }
  std::string req = WsUpgradeRequest(port, path);
  if (!WriteAll(fd_, req.data(), req.size())) {
    *error = "write failed";
    return false;
  }
  char buf[65536];
  while (rbuf_.find("\r\n\r\n") == std::string::npos) {
    ssize_t r = recv(fd_, buf, sizeof buf, 0);
    if (r <= 0) {
      *error = "upgrade: connection closed";
      return false;
    }
    rbuf_.append(buf, static_cast<size_t>(r));
  }
  if (rbuf_.compare(0, 12, "HTTP/1.1 101") != 0) {
    *error = "upgrade refused: " + rbuf_.substr(0, rbuf_.find("\r\n"));
    return false;
  }
  rpos_ = rbuf_.find("\r\n\r\n") + 4;
  return true;
}

bool WsConn::Send(std::string_view text) {
  std::string f;
  f.reserve(text.size() + 14);
  AppendWsFrame(f, text);
  return WriteAll(fd_, f.data(), f.size());
}

bool WsConn::SendFramed(std::string_view frames) {
  return WriteAll(fd_, frames.data(), frames.size());
}

bool WsConn::Read(std::string* msg) {
  char buf[1 << 16];
  while (true) {
    WsFrame f;
    long used = ParseWsFrame(rbuf_.data() + rpos_, rbuf_.size() - rpos_, &f);
    if (used < 0) return false;
    if (used > 0) {
      rpos_ += static_cast<size_t>(used);
      if (f.opcode == 8) return false;
      if (f.opcode == 9) {
        std::string pong;
        AppendWsFrame(pong, std::string_view(f.data, f.len), 10);
        WriteAll(fd_, pong.data(), pong.size());
        continue;
      }
      if (f.opcode == 10) continue;
      partial_.append(f.data, f.len);
      if (!f.fin) continue;
      msg->swap(partial_);
      partial_.clear();
      if (rpos_ > (1 << 20) && rpos_ * 2 > rbuf_.size()) {
        rbuf_.erase(0, rpos_);
        rpos_ = 0;
      }
      return true;
    }
    if (rpos_ > 0) {
      rbuf_.erase(0, rpos_);
      rpos_ = 0;
    }
    ssize_t r = recv(fd_, buf, sizeof buf, 0);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    rbuf_.append(buf, static_cast<size_t>(r));
  }
}

// ---- HTTP -------------------------------------------------------------------------------

HttpConn::~HttpConn() {
  if (fd_ >= 0) close(fd_);
}
bool HttpConn::Open(int port) {
  port_ = port;
  fd_ = TcpConnect(port);
  return fd_ >= 0;
}

bool HttpConn::Request(std::string_view method, std::string_view path, std::string_view body,
                       int* status, std::string* response) {
  std::string req;
  req.reserve(body.size() + 200);
  req += method;
  req += ' ';
  req += path;
  req += " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n";
  req += body;
  if (!WriteAll(fd_, req.data(), req.size())) return false;
  char buf[65536];
  size_t hdr_end;
  while ((hdr_end = rbuf_.find("\r\n\r\n")) == std::string::npos) {
    ssize_t r = recv(fd_, buf, sizeof buf, 0);
    if (r <= 0) return false;
    rbuf_.append(buf, static_cast<size_t>(r));
  }
  if (rbuf_.size() < 12) return false;
  *status = std::atoi(rbuf_.c_str() + 9);
  size_t clen = 0;
  {
    size_t pos = 0;
    std::string_view h(rbuf_.data(), hdr_end);
    while ((pos = h.find("\r\n", pos)) != std::string_view::npos) {
      pos += 2;
      if (h.size() - pos > 15 && strncasecmp(h.data() + pos, "content-length:", 15) == 0) {
        clen = std::strtoul(h.data() + pos + 15, nullptr, 10);
        break;
      }
    }
  }
  const size_t need = hdr_end + 4 + clen;
  while (rbuf_.size() < need) {
    ssize_t r = recv(fd_, buf, sizeof buf, 0);
    if (r <= 0) return false;
    rbuf_.append(buf, static_cast<size_t>(r));
  }
  response->assign(rbuf_, hdr_end + 4, clen);
  rbuf_.erase(0, need);
  return true;
}

// ---- payloads -------------------------------------------------------------------------------

std::string MakeEvent(int64_t bg, int sessions, int64_t bt_ns, int size) {
  const int64_t sid = SessionOf(bg, sessions);
  std::string e = "{\"session_id\":\"s" + std::to_string(sid) + "\",\"type\":\"" +
                  (IsToolCall(bg) ? "tool_call" : "bench") + "\",\"bg\":" + std::to_string(bg) +
                  ",\"bsid\":" + std::to_string(sid) + ",\"bt\":" + std::to_string(bt_ns) +
                  ",\"pad\":\"";
  const int pad = size - static_cast<int>(e.size()) - 2;
  if (pad > 0) e.append(static_cast<size_t>(pad), 'x');
  e += "\"}";
  return e;
}

size_t FindInt(std::string_view s, std::string_view key, size_t from, int64_t* value) {
  size_t p = s.find(key, from);
  if (p == std::string_view::npos) return p;
  p += key.size();
  bool neg = false;
  if (p < s.size() && s[p] == '-') {
    neg = true;
    ++p;
  }
  int64_t v = 0;
  while (p < s.size() && s[p] >= '0' && s[p] <= '9') v = v * 10 + (s[p++] - '0');
  *value = neg ? -v : v;
  return p;
}

}  // namespace tailbus::bench
