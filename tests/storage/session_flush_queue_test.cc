// The writer's choice of which buffered sessions each append writes
// (storage/session_flush_queue.h).
#include "storage/session_flush_queue.h"

#include <gtest/gtest.h>

namespace tailbus::sqlite {
namespace {

SessionFlushPolicy Policy(int64_t interval_ms, int64_t max_events, size_t per_commit) {
  SessionFlushPolicy p;
  p.interval_ms = interval_ms;
  p.max_events = max_events;
  p.per_commit = per_commit;
  return p;
}

// Queues sessions 1..n, one event each at offsets 1..n, at `now_ms`.
void StageSessions(SessionFlushQueue& q, int n, int64_t now_ms) {
  for (int k = 1; k <= n; ++k) q.Stage(k, k, 1, now_ms);
}

TEST(SessionFlushQueueTest, WritesNothingBeforeTheInterval) {
  SessionFlushQueue q(Policy(1000, 1'000'000, 64));
  StageSessions(q, 5, 0);
  EXPECT_EQ(q.DuePrefix(999), 0u);
  EXPECT_EQ(q.WrittenThroughAfter(0, 5), 0);
  EXPECT_EQ(q.DuePrefix(1000), 5u);
}

TEST(SessionFlushQueueTest, SpreadsDueSessionsOverCommitsUntilTheFrontIsOverdue) {
  SessionFlushQueue q(Policy(1000, 1'000'000, 4));
  StageSessions(q, 10, 0);
  ASSERT_EQ(q.DuePrefix(1000), 4u);
  EXPECT_EQ(q.WrittenThroughAfter(4, 10), 4);  // session 5's first offset - 1
  q.Commit(4);
  EXPECT_EQ(q.size(), 6u);
  EXPECT_EQ(q.key_at(0), 5);
  EXPECT_EQ(q.DuePrefix(1001), 4u);
  q.Commit(4);
  // The front has now waited twice the interval: every due session at once.
  q.Stage(11, 11, 1, 1500);  // not due yet: stays
  EXPECT_EQ(q.DuePrefix(2000), 2u);
  EXPECT_EQ(q.WrittenThroughAfter(2, 11), 10);
}

TEST(SessionFlushQueueTest, ZeroIntervalWritesEverySessionAtOnce) {
  SessionFlushQueue q(Policy(0, 1'000'000, 4));
  StageSessions(q, 10, 7);
  EXPECT_EQ(q.DuePrefix(7), 10u);
  EXPECT_EQ(q.WrittenThroughAfter(10, 10), 10);  // nothing left: head
}

TEST(SessionFlushQueueTest, WritesEverySessionOnceMaxEventsAreBuffered) {
  SessionFlushQueue q(Policy(1000, 10, 64));
  q.Stage(1, 1, 4, 0);
  q.Stage(2, 5, 4, 0);
  q.Stage(3, 9, 1, 0);
  EXPECT_EQ(q.DuePrefix(1), 0u);      // 9 buffered
  EXPECT_FALSE(q.Stage(2, 5, 1, 1));  // already queued: keeps its place
  EXPECT_EQ(q.buffered_events(), 10);
  EXPECT_EQ(q.DuePrefix(1), 3u);
  q.Commit(3);
  EXPECT_EQ(q.buffered_events(), 0);
  EXPECT_EQ(q.WrittenThroughAfter(0, 30), 30);
}

TEST(SessionFlushQueueTest, UnstageUndoesAFailedAppend) {
  SessionFlushQueue q(Policy(1000, 1'000'000, 64));
  q.Stage(1, 1, 2, 0);
  // A failed append of sessions 1 (queued) and 2 (new), undone in reverse.
  const bool queued1 = q.Stage(1, 3, 1, 5);
  const bool queued2 = q.Stage(2, 4, 1, 5);
  EXPECT_FALSE(queued1);
  EXPECT_TRUE(queued2);
  q.Unstage(2, 1, queued2);
  q.Unstage(1, 1, queued1);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.buffered_events(), 2);
  EXPECT_EQ(q.DuePrefix(1000), 1u);  // still due from its first stage at 0
}

}  // namespace
}  // namespace tailbus::sqlite
