// Helpers shared by the bus tests: temp directories, events, a fault-injecting store.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>

#include "core/event_decoder.h"
#include "core/time_format.h"
#include "storage/log_store.h"
#include "tests/test_util/temp_dir.h"

namespace tailbus::testing {

inline std::vector<Event> Events(const std::string& json) {
  DecodeResult r = DecodeEvents(json, DecodeLimits{}, NowMillis());
  EXPECT_TRUE(r.ok()) << r.ToStatus().ToString();
  return std::move(r.events);
}

inline Event MakeEvent(const std::string& session, const std::string& type,
                       const std::string& extra = "") {
  std::string json = R"({"session_id":")" + session + R"(","event_type":")" + type + "\"" +
                     (extra.empty() ? "" : "," + extra) + "}";
  auto events = Events(json);
  return events.empty() ? Event{} : std::move(events.front());
}

// Wraps a real store and fails Append on demand (a real SQLite file cannot be
// made to fail a commit at a chosen moment), or holds the writer at a gate.
class FaultyLogStore : public LogStore {
 public:
  explicit FaultyLogStore(std::unique_ptr<LogStore> real) : real_(std::move(real)) {}

  // The next `count` appends fail with `status`.
  void FailNext(int count, Status status) {
    std::lock_guard lock(mu_);
    fail_count_ = count;
    fail_status_ = std::move(status);
  }
  // While closed, Append blocks (the writer thread stalls; the queue fills).
  void SetGate(bool open) {
    {
      std::lock_guard lock(mu_);
      gate_open_ = open;
    }
    cv_.notify_all();
  }
  int append_calls() const { return append_calls_.load(); }

  Status Append(std::span<const AppendRecord> records) override {
    ++append_calls_;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return gate_open_; });
      if (fail_count_ > 0) {
        --fail_count_;
        return fail_status_;
      }
    }
    return real_->Append(records);
  }
  Status Flush() override { return real_->Flush(); }
  Status DeleteSession(std::string_view id, bool hard) override {
    return real_->DeleteSession(id, hard);
  }
  Result<int64_t> RunRetentionStep(const RetentionPolicy& p, int64_t now, size_t rows) override {
    return real_->RunRetentionStep(p, now, rows);
  }
  Result<std::vector<std::pair<std::string, int64_t>>> RecentEventIds(int64_t since,
                                                                      size_t max) override {
    return real_->RecentEventIds(since, max);
  }
  std::unique_ptr<LogReader> NewReader() override { return real_->NewReader(); }
  int64_t head() const override { return real_->head(); }
  int64_t earliest() const override { return real_->earliest(); }
  const std::string& epoch() const override { return real_->epoch(); }
  const std::string& path() const override { return real_->path(); }

 private:
  std::unique_ptr<LogStore> real_;
  std::mutex mu_;
  std::condition_variable cv_;
  int fail_count_ = 0;
  Status fail_status_;
  bool gate_open_ = true;
  std::atomic<int> append_calls_{0};
};

}  // namespace tailbus::testing
