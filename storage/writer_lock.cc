#include "storage/writer_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tailbus::sqlite {

WriterLock& WriterLock::operator=(WriterLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

WriterLock::~WriterLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

Result<WriterLock> WriterLock::Acquire(const std::string& log_path) {
  const std::string lock_path = log_path + "-lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IoError(
        fmt::format("{}: cannot open {}: {}", log_path, lock_path, std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::Busy(fmt::format(
          "{}: another process is writing this log; stop it, or publish through its server "
          "(tailbus publish --url)",
          log_path));
    }
    return Status::IoError(
        fmt::format("{}: cannot lock {}: {}", log_path, lock_path, std::strerror(err)));
  }
  return WriterLock(fd);
}

}  // namespace tailbus::sqlite
