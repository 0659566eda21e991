// Parsing JSON into a RapidJSON document with numbers read exactly.
//
// RapidJSON 1.1.0 (Debian 12) reads some numbers as garbage with
// kParseFullPrecisionFlag ("18446744073709551615.551615" -> -2.5e263,
// "0." followed by more than 22 zeros -> -2.1e-196; found by fuzz/), and
// without it rounds long mantissas wrongly by up to an ulp, so a value would
// not survive decode -> encode -> decode. Here RapidJSON only checks the
// number grammar and hands each number over as text
// (kParseNumbersAsStringsFlag); std::from_chars converts it, correctly
// rounded, and the document gets the same kind of value RapidJSON would have
// built: an integer when the literal is one and fits 64 bits, else a double.
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/reader.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>

namespace tailbus {
namespace json_parse_internal {

// Forwards every SAX event to the document, converting numbers on the way.
template <typename Doc>
struct ExactNumberHandler {
  using Ch = char;
  Doc& doc;

  bool Null() { return doc.Null(); }
  bool Bool(bool b) { return doc.Bool(b); }
  bool Int(int i) { return doc.Int(i); }
  bool Uint(unsigned u) { return doc.Uint(u); }
  bool Int64(int64_t i) { return doc.Int64(i); }
  bool Uint64(uint64_t u) { return doc.Uint64(u); }
  bool Double(double d) { return doc.Double(d); }
  bool String(const Ch* s, rapidjson::SizeType n, bool copy) { return doc.String(s, n, copy); }
  bool StartObject() { return doc.StartObject(); }
  bool Key(const Ch* s, rapidjson::SizeType n, bool copy) { return doc.Key(s, n, copy); }
  bool EndObject(rapidjson::SizeType members) { return doc.EndObject(members); }
  bool StartArray() { return doc.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return doc.EndArray(elements); }

  // `s` is a well-formed JSON number (the reader checked the grammar).
  bool RawNumber(const Ch* s, rapidjson::SizeType n, bool /*copy*/) {
    const std::string_view text(s, n);
    const char* end = s + n;
    if (text.find_first_of(".eE") == std::string_view::npos) {
      if (text.front() == '-') {
        int64_t i = 0;
        if (std::from_chars(s, end, i).ec == std::errc()) return doc.Int64(i);
      } else {
        uint64_t u = 0;
        if (std::from_chars(s, end, u).ec == std::errc()) return doc.Uint64(u);
      }
    }
    double d = 0;
    const std::from_chars_result r = std::from_chars(s, end, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Too large or too small for a double: strtod gives +-HUGE_VAL or the
      // nearest denormal/zero, as RapidJSON's own reading would.
      d = std::strtod(std::string(text).c_str(), nullptr);
    } else if (r.ec != std::errc() || r.ptr != end) {
      return false;  // cannot happen for a well-formed number
    }
    // +-infinity (beyond a double, exponent in range) is kept, as RapidJSON
    // keeps it: callers refuse non-finite values naming the member.
    return doc.Double(d);
  }
};

template <typename Stream, typename Doc, unsigned kFlags>
struct Generator {
  Stream& stream;
  rapidjson::ParseResult result;
  bool operator()(Doc& doc) {
    rapidjson::Reader reader;
    ExactNumberHandler<Doc> handler{doc};
    result = reader.template Parse<kFlags | rapidjson::kParseNumbersAsStringsFlag>(stream, handler);
    return !result.IsError();
  }
};

}  // namespace json_parse_internal

// Parses `stream` into `doc` (replacing its content; null on error) with the
// reader flags `kFlags` (kParseFullPrecisionFlag is irrelevant: numbers never
// reach RapidJSON's conversion). Returns the parse result: the error code and
// the offset RapidJSON reports.
template <unsigned kFlags, typename Stream, typename Doc>
rapidjson::ParseResult ParseWithExactNumbers(Doc& doc, Stream& stream) {
  json_parse_internal::Generator<Stream, Doc, kFlags> generate{stream, {}};
  doc.SetNull();
  doc.Populate(generate);
  if (generate.result.IsError()) doc.SetNull();
  return generate.result;
}

}  // namespace tailbus
