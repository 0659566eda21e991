// The real `tailbus serve` binary (TAILBUS_BINARY) as a child process, for the
// reliability tests: started on a given database and an ephemeral loopback
// port, killed with SIGKILL at any moment, stopped with SIGTERM, and
// optionally run under a file-size limit (RLIMIT_FSIZE with SIGXFSZ ignored,
// so a write past the limit fails with EFBIG instead of killing the process:
// how the tests simulate a full disk).
//
// Threading: one thread owns a ServeProcess; port()/url() may be read by any
// thread while it lives.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace tailbus::reliability {

struct ServeSpec {
  // The database file (--db).
  std::string db;
  // Where the server's stderr goes (appended); its start-up line names the port.
  std::filesystem::path log;
  // Flags after `serve --db DB --listen 127.0.0.1:0`.
  std::vector<std::string> extra_args;
  // RLIMIT_FSIZE for the child, bytes (0: inherit the test's). SIGXFSZ is
  // ignored in the child whenever this is set.
  int64_t file_size_limit = 0;
  // How long Start() waits for the start-up line.
  std::chrono::milliseconds start_timeout = std::chrono::seconds(30);
};

class ServeProcess {
 public:
  // Forks and execs the server, then waits for "serving http://127.0.0.1:PORT".
  // IoError (with the server's stderr) when it exits first or says nothing in
  // time.
  static Result<std::unique_ptr<ServeProcess>> Start(const ServeSpec& spec);

  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  ~ServeProcess();  // SIGKILLs and reaps the child if it still runs

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string url() const;     // http://127.0.0.1:PORT
  std::string ws_url() const;  // ws://127.0.0.1:PORT

  // SIGKILL, then reaps. Idempotent.
  void Kill();
  // SIGTERM, then waits up to `timeout` for the exit; returns the exit code
  // (128 + signal when killed by one; -1 when it did not exit in time, after
  // which it is SIGKILLed).
  int Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // True while the child has not exited (reaps it when it has).
  bool Running();
  // How the child ended (as for Terminate), or -1 while it runs.
  int exit_code() const { return exit_code_; }

  // Sets the running child's RLIMIT_FSIZE (soft and hard) with prlimit(2);
  // 0 means unlimited.
  Status SetFileSizeLimit(int64_t bytes);

  // Everything the server wrote to stderr so far.
  std::string Log() const;

 private:
  ServeProcess(pid_t pid, std::filesystem::path log) : pid_(pid), log_(std::move(log)) {}
  void Reap(int status);

  pid_t pid_;
  std::filesystem::path log_;
  int port_ = 0;
  bool reaped_ = false;
  int exit_code_ = -1;
};

// The output of a child process run to completion.
struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by one; -1 when it could not run
  std::string output;  // stdout and stderr, interleaved
};

// Runs `argv` (argv[0] is looked up in PATH) with stdin from /dev/null and
// waits for it (bounded: killed after `timeout`).
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// `PRAGMA integrity_check` by the sqlite3 command-line tool on a copy of the
// database and its WAL (not the -shm: the copy recovers its index from the
// WAL as a restarted server does). Working on a copy leaves the crashed state
// untouched, so the restarted server itself must recover it. Returns the
// tool's output ("ok" when healthy).
std::string IntegrityCheck(const std::string& db, const std::filesystem::path& scratch_dir);

}  // namespace tailbus::reliability
