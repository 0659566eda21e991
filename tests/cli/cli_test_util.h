// Runs the real `tailbus` binary (TAILBUS_BINARY, set by tests/CMakeLists.txt)
// as a subprocess with given arguments, stdin and environment, and captures
// its stdout, stderr and exit code. Databases live in per-test temp dirs.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

#ifndef TAILBUS_BINARY
#error "TAILBUS_BINARY must name the built tailbus executable"
#endif

extern char** environ;

namespace tailbus::cli_test {

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;
  std::string err;
};

inline std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  return os << "exit " << r.exit_code << "\n--- stdout ---\n"
            << r.out << "--- stderr ---\n"
            << r.err;
}

// Runs TAILBUS_BINARY with `args`. The child's environment is the test's minus
// TAILBUS_DB and NO_COLOR, plus `env` ("KEY=VALUE").
inline RunResult RunTailbus(const std::vector<std::string>& args, std::string_view input = {},
                            const std::vector<std::string>& env = {}) {
  RunResult result;
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0 ||
      pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("TAILBUS_DB=", 0) == 0 || kv.rfind("NO_COLOR=", 0) == 0) continue;
    env_strings.emplace_back(kv);
  }
  for (const std::string& kv : env) env_strings.push_back(kv);
  std::vector<char*> envp;
  for (std::string& kv : env_strings) envp.push_back(kv.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = {TAILBUS_BINARY};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return result;
  }
  int in_fd = in_pipe[1];
  fcntl(in_fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  int out_fd = out_pipe[0];
  int err_fd = err_pipe[0];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    int i_in = -1, i_out = -1, i_err = -1;
    if (in_fd >= 0) {
      i_in = n;
      fds[n++] = {in_fd, POLLOUT, 0};
    }
    if (out_fd >= 0) {
      i_out = n;
      fds[n++] = {out_fd, POLLIN, 0};
    }
    if (err_fd >= 0) {
      i_err = n;
      fds[n++] = {err_fd, POLLIN, 0};
    }
    int ready = poll(fds, n, 1000);
    if (ready < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "tailbus did not finish within 120 s; killing it";
      kill(pid, SIGKILL);
      break;
    }
    if (ready <= 0) continue;
    if (i_in >= 0 && fds[i_in].revents != 0) {
      ssize_t w = write(in_fd, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();  // EPIPE
      if (written == input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
    auto drain = [](int& fd, std::string& sink) {
      char buf[65536];
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fd);
        fd = -1;
      }
    };
    if (i_out >= 0 && fds[i_out].revents != 0) drain(out_fd, result.out);
    if (i_err >= 0 && fds[i_err].revents != 0) drain(err_fd, result.err);
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

// Non-empty lines of `text`.
inline std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

inline std::vector<int64_t> Offsets(std::string_view text) {
  std::vector<int64_t> offsets;
  for (const std::string& line : Lines(text)) offsets.push_back(std::stoll(line));
  return offsets;
}

// Parses one JSON object (fails the test when it is not one).
inline rapidjson::Document ParseJson(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  EXPECT_FALSE(doc.HasParseError()) << "not JSON: " << text;
  EXPECT_TRUE(doc.IsObject()) << "not an object: " << text;
  return doc;
}

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::filesystem::path& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// A fresh temporary directory per test, with a database path inside it.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "tailbus-cli-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    db_ = (dir_ / "data" / "tailbus.db").string();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Runs tailbus with `args` followed by `--db <this test's database>`.
  RunResult Run(std::vector<std::string> args, std::string_view input = {},
                const std::vector<std::string>& env = {}) {
    args.push_back("--db");
    args.push_back(db_);
    return RunTailbus(args, input, env);
  }

  std::filesystem::path dir_;
  std::string db_;
};

// The stderr of a failed command: exactly one line, "tailbus: …".
#define EXPECT_ONE_LINE_ERROR(result)                                           \
  do {                                                                          \
    EXPECT_EQ(::tailbus::cli_test::Lines((result).err).size(), 1u) << (result); \
    EXPECT_EQ((result).err.rfind("tailbus: ", 0), 0u) << (result);              \
  } while (0)

}  // namespace tailbus::cli_test
