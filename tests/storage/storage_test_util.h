// Helpers shared by the storage tests: temp directories, event builders, raw
// SQLite access for inspecting and tampering with files.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/filter.h"
#include "storage/log_store.h"
#include "tests/test_util/temp_dir.h"

namespace tailbus::testing {

// An event to append; its JSON is built from the header when not given.
struct TestEvent {
  EventHeader header;
  int64_t ingested_at_ms = 1'700'000'000'000;
  std::string json;
};

inline TestEvent Ev(std::string session_id, std::string event_type = "message",
                    int64_t timestamp_ms = 1'700'000'000'000) {
  TestEvent e;
  e.header.session_id = std::move(session_id);
  e.header.event_type = std::move(event_type);
  e.header.timestamp_ms = timestamp_ms;
  return e;
}

// Owns the events of one Append and builds its records with offsets from
// head() + 1. Keeps headers at stable addresses.
class Batch {
 public:
  Batch& Add(TestEvent e) {
    events_.push_back(std::move(e));
    return *this;
  }
  size_t size() const { return events_.size(); }
  std::deque<TestEvent>& events() { return events_; }

  std::vector<AppendRecord> Records(int64_t first_offset) {
    std::vector<AppendRecord> out;
    int64_t offset = first_offset;
    for (TestEvent& e : events_) {
      if (e.header.event_id.empty()) e.header.event_id = "ev-" + std::to_string(offset);
      if (e.json.empty()) {
        e.json = "{\"offset\":" + std::to_string(offset) + ",\"session_id\":\"" +
                 e.header.session_id + "\",\"event_type\":\"" + e.header.event_type +
                 "\",\"event_id\":\"" + e.header.event_id + "\"}";
      }
      out.push_back(AppendRecord{offset++, e.ingested_at_ms, &e.header, e.json});
    }
    return out;
  }

 private:
  std::deque<TestEvent> events_;
};

inline Status AppendBatch(LogStore& store, Batch& batch) {
  std::vector<AppendRecord> records = batch.Records(store.head() + 1);
  return store.Append(records);
}

// Appends `n` events round-robin over `sessions` sessions named s0, s1, ….
inline Status AppendMany(LogStore& store, int n, int sessions, int64_t ingested_at_ms = 1000) {
  Batch batch;
  for (int i = 0; i < n; ++i) {
    TestEvent e = Ev("s" + std::to_string(i % sessions));
    e.ingested_at_ms = ingested_at_ms;
    batch.Add(std::move(e));
  }
  return AppendBatch(store, batch);
}

// Copies the log's files as they are now: what a crash at this instant leaves.
inline void CopyLogFiles(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal"}) {
    if (std::filesystem::exists(from + suffix)) {
      std::filesystem::copy_file(from + suffix, to + suffix);
    }
  }
}

inline std::unique_ptr<LogStore> OpenOrDie(const std::string& path,
                                           const StorageOptions& options = {}) {
  auto store = LogStore::Open(path, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return nullptr;
  return std::move(store).value();
}

inline Filter ParseOrDie(std::string_view json) {
  auto f = Filter::Parse(json);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? std::move(f).value() : Filter();
}

inline std::vector<int64_t> Offsets(const ReadPage& page) {
  std::vector<int64_t> out;
  for (const EventPtr& e : page.events) out.push_back(e->offset);
  return out;
}

inline std::vector<int64_t> Offsets(const std::vector<EventPtr>& events) {
  std::vector<int64_t> out;
  for (const EventPtr& e : events) out.push_back(e->offset);
  return out;
}

// Every event matching `filter` after `after` up to `head`, read page after
// page (at most `limit` events and `max_scan` examined rows each), checking
// that every page moves on and holds only offsets in (after, next_after].
// `pages`, when given, counts the pages.
inline std::vector<EventPtr> ReadAllPages(LogReader& reader, int64_t after, int64_t head,
                                          const Filter& filter, size_t limit, size_t max_scan,
                                          int* pages = nullptr) {
  std::vector<EventPtr> out;
  while (after < head) {
    auto page = reader.Read(after, filter, limit, max_scan);
    if (!page.ok() || page->next_after <= after) {
      ADD_FAILURE() << "read after " << after << ": "
                    << (page.ok() ? "next_after did not move" : page.status().ToString());
      break;
    }
    for (const EventPtr& e : page->events) {
      EXPECT_GT(e->offset, after);
      EXPECT_LE(e->offset, page->next_after);
      out.push_back(e);
    }
    after = page->next_after;
    if (pages != nullptr) ++*pages;
  }
  return out;
}

// Raw SQLite connection for inspecting or tampering with a file in tests.
class RawDb {
 public:
  explicit RawDb(const std::string& path, bool create = false) {
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, flags, nullptr), SQLITE_OK);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  int Exec(const std::string& sql) {
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << sqlite3_errmsg(db_);
    return rc;
  }
  // First column of the first row as text ("" when no row or NULL; "<null>" for NULL).
  std::string Query(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(s, 0);
      out = t != nullptr ? reinterpret_cast<const char*>(t) : "<null>";
    }
    sqlite3_finalize(s);
    return out;
  }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteFileBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace tailbus::testing
