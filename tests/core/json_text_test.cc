// JsonText: the delivered JSON of a CommittedEvent, owned or borrowed.
#include <gtest/gtest.h>

#include <string>

#include "core/event.h"

namespace tailbus {
namespace {

TEST(JsonTextTest, OwnsAssignedText) {
  JsonText t;
  EXPECT_TRUE(t.empty());
  std::string s = R"({"a":1})";
  t = s;
  s[2] = 'b';  // the text keeps its own copy
  EXPECT_EQ(t, R"({"a":1})");
  EXPECT_EQ(t.size(), 7u);
  EXPECT_GE(t.OwnedBytes(), 7u);
  std::string out = "x";
  out += t;  // appends like a string_view
  EXPECT_EQ(out, R"(x{"a":1})");
}

TEST(JsonTextTest, BorrowedTextViewsTheBytesUntilAssigned) {
  std::string bytes = R"({"b":2})";
  JsonText t;
  t = std::string("owned");
  t.Borrow(bytes);
  EXPECT_EQ(t.data(), bytes.data());  // no copy
  EXPECT_EQ(t.OwnedBytes(), 0u);
  JsonText moved = std::move(t);
  EXPECT_EQ(moved.data(), bytes.data());  // a move stays borrowed
  moved = std::string("again owned");
  EXPECT_EQ(moved, "again owned");
  EXPECT_NE(moved.data(), bytes.data());
}

TEST(JsonTextTest, CopyOfBorrowedTextOwnsItsBytes) {
  auto bytes = std::make_unique<std::string>(R"({"c":3})");
  JsonText borrowed;
  borrowed.Borrow(*bytes);
  JsonText copy(borrowed);
  JsonText assigned;
  assigned = borrowed;
  bytes.reset();  // the borrowed bytes are gone; the copies are not
  EXPECT_EQ(copy, R"({"c":3})");
  EXPECT_EQ(assigned, R"({"c":3})");
  EXPECT_EQ(copy, assigned);
}

TEST(JsonTextTest, BorrowingNothingIsEmpty) {
  JsonText t;
  t.Borrow(std::string_view());
  EXPECT_TRUE(t.empty());
  EXPECT_NE(t.data(), nullptr);
}

}  // namespace
}  // namespace tailbus
