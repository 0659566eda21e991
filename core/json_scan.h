// A strict, single-pass JSON reader that copies values out as canonical compact text: the
// bytes rapidjson::Writer writes for the value that RapidJSON with exact numbers
// (core/json_parse.h) reads from the input. It exists for speed on the ingest hot path (HTTP
// ingest and WebSocket publish: core/event_decoder.cc, ws/client_message.cc): no DOM, no second
// pass, strings without escapes copied in bulk.
//
// Contract: the scanner is a *subset* acceptor. Whatever it accepts, RapidJSON (iterative
// parse, exact numbers, UTF-8 validated) accepts too, reading the same values. Anything it is
// not sure about makes it give up (a method returns false): malformed JSON, invalid UTF-8,
// lone surrogates, raw NUL or control bytes, numbers that are out of a double's range or
// longer than RapidJSON reads without overflow checks, duplicate keys, escaped keys, depth
// beyond the limit. Giving up says nothing about validity: callers then take their reference
// path (RapidJSON DOM), which reports the exact error. So every caller has two paths, and the
// fast one must only ever be an optimisation.
//
// Not thread-safe; one scanner per input. Borrows `text` (must outlive the scanner).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tailbus::json_scan {

// Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, surrogates or code points
// beyond U+10FFFF) starting with the non-ASCII byte p[i] (i < n), or 0 when there is none.
size_t Utf8SequenceLength(const unsigned char* p, size_t i, size_t n);

// The value of the 4 hex digits at p, or -1.
int Hex4(const unsigned char* p);

// A number as core/json_parse.h reads it.
struct Number {
  enum class Kind : uint8_t { kUint64, kInt64, kDouble };
  Kind kind = Kind::kUint64;
  uint64_t u = 0;  // kUint64
  int64_t i = 0;   // kInt64 (negative integer literals, and "-0")
  double d = 0;    // kDouble (finite)
};

class Scanner {
 public:
  // `max_depth`: deepest array/object nesting accepted, counting the value CopyValue starts
  // at as depth 1 (capped internally so recursion stays shallow).
  Scanner(std::string_view text, size_t max_depth);
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  size_t pos() const { return pos_; }
  bool AtEnd() const { return pos_ >= n_; }
  // The byte at pos(), or '\0' at the end (a raw NUL is never accepted anywhere).
  char Peek() const { return pos_ < n_ ? static_cast<char>(p_[pos_]) : '\0'; }
  void SkipSpace() {
    while (pos_ < n_ &&
           (p_[pos_] == ' ' || p_[pos_] == '\n' || p_[pos_] == '\r' || p_[pos_] == '\t'))
      ++pos_;
  }
  // Consumes `c` (after whitespace) when it is next.
  bool Consume(char c) {
    SkipSpace();
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  // At '"': reads a string. `raw` is the text between the quotes; `escaped` tells whether it
  // holds backslash escapes (when false, raw is the decoded value).
  bool ReadString(std::string_view* raw, bool* escaped);
  // At a number's first byte: reads it; `text` is its literal.
  bool ReadNumber(Number* number, std::string_view* text);
  // At 't', 'f' or 'n': reads true, false or null; `text` is the literal.
  bool ReadLiteral(std::string_view* text);

  // Reads any value at pos() (after whitespace) and appends its canonical text to `out`.
  // `depth` is the nesting depth of the value's container (0 at the root).
  bool CopyValue(std::string* out, size_t depth);
  // Reads and checks any value as CopyValue does, without writing it anywhere.
  bool SkipValue(size_t depth);

  // Appends the canonical text of a string whose raw (between quotes) text ReadString read.
  static void AppendString(std::string* out, std::string_view raw, bool escaped);
  // Appends the canonical text of a number ReadNumber read.
  static void AppendNumber(std::string* out, const Number& number, std::string_view text);
  // Appends `s` (any bytes) quoted and escaped as rapidjson::Writer escapes it.
  static void AppendEscaped(std::string* out, std::string_view s);

  // True when the names keys()[from..] are pairwise different.
  bool KeysUnique(size_t from);
  // Member names of the objects being read (unescaped), innermost last; callers that read an
  // object themselves push its names here too so duplicates are found in one place.
  std::vector<std::string_view>& keys() { return keys_; }

 private:
  template <bool kWrite>
  bool Value(std::string* out, size_t depth);
  template <bool kWrite>
  bool Object(std::string* out, size_t depth);
  template <bool kWrite>
  bool Array(std::string* out, size_t depth);

  const unsigned char* p_;
  size_t n_;
  size_t pos_ = 0;
  size_t max_depth_;
  std::vector<std::string_view> keys_;
  std::vector<std::string_view> sorted_;  // scratch for KeysUnique
};

}  // namespace tailbus::json_scan
