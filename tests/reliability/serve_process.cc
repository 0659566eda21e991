#include "tests/reliability/serve_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#ifndef TAILBUS_BINARY
#error "TAILBUS_BINARY must name the built tailbus executable"
#endif

// Invariants: pid_ names a child of this process until reaped_; the child is
// always reaped (by Kill, Terminate, Running or the destructor), so no zombie
// and no stray server outlives a test.

namespace tailbus::reliability {
namespace {

using Clock = std::chrono::steady_clock;

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<std::unique_ptr<ServeProcess>> ServeProcess::Start(const ServeSpec& spec) {
  std::vector<std::string> args = {TAILBUS_BINARY, "serve",    "--db",
                                   spec.db,        "--listen", "127.0.0.1:0"};
  args.insert(args.end(), spec.extra_args.begin(), spec.extra_args.end());
  std::vector<char*> argv = CStrings(args);
  int log_fd = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    return Status::IoError("cannot open " + spec.log.string() + ": " + std::strerror(errno));
  }
  // Where the new child's output starts in the (appended) log.
  const off_t log_start = ::lseek(log_fd, 0, SEEK_END);

  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only until exec.
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // The test's own sockets (clients of an earlier server) must not live on
    // in the server: a killed client connection has to look closed.
    ::close_range(3, ~0U, 0);
    // A test killed by ctest's timeout must not leave a server behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (spec.file_size_limit > 0) {
      // Ignored dispositions survive exec: a write past the limit then fails
      // with EFBIG (as ENOSPC would on a full disk) instead of killing us.
      ::signal(SIGXFSZ, SIG_IGN);
      rlimit lim{};
      ::getrlimit(RLIMIT_FSIZE, &lim);
      lim.rlim_cur = static_cast<rlim_t>(spec.file_size_limit);
      if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(126);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  if (pid < 0) return Status::IoError(std::string("fork: ") + std::strerror(errno));

  std::unique_ptr<ServeProcess> proc(new ServeProcess(pid, spec.log));
  static const std::regex kServing(R"(serving http://127\.0\.0\.1:(\d+))");
  const auto deadline = Clock::now() + spec.start_timeout;
  while (Clock::now() < deadline) {
    std::string log = proc->Log();
    std::string mine = static_cast<size_t>(log_start) <= log.size() ? log.substr(log_start) : log;
    std::smatch m;
    if (std::regex_search(mine, m, kServing)) {
      proc->port_ = std::stoi(m[1].str());
      return proc;
    }
    if (!proc->Running()) {
      return Status::IoError("tailbus serve exited with " + std::to_string(proc->exit_code_) +
                             " before serving: " + mine);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  proc->Kill();
  return Status::IoError("tailbus serve printed no start-up line within the timeout: " +
                         proc->Log());
}

ServeProcess::~ServeProcess() { Kill(); }

std::string ServeProcess::url() const { return "http://127.0.0.1:" + std::to_string(port_); }
std::string ServeProcess::ws_url() const { return "ws://127.0.0.1:" + std::to_string(port_); }

void ServeProcess::Reap(int status) {
  reaped_ = true;
  exit_code_ = DecodeWaitStatus(status);
}

void ServeProcess::Kill() {
  if (reaped_) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  Reap(status);
}

int ServeProcess::Terminate(std::chrono::milliseconds timeout) {
  if (reaped_) return exit_code_;
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!Running()) return exit_code_;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
  return -1;
}

bool ServeProcess::Running() {
  if (reaped_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    Reap(status);
    return false;
  }
  return true;
}

Status ServeProcess::SetFileSizeLimit(int64_t bytes) {
  if (reaped_) return Status::Unavailable("the server has exited");
  rlimit old{};
  if (::prlimit(pid_, RLIMIT_FSIZE, nullptr, &old) != 0) {
    return Status::IoError(std::string("prlimit (read): ") + std::strerror(errno));
  }
  rlimit lim = old;  // keep the hard limit: raising the soft one needs no privilege
  lim.rlim_cur = bytes > 0 ? static_cast<rlim_t>(bytes) : old.rlim_max;
  if (::prlimit(pid_, RLIMIT_FSIZE, &lim, nullptr) != 0) {
    return Status::IoError(std::string("prlimit (write): ") + std::strerror(errno));
  }
  return Status::Ok();
}

std::string ServeProcess::Log() const {
  std::ifstream in(log_, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult RunCommand(const std::vector<std::string>& command,
                         std::chrono::milliseconds timeout) {
  CommandResult result;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return result;
  std::vector<std::string> args = command;
  std::vector<char*> argv = CStrings(args);
  const pid_t pid = ::fork();
  if (pid == 0) {
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  if (pid < 0) {
    ::close(out[0]);
    return result;
  }
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  const auto deadline = Clock::now() + timeout;
  bool open = true;
  while (open) {
    char buf[4096];
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n > 0) {
      result.output.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno != EAGAIN && errno != EINTR) break;
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      open = false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = DecodeWaitStatus(status);
  return result;
}

std::string IntegrityCheck(const std::string& db, const std::filesystem::path& scratch_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(scratch_dir, ec);
  fs::create_directories(scratch_dir, ec);
  const fs::path copy = scratch_dir / "copy.db";
  fs::copy_file(db, copy, ec);
  if (ec) return "cannot copy " + db + ": " + ec.message();
  if (fs::exists(db + "-wal")) {
    fs::copy_file(db + "-wal", copy.string() + "-wal", ec);
    if (ec) return "cannot copy the WAL: " + ec.message();
  }
  CommandResult r = RunCommand({"sqlite3", "-bail", copy.string(), "PRAGMA integrity_check;"});
  std::string out = r.output;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (r.exit_code != 0) return "sqlite3 exited with " + std::to_string(r.exit_code) + ": " + out;
  return out;
}

}  // namespace tailbus::reliability
