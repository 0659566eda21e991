// One writer per log file, across processes: an advisory flock() on
// "<log>-lock", held for the life of the writing LogStore (as LevelDB's LOCK
// file). A separate file, because closing any descriptor of the database file
// itself would drop SQLite's own POSIX locks on it.
#pragma once

#include <string>

#include "core/status.h"

namespace tailbus::sqlite {

class WriterLock {
 public:
  WriterLock() = default;
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  WriterLock(WriterLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  WriterLock& operator=(WriterLock&& other) noexcept;
  ~WriterLock();

  // Busy, naming the log, when another process holds it.
  static Result<WriterLock> Acquire(const std::string& log_path);

 private:
  explicit WriterLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace tailbus::sqlite
