// Invariants: a method that returns true has consumed exactly one well-formed token or value
// (as RapidJSON would read it) and appended exactly its canonical text; one that returns false
// leaves pos() and `out` unspecified (callers abandon the scan). Canonical text is what
// rapidjson::Writer writes: strings escaped as BodyWriter/Writer escape them ('"', '\\', and
// control characters as \b \t \n \f \r or \u00XX; everything else, '/' and UTF-8 included, as
// is), integers as their decimal digits, doubles by RapidJSON's own dtoa (Grisu, shortest).
#include "core/json_scan.h"

#include <rapidjson/internal/dtoa.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <system_error>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tailbus::json_scan {
namespace {

// Deepest nesting the (recursive) copy goes to, whatever the caller's limit.
constexpr size_t kMaxRecursion = 128;
// Longest non-integer number literal accepted. RapidJSON 1.1.0 refuses a number whose
// integer part alone reaches 1.8e307 (about 308 digits) even when an exponent brings it back
// into range; from_chars would read it. Shorter literals cannot get there.
constexpr size_t kMaxDoubleLiteral = 40;

// Bytes that end a bulk copy inside a string: '"', '\\', control bytes and non-ASCII.
struct StopTable {
  bool stop[256] = {};
  constexpr StopTable() {
    for (int c = 0; c < 0x20; ++c) stop[c] = true;
    for (int c = 0x80; c < 0x100; ++c) stop[c] = true;
    stop[static_cast<int>('"')] = true;
    stop[static_cast<int>('\\')] = true;
  }
};
constexpr StopTable kStop;

size_t FindStop(const unsigned char* p, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i max_control = _mm_set1_epi8(0x1F);
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, max_control), max_control);
    const __m128i hits =
        _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    // movemask also picks up the high bit of every non-ASCII byte.
    const int mask = _mm_movemask_epi8(_mm_or_si128(hits, v));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < n && !kStop.stop[p[i]]) ++i;
  return i;
}

// How Writer escapes each byte: 0 as is, 'u' as \u00XX, else the character after '\\'.
struct EscapeTable {
  char code[256] = {};
  constexpr EscapeTable() {
    for (int c = 0; c < 0x20; ++c) code[c] = 'u';
    code[static_cast<int>('\b')] = 'b';
    code[static_cast<int>('\t')] = 't';
    code[static_cast<int>('\n')] = 'n';
    code[static_cast<int>('\f')] = 'f';
    code[static_cast<int>('\r')] = 'r';
    code[static_cast<int>('"')] = '"';
    code[static_cast<int>('\\')] = '\\';
  }
};
constexpr EscapeTable kEscape;

void AppendEscapedByte(std::string* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char code = kEscape.code[c];
  if (code == 0) {
    out->push_back(static_cast<char>(c));
  } else if (code == 'u') {
    const char e[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
    out->append(e, 6);
  } else {
    const char e[2] = {'\\', code};
    out->append(e, 2);
  }
}

void AppendUtf8(std::string* out, uint32_t cp) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    AppendEscapedByte(out, static_cast<unsigned char>(cp));
    return;
  }
  if (cp < 0x800) {
    b[0] = static_cast<char>(0xC0 | (cp >> 6));
    b[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = static_cast<char>(0xE0 | (cp >> 12));
    b[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = static_cast<char>(0xF0 | (cp >> 18));
    b[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    b[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
  }
  out->append(b, n);
}

bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }

}  // namespace

size_t Utf8SequenceLength(const unsigned char* p, size_t i, size_t n) {
  const unsigned char c = p[i];
  size_t length;
  unsigned char lo = 0x80;  // range of the second byte
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    length = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    length = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    length = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (n - i < length) return 0;
  if (p[i + 1] < lo || p[i + 1] > hi) return 0;
  for (size_t k = 2; k < length; ++k) {
    if ((p[i + k] & 0xC0) != 0x80) return 0;
  }
  return length;
}

int Hex4(const unsigned char* p) {
  int v = 0;
  for (int k = 0; k < 4; ++k) {
    const unsigned char c = p[k];
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

Scanner::Scanner(std::string_view text, size_t max_depth)
    : p_(reinterpret_cast<const unsigned char*>(text.data())),
      n_(text.size()),
      max_depth_(std::min(max_depth, kMaxRecursion)) {}

bool Scanner::ReadString(std::string_view* raw, bool* escaped) {
  if (Peek() != '"') return false;
  const size_t begin = ++pos_;
  size_t i = begin;
  bool esc = false;
  for (;;) {
    i = FindStop(p_, i, n_);
    if (i >= n_) return false;  // unterminated
    const unsigned char c = p_[i];
    if (c == '"') break;
    if (c >= 0x80) {
      const size_t length = Utf8SequenceLength(p_, i, n_);
      if (length == 0) return false;
      i += length;
      continue;
    }
    if (c != '\\' || i + 1 >= n_) return false;  // a raw control byte (RapidJSON refuses it)
    esc = true;
    switch (p_[i + 1]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        i += 2;
        continue;
      case 'u':
        break;
      default:
        return false;
    }
    if (n_ - i < 6) return false;
    const int unit = Hex4(p_ + i + 2);
    if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) return false;  // lone low surrogate
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      // Must be followed by the low half of the pair.
      if (n_ - i < 12 || p_[i + 6] != '\\' || p_[i + 7] != 'u') return false;
      const int low = Hex4(p_ + i + 8);
      if (low < 0xDC00 || low > 0xDFFF) return false;
      i += 12;
    } else {
      i += 6;
    }
  }
  *raw = std::string_view(reinterpret_cast<const char*>(p_ + begin), i - begin);
  *escaped = esc;
  pos_ = i + 1;
  return true;
}

bool Scanner::ReadNumber(Number* number, std::string_view* text) {
  const size_t begin = pos_;
  size_t i = pos_;
  const bool negative = i < n_ && p_[i] == '-';
  if (negative) ++i;
  if (i >= n_) return false;
  uint64_t digits = 0;  // the integer part's value while it has at most 19 digits
  const size_t first_digit = i;
  if (p_[i] == '0') {
    ++i;
  } else if (p_[i] >= '1' && p_[i] <= '9') {
    while (i < n_ && IsDigit(p_[i])) digits = digits * 10 + (p_[i++] - '0');
  } else {
    return false;
  }
  const bool small = i - first_digit <= 19;  // 10^19 - 1 fits in 64 bits: no overflow above
  bool integer = true;
  if (i < n_ && p_[i] == '.') {
    ++i;
    if (i >= n_ || !IsDigit(p_[i])) return false;
    while (i < n_ && IsDigit(p_[i])) ++i;
    integer = false;
  }
  if (i < n_ && (p_[i] == 'e' || p_[i] == 'E')) {
    ++i;
    if (i < n_ && (p_[i] == '+' || p_[i] == '-')) ++i;
    if (i >= n_ || !IsDigit(p_[i])) return false;
    while (i < n_ && IsDigit(p_[i])) ++i;
    integer = false;
  }
  const char* first = reinterpret_cast<const char*>(p_ + begin);
  const char* last = reinterpret_cast<const char*>(p_ + i);
  *text = std::string_view(first, i - begin);
  pos_ = i;
  // As json_parse.h's ExactNumberHandler: an integer literal that fits 64 bits stays one.
  if (integer && small) {
    if (!negative) {
      number->kind = Number::Kind::kUint64;
      number->u = digits;
      return true;
    }
    if (digits <= static_cast<uint64_t>(INT64_MAX)) {
      number->kind = Number::Kind::kInt64;
      number->i = -static_cast<int64_t>(digits);
      return true;
    }
  }
  if (integer) {
    if (negative) {
      if (std::from_chars(first, last, number->i).ec == std::errc()) {
        number->kind = Number::Kind::kInt64;
        return true;
      }
    } else if (std::from_chars(first, last, number->u).ec == std::errc()) {
      number->kind = Number::Kind::kUint64;
      return true;
    }
  }
  if (text->size() > kMaxDoubleLiteral) return false;
  const std::from_chars_result r = std::from_chars(first, last, number->d);
  // Out of range (overflow or underflow) is left to the reference path, which has its own
  // rules for it (json_parse.h, json_numbers.h).
  if (r.ec != std::errc() || r.ptr != last || !std::isfinite(number->d)) return false;
  number->kind = Number::Kind::kDouble;
  return true;
}

bool Scanner::ReadLiteral(std::string_view* text) {
  static constexpr std::string_view kLiterals[] = {"true", "false", "null"};
  for (std::string_view lit : kLiterals) {
    if (n_ - pos_ >= lit.size() && std::memcmp(p_ + pos_, lit.data(), lit.size()) == 0) {
      *text = std::string_view(reinterpret_cast<const char*>(p_ + pos_), lit.size());
      pos_ += lit.size();
      return true;
    }
  }
  return false;
}

void Scanner::AppendString(std::string* out, std::string_view raw, bool escaped) {
  if (!escaped) {
    // No escapes, no control bytes: Writer writes it unchanged, so copy it with its quotes
    // (ReadString's raw text always lies between two quotes of the input).
    out->append(raw.data() - 1, raw.size() + 2);
    return;
  }
  out->push_back('"');
  const auto* s = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t n = raw.size();
  size_t i = 0;
  while (i < n) {
    const void* bs = std::memchr(s + i, '\\', n - i);
    const size_t run_end = bs ? static_cast<size_t>(static_cast<const unsigned char*>(bs) - s) : n;
    out->append(reinterpret_cast<const char*>(s + i), run_end - i);
    if (run_end == n) break;
    const unsigned char e = s[run_end + 1];  // ReadString checked every escape
    i = run_end + 2;
    switch (e) {
      case 'b':
        AppendEscapedByte(out, '\b');
        break;
      case 'f':
        AppendEscapedByte(out, '\f');
        break;
      case 'n':
        AppendEscapedByte(out, '\n');
        break;
      case 'r':
        AppendEscapedByte(out, '\r');
        break;
      case 't':
        AppendEscapedByte(out, '\t');
        break;
      case 'u': {
        uint32_t cp = static_cast<uint32_t>(Hex4(s + i));
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          const uint32_t low = static_cast<uint32_t>(Hex4(s + i + 2));
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          i += 6;
        }
        AppendUtf8(out, cp);
        break;
      }
      default:  // '"', '\\', '/'
        AppendEscapedByte(out, e);
        break;
    }
  }
  out->push_back('"');
}

void Scanner::AppendEscaped(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    size_t run = i;
    while (run < s.size() && kEscape.code[static_cast<unsigned char>(s[run])] == 0) ++run;
    out->append(s.data() + i, run - i);  // bytes written as they are, in one go
    if (run == s.size()) break;
    AppendEscapedByte(out, static_cast<unsigned char>(s[run]));
    i = run + 1;
  }
  out->push_back('"');
}

void Scanner::AppendNumber(std::string* out, const Number& number, std::string_view text) {
  switch (number.kind) {
    case Number::Kind::kUint64:
      out->append(text);  // JSON has no leading zeros: the digits are u64toa's
      return;
    case Number::Kind::kInt64:
      if (number.i == 0) {
        out->push_back('0');  // "-0" is the integer 0
      } else {
        out->append(text);
      }
      return;
    case Number::Kind::kDouble: {
      char buffer[32];
      const char* end = rapidjson::internal::dtoa(number.d, buffer);
      out->append(buffer, static_cast<size_t>(end - buffer));
      return;
    }
  }
}

bool Scanner::CopyValue(std::string* out, size_t depth) { return Value<true>(out, depth); }

bool Scanner::SkipValue(size_t depth) { return Value<false>(nullptr, depth); }

// kWrite: append the canonical text to `out`; else only read and check (out is null).
template <bool kWrite>
bool Scanner::Value(std::string* out, size_t depth) {
  SkipSpace();
  switch (Peek()) {
    case '"': {
      std::string_view raw;
      bool escaped;
      if (!ReadString(&raw, &escaped)) return false;
      if constexpr (kWrite) AppendString(out, raw, escaped);
      return true;
    }
    case '{':
      return Object<kWrite>(out, depth + 1);
    case '[':
      return Array<kWrite>(out, depth + 1);
    case 't':
    case 'f':
    case 'n': {
      std::string_view text;
      if (!ReadLiteral(&text)) return false;
      if constexpr (kWrite) out->append(text);
      return true;
    }
    default: {
      Number number;
      std::string_view text;
      if (!ReadNumber(&number, &text)) return false;
      if constexpr (kWrite) AppendNumber(out, number, text);
      return true;
    }
  }
}

template <bool kWrite>
bool Scanner::Object(std::string* out, size_t depth) {
  if (depth > max_depth_) return false;
  ++pos_;  // '{'
  if (Consume('}')) {
    if constexpr (kWrite) out->append("{}", 2);
    return true;
  }
  if constexpr (kWrite) out->push_back('{');
  const size_t first_key = keys_.size();
  for (;;) {
    SkipSpace();
    std::string_view key;
    bool escaped;
    if (!ReadString(&key, &escaped) || escaped) return false;
    keys_.push_back(key);
    if constexpr (kWrite) {
      // Unescaped: written as is, with the colon when the input has it right after the quote.
      const bool colon = Peek() == ':';
      out->append(key.data() - 1, key.size() + (colon ? 3 : 2));
      if (!colon) out->push_back(':');
    }
    if (!Consume(':') || !Value<kWrite>(out, depth)) return false;
    SkipSpace();
    const char c = Peek();
    ++pos_;
    if constexpr (kWrite) out->push_back(c);
    if (c == '}') break;
    if (c != ',') return false;
  }
  if (!KeysUnique(first_key)) return false;
  keys_.resize(first_key);
  return true;
}

template <bool kWrite>
bool Scanner::Array(std::string* out, size_t depth) {
  if (depth > max_depth_) return false;
  ++pos_;  // '['
  if (Consume(']')) {
    if constexpr (kWrite) out->append("[]", 2);
    return true;
  }
  if constexpr (kWrite) out->push_back('[');
  for (;;) {
    if (!Value<kWrite>(out, depth)) return false;
    SkipSpace();
    const char c = Peek();
    ++pos_;
    if constexpr (kWrite) out->push_back(c);
    if (c == ']') break;
    if (c != ',') return false;
  }
  return true;
}

bool Scanner::KeysUnique(size_t from) {
  const size_t n = keys_.size() - from;
  if (n < 2) return true;
  const std::string_view* k = keys_.data() + from;
  if (n <= 16) {  // few names: pairwise is cheaper than sorting
    for (size_t i = 1; i < n; ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (k[i] == k[j]) return false;
      }
    }
    return true;
  }
  sorted_.assign(k, k + n);
  std::sort(sorted_.begin(), sorted_.end());
  return std::adjacent_find(sorted_.begin(), sorted_.end()) == sorted_.end();
}

}  // namespace tailbus::json_scan
