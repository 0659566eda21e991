#include "core/event_id.h"

#include <chrono>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace tailbus {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr int64_t kMaxUlidMillis = (int64_t{1} << 48) - 1;
// How far back the clock may step while ids keep the last time (and so keep sorting in
// generation order). NTP steps and VM clock corrections are well within this.
constexpr int64_t kMaxHeldBackMillis = 10'000;
constexpr uint64_t kLow40Mask = (uint64_t{1} << 40) - 1;

// Process-wide generator state. One mutex orders every id the process makes,
// which is what lets ids from different threads sort in generation order too.
class IdGenerator {
 public:
  IdGenerator() : rng_(MakeSeed()) {}

  std::string NewUlid(int64_t now_ms) {
    if (now_ms < 0) now_ms = 0;
    if (now_ms > kMaxUlidMillis) now_ms = kMaxUlidMillis;
    int64_t time_ms;
    uint64_t rand_hi;  // top 16 of the 80 random bits
    uint64_t rand_lo;  // low 64 of the 80 random bits
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (now_ms > last_ms_ || now_ms < last_ms_ - kMaxHeldBackMillis) {
        last_ms_ = now_ms;
        rand_lo_ = rng_();
        rand_hi_ = rng_() & 0xFFFF;
      } else {
        // Same millisecond, or the clock stepped back a little: keep the last
        // time and increment the random part so the new id sorts after the
        // last one. (A step back of more than kMaxHeldBackMillis is taken as
        // a new clock rather than held against forever.)
        if (++rand_lo_ == 0 && ++rand_hi_ > 0xFFFF) {
          // 80-bit overflow (astronomically unlikely): move to the next millisecond.
          rand_hi_ = 0;
          if (last_ms_ < kMaxUlidMillis) ++last_ms_;
        }
      }
      time_ms = last_ms_;
      rand_hi = rand_hi_;
      rand_lo = rand_lo_;
    }

    char out[26];
    auto t = static_cast<uint64_t>(time_ms);
    for (int i = 9; i >= 0; --i) {  // 10 chars: 50 bits, the top 2 are zero
      out[i] = kCrockford[t & 31];
      t >>= 5;
    }
    uint64_t top40 = (rand_hi << 24) | (rand_lo >> 40);
    uint64_t low40 = rand_lo & kLow40Mask;
    for (int i = 17; i >= 10; --i) {
      out[i] = kCrockford[top40 & 31];
      top40 >>= 5;
    }
    for (int i = 25; i >= 18; --i) {
      out[i] = kCrockford[low40 & 31];
      low40 >>= 5;
    }
    return std::string(out, sizeof(out));
  }

  std::string RandomHex() {
    uint64_t words[2];
    {
      std::lock_guard<std::mutex> lock(mu_);
      words[0] = rng_();
      words[1] = rng_();
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(32, '0');
    for (int w = 0; w < 2; ++w) {
      for (int i = 0; i < 16; ++i) {
        out[static_cast<size_t>(w * 16 + i)] = kHex[(words[w] >> (60 - 4 * i)) & 15];
      }
    }
    return out;
  }

 private:
  static std::mt19937_64 MakeSeed() {
    std::vector<uint32_t> words;
    words.reserve(12);
    try {
      std::random_device device;
      for (int i = 0; i < 8; ++i) words.push_back(device());
    } catch (...) {
      // No entropy source: fall back to the clock and addresses below. Ids are
      // still unique within this process; only cross-process collisions get likelier.
    }
    const auto now =
        static_cast<uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
    const auto tid =
        static_cast<uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
    const auto addr = reinterpret_cast<uintptr_t>(&words);
    for (uint64_t v : {now, tid, static_cast<uint64_t>(addr)}) {
      words.push_back(static_cast<uint32_t>(v));
      words.push_back(static_cast<uint32_t>(v >> 32));
    }
    std::seed_seq seq(words.begin(), words.end());
    return std::mt19937_64(seq);
  }

  std::mutex mu_;
  std::mt19937_64 rng_;
  int64_t last_ms_ = -1;
  uint64_t rand_hi_ = 0;
  uint64_t rand_lo_ = 0;
};

IdGenerator& Generator() {
  static IdGenerator* const generator = new IdGenerator();  // never destroyed: usable at exit
  return *generator;
}

}  // namespace

std::string NewEventId(int64_t now_ms) { return Generator().NewUlid(now_ms); }

std::string RandomHexId() { return Generator().RandomHex(); }

}  // namespace tailbus
