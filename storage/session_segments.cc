#include "storage/session_segments.h"

#include <fmt/format.h>

#include <unordered_map>
#include <vector>

#include "storage/log_store.h"
#include "storage/offset_list.h"
#include "storage/sqlite_util.h"

namespace tailbus::sqlite {
namespace {

// The statement of schema.sql that starts a line with `head`, up to and including its
// terminating ";" (which ends a line), so a migrated file's schema text equals
// a new file's.
Result<std::string> SchemaStatement(std::string_view head) {
  const std::string_view sql = SchemaSql();
  size_t begin = sql.find(fmt::format("\n{} ", head));  // at a line start, not in a comment
  if (begin != std::string_view::npos) ++begin;
  const size_t end = begin == std::string_view::npos ? begin : sql.find(";\n", begin);
  if (end == std::string_view::npos) {
    return Status::Unsupported(fmt::format("this build's schema.sql has no statement '{}'", head));
  }
  return std::string(sql.substr(begin, end + 1 - begin));
}

}  // namespace

Status InsertSegments(sqlite3* db, sqlite3_stmt* insert, int64_t key,
                      std::span<const int64_t> offsets, std::string& scratch,
                      std::string_view context) {
  for (size_t begin = 0; begin < offsets.size(); begin += kMaxSegmentOffsets) {
    const auto part = offsets.subspan(begin, std::min(kMaxSegmentOffsets, offsets.size() - begin));
    scratch.clear();
    EncodeOffsetList(part, scratch);
    ResetOnExit reset(insert);
    sqlite3_bind_int64(insert, 1, key);
    sqlite3_bind_int64(insert, 2, part.front());
    sqlite3_bind_int64(insert, 3, part.back());
    // Never a null pointer: an empty blob must stay a blob (NOT NULL).
    sqlite3_bind_blob(insert, 4, scratch.data(), static_cast<int>(scratch.size()), SQLITE_STATIC);
    const int rc = sqlite3_step(insert);
    if (rc != SQLITE_DONE) return ToStatus(rc, db, context);
  }
  return Status::Ok();
}

Status DecodeSegmentRow(sqlite3_stmt* s, int64_t key, int64_t after, int64_t through, size_t max,
                        std::vector<int64_t>& out, std::string_view context) {
  const int64_t first = sqlite3_column_int64(s, 0);
  if (!DecodeOffsetList(first, sqlite3_column_int64(s, 1), ColumnBlob(s, 2), after, through, max,
                        out)) {
    return Status::Corruption(
        fmt::format("{}: session {}'s segment at offset {} is malformed", context, key, first));
  }
  return Status::Ok();
}

Status CreateSegmentsFromEvents(sqlite3* db, int64_t through, std::string_view context) {
  for (std::string_view head :
       {"CREATE TABLE session_segments", "CREATE INDEX session_segments_by_end"}) {
    auto sql = SchemaStatement(head);
    if (!sql.ok()) return sql.status();
    TAILBUS_RETURN_IF_ERROR(Exec(db, sql->c_str(), context));
  }
  Stmt scan, insert;
  TAILBUS_RETURN_IF_ERROR(scan.Prepare(
      db, "SELECT log_offset, session_key FROM events WHERE log_offset <= ?1 ORDER BY log_offset"));
  TAILBUS_RETURN_IF_ERROR(insert.Prepare(db, kInsertSegmentSql));
  sqlite3_bind_int64(scan.get(), 1, through);
  // A session's offsets since its last full row; memory is bounded by the
  // number of sessions times kMaxSegmentOffsets.
  std::unordered_map<int64_t, std::vector<int64_t>> open;
  std::string scratch;
  int rc;
  while ((rc = sqlite3_step(scan.get())) == SQLITE_ROW) {
    const int64_t key = sqlite3_column_int64(scan.get(), 1);
    std::vector<int64_t>& offsets = open[key];
    offsets.push_back(sqlite3_column_int64(scan.get(), 0));
    if (offsets.size() == kMaxSegmentOffsets) {
      TAILBUS_RETURN_IF_ERROR(InsertSegments(db, insert.get(), key, offsets, scratch, context));
      offsets.clear();
    }
  }
  if (rc != SQLITE_DONE) return ToStatus(rc, db, context);
  for (const auto& [key, offsets] : open) {
    if (offsets.empty()) continue;
    TAILBUS_RETURN_IF_ERROR(InsertSegments(db, insert.get(), key, offsets, scratch, context));
  }
  return Status::Ok();
}

}  // namespace tailbus::sqlite
