// What the reliability tests check a log against: a ledger of every append
// the server acknowledged, the whole log read back over the HTTP API, and
// subscribers that resume from their last offset and record every event they
// were sent. Problems are collected as text (not asserted on the spot) so
// that threads can report them and a test prints them all at once.
//
// Threading: Ledger and ResumingSubscriber are thread-safe; ReadLog and
// AuditLog are plain functions.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace tailbus::reliability {

// Every acknowledged (event_id, offset), from every producer.
class Ledger {
 public:
  // Records one acknowledgement. The same id acknowledged again (a retry
  // answered by the dedupe window) must carry the same offset, and no two ids
  // may share an offset: a conflict is recorded as a problem.
  void Record(const std::string& event_id, int64_t offset);
  void AddProblem(std::string problem);

  std::map<int64_t, std::string> Snapshot() const;  // offset -> event_id
  size_t size() const;
  std::vector<std::string> Problems() const;

 private:
  mutable std::mutex mu_;
  std::map<int64_t, std::string> by_offset_;
  std::unordered_map<std::string, int64_t> by_id_;
  std::vector<std::string> problems_;
};

struct LoggedEvent {
  int64_t offset = 0;
  std::string event_id;
  std::string session_id;
};

struct LogContents {
  std::vector<LoggedEvent> events;  // as read, page after page
  int64_t head = 0;                 // of the first page
  int64_t earliest = 0;
  std::string epoch;
};

// Reads every event up to the head (as of the first page) with
// GET /api/events?after=…&limit=1000. IoError on any failed request.
Result<LogContents> ReadLog(const std::string& base_url);

// The checks after a crash: offsets contiguous from earliest (1: the tests
// never delete) to head, no event_id twice, every acknowledged event present
// at its offset with its id, every event a subscriber was sent present at its
// offset with its id. Returns the problems found (empty: all good), at most
// a few dozen.
std::vector<std::string> AuditLog(const LogContents& log,
                                  const std::map<int64_t, std::string>& acked,
                                  const std::map<int64_t, std::string>& seen);

// The session summaries the server reports (GET /api/sessions) against the
// events of `log`, read while nothing is being appended: each session's
// event count and first and last offsets, and no session missing or extra;
// and each session's history (GET /api/sessions/{id}/events) holds exactly
// its events of `log`.
// Returns the problems found (empty: all good). IoError if a request fails.
Result<std::vector<std::string>> AuditSessions(const std::string& base_url, const LogContents& log);

// A WebSocket subscriber that reconnects whenever its connection ends
// (server killed, restarted on another port) and resumes with
// ?after=<last offset it was sent>&epoch=<the log's epoch>. It checks every
// frame as it arrives: hello's `after` is what it asked for, the epoch never
// changes, no reset, and offsets strictly increase across reconnects (with
// `contiguous`, each is exactly the previous + 1: no gap, no duplicate).
class ResumingSubscriber {
 public:
  // `port` is read before each connection attempt (0: the server is down).
  // `filter_json` is a tailbus filter ("" for every event).
  ResumingSubscriber(const std::atomic<int>& port, std::string filter_json, bool contiguous);
  ~ResumingSubscriber();  // Stop()s
  ResumingSubscriber(const ResumingSubscriber&) = delete;
  ResumingSubscriber& operator=(const ResumingSubscriber&) = delete;

  void Stop();
  int64_t last() const { return last_.load(); }
  int connections() const { return connections_.load(); }
  std::map<int64_t, std::string> Seen() const;  // offset -> event_id
  std::vector<std::string> Problems() const;

 private:
  void Run();
  void Problem(std::string text);

  const std::atomic<int>& port_;
  const std::string filter_json_;
  const bool contiguous_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> last_{0};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::map<int64_t, std::string> seen_;
  std::vector<std::string> problems_;
  std::string epoch_;  // subscriber thread only
  std::thread thread_;
};

// Problems joined one per line, for failure messages.
std::string JoinProblems(const std::vector<std::string>& problems);

}  // namespace tailbus::reliability
