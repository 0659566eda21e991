// The hot ring's session index must return exactly what a scan of the ring
// returns, across eviction and page limits.
#include "bus/hot_ring.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/filter.h"

namespace tailbus {
namespace {

EventPtr MakeCommitted(int64_t offset, std::string session, std::string type) {
  auto e = std::make_shared<CommittedEvent>();
  e->offset = offset;
  e->header.session_id = std::move(session);
  e->header.event_type = std::move(type);
  e->header.event_id = "id-" + std::to_string(offset);
  e->json = R"({"offset":)" + std::to_string(offset) + "}";
  return e;
}

Filter Parse(const std::string& json) {
  auto f = Filter::Parse(json);
  EXPECT_TRUE(f.ok()) << json << ": " << f.status().ToString();
  return f.ok() ? std::move(f).value() : Filter();
}

std::vector<int64_t> Offsets(const std::vector<EventPtr>& events) {
  std::vector<int64_t> out;
  for (const EventPtr& e : events) out.push_back(e->offset);
  return out;
}

// Reads everything after `after` page by page (max_events per page), as a
// cursor does, and checks each page continues exactly where the last ended.
std::vector<int64_t> ReadAll(const HotRing& ring, const Filter& filter, int64_t after,
                             size_t max_events, int64_t* next_after) {
  HiddenSessions hidden;
  std::vector<int64_t> out;
  for (int pages = 0; pages < 100000; ++pages) {
    std::vector<EventPtr> page;
    RingAnswer a =
        ring.Collect(RingQuery{after, max_events, SIZE_MAX, 8192}, filter, hidden, &page);
    EXPECT_TRUE(a.covered);
    for (int64_t o : Offsets(page)) out.push_back(o);
    EXPECT_GE(a.next_after, after);
    if (a.next_after == after) break;
    after = a.next_after;
  }
  *next_after = after;
  return out;
}

TEST(HotRingTest, SessionFilteredReadsMatchAFullScanAcrossEvictionAndPages) {
  std::mt19937 rng(7);
  HotRing ring(64 * 1024);  // holds a few hundred events: most get evicted
  std::vector<EventPtr> all;
  const char* types[] = {"message", "tool_call", "error"};
  for (int64_t off = 1; off <= 5000; ++off) {
    all.push_back(MakeCommitted(off, "s" + std::to_string(rng() % 37), types[rng() % 3]));
    if (off % 50 == 0) {
      ring.Push(std::vector<EventPtr>(all.end() - 50, all.end()));
    }
  }
  const int64_t first = ring.first_offset();
  ASSERT_GT(first, 1);  // eviction happened
  const std::vector<std::string> filters = {
      R"({"session_ids":["s3"]})",
      R"({"session_ids":["s3","s5","s30"]})",
      R"({"session_ids":["s5"],"event_types":["error"]})",
      R"({"session_ids":["nobody"]})",
      R"({"event_types":["tool_call"]})",
  };
  for (const std::string& json : filters) {
    SCOPED_TRACE(json);
    const Filter filter = Parse(json);
    for (int64_t after : {first - 1, first + 10, all.back()->offset - 5, all.back()->offset}) {
      for (size_t page : {size_t{1}, size_t{7}, size_t{1000}}) {
        std::vector<int64_t> want;
        for (const EventPtr& e : all) {
          if (e->offset > after && filter.Matches(e->fields())) want.push_back(e->offset);
        }
        int64_t end = 0;
        EXPECT_EQ(ReadAll(ring, filter, after, page, &end), want) << "after " << after;
        EXPECT_EQ(end, all.back()->offset) << "a read that ran out of events ends at the last";
      }
    }
  }
}

TEST(HotRingTest, SessionReadBeforeTheRingIsNotCovered) {
  HotRing ring(1024);
  std::vector<EventPtr> batch;
  for (int64_t off = 1; off <= 100; ++off) batch.push_back(MakeCommitted(off, "a", "message"));
  ring.Push(batch);
  ASSERT_GT(ring.first_offset(), 1);
  std::vector<EventPtr> out;
  HiddenSessions hidden;
  RingAnswer a = ring.Collect(RingQuery{0, 10, SIZE_MAX, 8192}, Parse(R"({"session_ids":["a"]})"),
                              hidden, &out);
  EXPECT_FALSE(a.covered);
  EXPECT_TRUE(out.empty());
}

TEST(HotRingTest, SessionReadSkipsHiddenEvents) {
  HotRing ring(1 << 20);
  std::vector<EventPtr> batch;
  for (int64_t off = 1; off <= 6; ++off) batch.push_back(MakeCommitted(off, "a", "message"));
  ring.Push(batch);
  HiddenSessions hidden;
  hidden.Hide("a", 4);
  std::vector<EventPtr> out;
  RingAnswer a = ring.Collect(RingQuery{0, 10, SIZE_MAX, 8192}, Parse(R"({"session_ids":["a"]})"),
                              hidden, &out);
  EXPECT_TRUE(a.covered);
  EXPECT_EQ(Offsets(out), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(a.next_after, 6);
}

}  // namespace
}  // namespace tailbus
