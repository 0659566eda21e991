// Helpers for the client tests (tests/ws/client_*_test.cc): child processes
// with captured output, free loopback ports, temporary directories, bounded
// waits, and a real `tailbus serve` on an ephemeral port.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util/temp_dir.h"
#include "ws/client.h"

namespace tailbus::client_test {

using testing::TempDir;

inline constexpr const char* kPython = "/usr/bin/python3";  // Debian's, with python3-websockets

// Polls `done` every 10 ms until it is true or `timeout` passes.
inline bool WaitUntil(const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// A loopback TCP port that was free a moment ago (bind port 0, read it back).
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  ::close(fd);
  return port;
}

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A child process whose stdout and stderr go to files (read them at any time).
class Child {
 public:
  Child() = default;
  ~Child() { Kill(SIGKILL); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Starts argv[0] (a path) with `argv`. The files must be writable.
  bool Start(const std::vector<std::string>& argv, const std::string& stdout_path,
             const std::string& stderr_path, const std::vector<std::string>& extra_env = {}) {
    stdout_path_ = stdout_path;
    stderr_path_ = stderr_path;
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int out_fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err_fd = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0 || err_fd < 0) return false;
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      ::dup2(out_fd, STDOUT_FILENO);
      ::dup2(err_fd, STDERR_FILENO);
      ::setpgid(0, 0);
      // Dies with the test process, even when that one crashes or is killed.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (const std::string& kv : extra_env) ::putenv(const_cast<char*>(kv.c_str()));
      ::execv(args[0], args.data());
      std::fprintf(stderr, "exec %s failed: %s\n", args[0], std::strerror(errno));
      ::_exit(127);
    }
    ::close(out_fd);
    ::close(err_fd);
    pid_ = pid;
    return true;
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return false;
    }
    return true;
  }

  // Sends `sig` and waits (bounded) for the child to end. The exit status
  // (as from waitpid) when it ended.
  std::optional<int> Kill(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    if (pid_ <= 0) return exit_status_;
    ::kill(pid_, sig);
    return Wait(timeout);
  }

  std::optional<int> Wait(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return exit_status_;
    bool ended = WaitUntil([&] { return !running(); }, timeout);
    if (!ended) return std::nullopt;
    return exit_status_;
  }

  std::string Stdout() const { return ReadFile(stdout_path_); }
  std::string Stderr() const { return ReadFile(stderr_path_); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::string stdout_path_;
  std::string stderr_path_;
};

// The `tailbus` executable under test.
inline std::string TailbusBinary() {
  if (const char* env = std::getenv("TAILBUS_BIN"); env != nullptr && *env != '\0') return env;
#ifdef TAILBUS_BINARY
  return TAILBUS_BINARY;
#else
  // <build>/tests/ws/ws_tests -> <build>/cli/tailbus
  char self[PATH_MAX] = {};
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "tailbus";
  std::filesystem::path p(std::string(self, static_cast<size_t>(n)));
  return (p.parent_path().parent_path().parent_path() / "cli" / "tailbus").string();
#endif
}

// `tailbus serve` on 127.0.0.1:<free port> with a database in `dir`. Restart()
// reuses the same port and database (the log and its epoch survive).
class TestServer {
 public:
  explicit TestServer(std::string dir) : dir_(std::move(dir)) {}

  bool Start(std::vector<std::string> extra_args = {}) {
    if (port_ == 0) port_ = FreePort();
    extra_args_ = std::move(extra_args);
    return Launch();
  }

  bool Restart() {
    child_.Kill(SIGKILL);
    return Launch();
  }

  // SIGKILL: no goodbye to the clients.
  void Crash() { child_.Kill(SIGKILL); }
  std::optional<int> Stop() { return child_.Kill(SIGTERM); }

  int port() const { return port_; }
  std::string http_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string ws_url() const { return "ws://127.0.0.1:" + std::to_string(port_); }
  std::string db_path() const { return dir_ + "/tailbus.db"; }
  std::string log() const { return child_.Stdout() + child_.Stderr(); }

 private:
  bool Launch() {
    ++launches_;
    std::vector<std::string> argv = {TailbusBinary(), "serve",
                                     "--listen",      "127.0.0.1:" + std::to_string(port_),
                                     "--db",          db_path()};
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    std::string base = dir_ + "/server" + std::to_string(launches_);
    if (!child_.Start(argv, base + ".out", base + ".err")) return false;
    // Ready when GET /api/status answers (bounded).
    return WaitUntil(
               [&] {
                 if (!child_.running()) return true;
                 Result<HttpResponse> r =
                     HttpRequest("GET", http_url() + "/api/status", {}, {}, 1'000);
                 return r.ok() && r->status == 200;
               },
               std::chrono::seconds(30)) &&
           child_.running();
  }

  std::string dir_;
  int port_ = 0;
  int launches_ = 0;
  std::vector<std::string> extra_args_;
  Child child_;
};

}  // namespace tailbus::client_test
