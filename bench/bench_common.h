// tailbus-bench: shared pieces — clock, log-bucket histogram, results, child
// processes (servers under test), plain sockets, RFC 6455 framing, event
// payloads and the gap/duplicate tracker used by every fan-out subscriber.
//
// Everything here is load-generator code: it is linked only into
// tailbus-bench and never into the server.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tailbus::bench {

// ---- time -------------------------------------------------------------------

inline int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}
void SleepUntilNs(int64_t t_ns);
void SleepMs(int64_t ms);

// Thrown by any correctness check: the run stops and the tool exits non-zero.
struct BenchFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void Fail(const std::string& what);

// ---- histogram ----------------------------------------------------------------

// Log-linear buckets (32 per power of two: <= 3.1 % relative error), values in
// nanoseconds. Fixed size, no allocation per sample.
class Histogram {
 public:
  static constexpr int kSubBits = 5;
  static constexpr int kSub = 1 << kSubBits;
  void Record(int64_t v) {
    if (v < 0) v = 0;
    const uint64_t u = static_cast<uint64_t>(v);
    ++buckets_[Index(u)];
    ++count_;
    sum_ += u;
    if (u > max_) max_ = u;
  }
  void Merge(const Histogram& o) {
    for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += o.buckets_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    if (o.max_ > max_) max_ = o.max_;
  }
  uint64_t count() const { return count_; }
  double max_ns() const { return static_cast<double>(max_); }
  double mean_ns() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }
  // Value at quantile q (0..1): the middle of the bucket holding it, capped at max.
  double Quantile(double q) const;

 private:
  static int Index(uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    const int e = 63 - __builtin_clzll(v);
    const int shift = e - kSubBits;
    return (shift + 1) * kSub + static_cast<int>((v >> shift) - kSub);
  }
  std::array<uint64_t, 64 * kSub> buckets_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0;
};

// ---- results ------------------------------------------------------------------

struct Row {
  std::string system;    // tailbus | jetstream | redis
  std::string scenario;  // ingest | fanout | connections | catchup
  std::string mode;      // e.g. "http B=100 saturation", "R=10000/s"
  std::vector<std::pair<std::string, double>> metrics;
  std::string command;  // how to reproduce this row alone
  std::string note;
  void Add(std::string k, double v) { metrics.emplace_back(std::move(k), v); }
  double Get(std::string_view k, double dflt = -1) const {
    for (const auto& [key, v] : metrics)
      if (key == k) return v;
    return dflt;
  }
};
void AddLatency(Row& row, const std::string& prefix, const Histogram& h);  // ms
void PrintRow(const Row& r);

// ---- child processes -----------------------------------------------------------

struct Child {
  pid_t pid = -1;
  std::string name;
};
// Starts argv[0] (PATH lookup) with stdout/stderr to `log`, pinned to `cpu`
// (like `taskset -c cpu`) when cpu >= 0.
Child Spawn(const std::vector<std::string>& argv, const std::string& log, int cpu);
// SIGTERM, wait up to 10 s, then SIGKILL. Idempotent.
void Stop(Child& c);
// VmRSS of a process in KiB (from /proc/<pid>/status); -1 when unknown.
long RssKiB(pid_t pid);
int FreePort();
// Waits (<= timeout) until 127.0.0.1:port accepts TCP connections.
bool WaitPort(int port, int timeout_ms);
std::string RunCapture(const std::string& cmd);  // popen, trimmed stdout

// ---- sockets ----------------------------------------------------------------------

int TcpConnect(int port, bool nonblocking = false);  // 127.0.0.1:port, TCP_NODELAY; -1 on error
bool WriteAll(int fd, const void* data, size_t n);

// ---- WebSocket framing (client side) ---------------------------------------------

// A masked client text frame (mask key 0: the payload goes out unchanged).
void AppendWsFrame(std::string& out, std::string_view payload, int opcode = 1);
struct WsFrame {
  int opcode = 0;
  bool fin = false;
  const char* data = nullptr;
  size_t len = 0;
};
// Bytes consumed by one complete frame at p, 0 when incomplete, -1 malformed.
long ParseWsFrame(const char* p, size_t n, WsFrame* f);
std::string WsUpgradeRequest(int port, std::string_view path);

// Blocking WebSocket connection (producers, catch-up, handshakes).
class WsConn {
 public:
  ~WsConn();
  bool Open(int port, std::string_view path, std::string* error);
  bool Send(std::string_view text);
  // Writes frames already built with AppendWsFrame, in one write (a
  // pipelining producer's batch, as the peers' clients write theirs).
  bool SendFramed(std::string_view frames);
  // Next whole text/binary message; answers pings. False on close/error.
  bool Read(std::string* msg);
  int fd() const { return fd_; }
  bool Buffered() const { return rbuf_.size() > rpos_; }
  // A whole frame is buffered: Read returns without blocking.
  bool HasFrame() const {
    WsFrame f;
    return ParseWsFrame(rbuf_.data() + rpos_, rbuf_.size() - rpos_, &f) > 0;
  }
  // Bytes already received after the upgrade response (not yet parsed).
  std::string TakeBuffered() {
    std::string s = rbuf_.substr(rpos_);
    rbuf_.clear();
    rpos_ = 0;
    return s;
  }
  void Close();

 private:
  int fd_ = -1;
  std::string rbuf_;
  size_t rpos_ = 0;
  std::string partial_;
};

// Blocking HTTP/1.1 keep-alive connection.
class HttpConn {
 public:
  ~HttpConn();
  bool Open(int port);
  // Sends one request, reads one Content-Length response.
  bool Request(std::string_view method, std::string_view path, std::string_view body, int* status,
               std::string* response);

 private:
  int fd_ = -1;
  int port_ = 0;
  std::string rbuf_;
};

// ---- payloads -------------------------------------------------------------------

// A bench event as JSON, about `size` bytes, with the fields the trackers read:
// bg = global sequence, bsid = session index, bt = send time (CLOCK_MONOTONIC ns).
// type is "tool_call" when bg % 4 == 0, else "bench".
std::string MakeEvent(int64_t bg, int sessions, int64_t bt_ns, int size);
inline int64_t SessionOf(int64_t bg, int sessions) { return bg % sessions; }
inline bool IsToolCall(int64_t bg) { return bg % 4 == 0; }
// Finds `"key":<integer>` at or after `from`; returns position after the number
// or npos, and the value.
size_t FindInt(std::string_view s, std::string_view key_with_quotes_colon, size_t from,
               int64_t* value);

// ---- fan-out tracker -----------------------------------------------------------

// Every subscriber expects the bench events of one class in order: the events
// with bg = start, start + stride, ... (session i: start i, stride K; all
// sessions: 0, 1; all tool_call events: 0, 4). Any other bg is a gap (bg ahead
// of the expectation) or a duplicate/reorder (bg behind). Offsets, where the
// system has them, must increase strictly.
struct SubTrack {
  int64_t start = 0, stride = 1, next = 0;
  int64_t received = 0, gaps = 0, dups = 0, bad_offsets = 0, foreign = 0;
  int64_t last_offset = 0;
  int64_t session = -1;  // >= 0: a session subscriber (isolation is checked)
};
class Tracker {
 public:
  void Init(std::vector<SubTrack> subs, int64_t warm_bg) {
    subs_ = std::move(subs);
    for (auto& s : subs_) s.next = s.start;
    warm_bg_ = warm_bg;
  }
  // Called by the subscriber's receiving thread; `offset` 0 = not checked.
  void OnEvent(size_t sub, int64_t bg, int64_t bt_ns, int64_t offset, int64_t recv_ns,
               Histogram& h) {
    SubTrack& s = subs_[sub];
    if (offset) {
      if (offset <= s.last_offset) ++s.bad_offsets;
      s.last_offset = offset;
    }
    if (s.session >= 0 && bg % sessions_ != s.session) ++s.foreign;
    if (bg == s.next) {
      s.next += s.stride;
    } else if (bg > s.next) {
      s.gaps += (bg - s.next) / s.stride;
      s.next = bg + s.stride;
    } else {
      ++s.dups;
    }
    ++s.received;
    if (bg >= warm_bg_) h.Record(recv_ns - bt_ns);
  }
  void set_sessions(int k) { sessions_ = k; }
  std::vector<SubTrack>& subs() { return subs_; }
  // Events sub should have received when `sent` events (bg 0..sent-1) went out.
  static int64_t Expected(const SubTrack& s, int64_t sent) {
    return s.start >= sent ? 0 : (sent - 1 - s.start) / s.stride + 1;
  }

 private:
  std::vector<SubTrack> subs_;
  int64_t warm_bg_ = 0;
  int sessions_ = 1;
};

// ---- configuration ---------------------------------------------------------------

struct Config {
  int producers = 4;
  int size = 300;
  int sessions = 1000;
  int batch = 100;   // HTTP events per POST
  int window = 100;  // WebSocket / JetStream / Redis events in flight per producer
  double duration_s = 10;
  double warmup_s = 1;
  double ingest_rate = 50'000;  // fixed offered ingest rate (events/s, all producers); 0: skip
  std::vector<double> fanout_rates = {10'000, 40'000};
  int subs = 1000;  // session subscribers
  int all_subs =
      10;  // all-session subscribers (half unfiltered, half {"event_types":["tool_call"]})
  int conns = 10'000;
  int64_t catchup_events = 1'000'000;
  int catchup_reps = 3;
  int server_cpu = 0, client_cpu = 1;  // -1: no pinning
  std::string data_dir;
  std::string tailbus_bin;
  std::string cmd;  // the command line that reproduces this run
  bool quick = false;
};

}  // namespace tailbus::bench
