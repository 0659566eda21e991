#include "core/event_decoder.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/internal/dtoa.h>
#include <rapidjson/internal/itoa.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/event_id.h"
#include "core/json_numbers.h"
#include "core/json_parse.h"
#include "core/json_scan.h"
#include "core/time_format.h"

namespace tailbus {
namespace {

using rapidjson::SizeType;
using Value = rapidjson::Value;
using Pool = rapidjson::MemoryPoolAllocator<>;
using Document = rapidjson::GenericDocument<rapidjson::UTF8<>, Pool>;

// Numbers are read exactly (core/json_parse.h) so doubles are written back as they were read;
// iterative so nesting cannot grow the stack; in situ (see ParseInPlace). UTF-8 is validated by the
// pre-scan, with the result RapidJSON's kParseValidateEncodingFlag would give (see ParseInPlace),
// at a fraction of the cost: RapidJSON validates byte by byte through a function call per
// character.
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseInsituFlag;

constexpr size_t kNpos = std::string_view::npos;
// Most events the fast path reserves room for before it has read them: a small first event
// must not make it allocate for a batch that is not there.
constexpr size_t kMaxReservedEvents = 1024;
// Room the bus needs to add `"offset":N,"ingested_at":"…",` to a body.
constexpr size_t kCommitOverheadBytes = 96;
// Offending values are quoted in error messages up to this many bytes.
constexpr size_t kMaxQuotedBytes = 40;
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
// Bytes of the DOM pool that live on the stack; most single events fit.
constexpr size_t kInlinePoolBytes = 16 * 1024;

constexpr size_t kMaxSessionIdBytes = 128;
constexpr size_t kMaxEventTypeBytes = 64;
constexpr size_t kMaxEventIdBytes = 128;
constexpr size_t kMaxOptionalStringBytes = 256;

// 0000-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z
constexpr int64_t kMinTimestampMs = -62167219200000;
constexpr int64_t kMaxTimestampMs = 253402300799999;

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// --- Rendering values and paths for error messages ------------------------------------------

// A rapidjson output stream that keeps only the first bytes written to it.
class BoundedStream {
 public:
  using Ch = char;
  explicit BoundedStream(size_t limit) : limit_(limit) {}
  void Put(char c) {
    if (out_.size() <= limit_) out_.push_back(c);
  }
  void Flush() {}
  // The text, cut at a UTF-8 boundary and marked with "…" when it was longer than the limit.
  std::string Take() {
    if (out_.size() > limit_) {
      size_t cut = limit_;
      while (cut > 0 && (static_cast<unsigned char>(out_[cut]) & 0xC0) == 0x80) --cut;
      out_.resize(cut);
      out_ += kEllipsis;
    }
    return std::move(out_);
  }

 private:
  size_t limit_;
  std::string out_;
};

// Compact JSON of `value`, truncated for an error message.
std::string Quote(const Value& value) {
  BoundedStream stream(kMaxQuotedBytes);
  rapidjson::Writer<BoundedStream> writer(stream);
  value.Accept(writer);
  return stream.Take();
}

std::string QuoteString(std::string_view s) {
  BoundedStream stream(kMaxQuotedBytes);
  rapidjson::Writer<BoundedStream> writer(stream);
  writer.String(s.data(), static_cast<SizeType>(s.size()));
  return stream.Take();
}

const char* TypeName(const Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "boolean";
    case rapidjson::kObjectType:
      return "object";
    case rapidjson::kArrayType:
      return "array";
    case rapidjson::kStringType:
      return "string";
    case rapidjson::kNumberType:
      return "number";
  }
  return "value";
}

// Appends a member name to an error path: `.name` for plain names, `["a b"]` otherwise.
void AppendPathKey(std::string& path, std::string_view key) {
  bool plain = !key.empty() && key.size() <= 64;
  for (char c : key) {
    if (!plain) break;
    plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-';
  }
  if (plain) {
    if (!path.empty()) path += '.';
    path += key;
  } else {
    path += '[';
    path += QuoteString(key);
    path += ']';
  }
}

void AppendPathIndex(std::string& path, size_t index) {
  path += '[';
  path += std::to_string(index);
  path += ']';
}

std::string_view NameOf(const Value& name) { return {name.GetString(), name.GetStringLength()}; }

// --- Errors -----------------------------------------------------------------------------------

class ErrorSink {
 public:
  ErrorSink(DecodeResult& result, size_t max_reported)
      : result_(result), max_reported_(std::max<size_t>(max_reported, 1)) {}

  void Add(std::optional<size_t> index, std::string field, std::string reason) {
    ++result_.error_count;
    if (result_.errors.size() < max_reported_) {
      result_.errors.push_back({index, std::move(field), std::move(reason)});
    }
  }
  void AddInput(std::string reason) { Add(std::nullopt, "body", std::move(reason)); }
  size_t count() const { return result_.error_count; }

 private:
  DecodeResult& result_;
  size_t max_reported_;
};

// --- Linear pre-scan: NUL bytes, UTF-8, batch size and nesting depth before any DOM exists ----

enum class Root {
  kEvent,  // the root value is the event (object input, NDJSON line)
  kBatch,  // the root value is an array of events
  kOther,  // a scalar or invalid: only look at strings and NUL bytes
};

struct TooDeep {
  size_t index;                // the event's index in the scanned root
  std::string_view key_token;  // raw text of its top-level member name, if any
};

struct ScanResult {
  size_t nul_offset = kNpos;  // a raw NUL byte (never valid JSON, and it ends RapidJSON's input)
  size_t bad_utf8_offset = kNpos;  // the first invalid UTF-8 sequence inside a string
  // The first \uDC00-\uDFFF escape not preceded by a high surrogate escape: RapidJSON would
  // decode it into bytes that are not UTF-8.
  size_t lone_surrogate_offset = kNpos;
  // The first number too large for a double that RapidJSON 1.1.0's full-precision path reads
  // out of bounds instead of refusing (core/json_numbers.h); parsing stops there.
  size_t too_big_number_offset = kNpos;
  size_t elements = 0;  // events in the root
  std::vector<TooDeep> too_deep;
  // Offsets of the 'e'/'E' of numbers whose digits are all zero ("0e308", "-0.0E+400"),
  // whose exponents ParseInPlace zeroes (core/json_numbers.h).
  std::vector<size_t> zero_exponents;
};

// Bytes that end a run the pre-scan can skip: inside a string, and outside one.
struct ScanTables {
  bool in_string[256] = {};
  bool outside[256] = {};
  constexpr ScanTables() {
    for (unsigned char c : {'"', '\\', '\0'}) in_string[c] = true;
    for (int c = 0x80; c < 0x100; ++c) in_string[c] = true;
    for (unsigned char c : {'"', '{', '[', '}', ']', ',', 'e', 'E', '\0'}) outside[c] = true;
  }
};
constexpr ScanTables kScan;

// Offset of the first '"', '\\', NUL or non-ASCII byte in p[i, n), or n. Strings are most of
// an event's bytes, so this loop is most of the pre-scan: 16 bytes at a time where SSE2 exists.
size_t FindStringStop(const unsigned char* p, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i zero = _mm_setzero_si128();
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i hits =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                     _mm_cmpeq_epi8(v, zero));
    // movemask also picks up the high bit of every non-ASCII byte.
    const int mask = _mm_movemask_epi8(_mm_or_si128(hits, v));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < n && !kScan.in_string[p[i]]) ++i;
  return i;
}

using json_scan::Hex4;
using json_scan::Utf8SequenceLength;

ScanResult PreScan(std::string_view text, size_t start, Root root, size_t max_depth) {
  ScanResult r;
  const size_t base = root == Root::kBatch ? 1 : 0;  // depth of the batch array itself
  if (root == Root::kEvent) r.elements = 1;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t depth = 0;
  size_t index = 0;
  bool need_element = false;          // batch: the next value starts a new element
  bool reported = false;              // the current event already has a depth error
  bool event_is_object = false;       // the current event's root is an object
  bool expect_key = false;            // the next string at event depth 1 is a member name
  std::string_view key;               // the current top-level member name, as raw JSON text
  size_t high_surrogate_end = kNpos;  // just past the last \uD800-\uDBFF escape
  size_t i = start;
  while (i < n) {
    if (need_element) {
      while (i < n && IsJsonSpace(static_cast<char>(p[i]))) ++i;
      if (i == n) break;
      if (p[i] != ']' && p[i] != ',') {
        index = r.elements++;
        need_element = false;
        reported = false;
        event_is_object = false;
        expect_key = false;
        key = {};
      }
    }
    while (i < n && !kScan.outside[p[i]]) ++i;
    if (i == n) break;
    const unsigned char c = p[i];
    if (c == '"') {
      const size_t open = i++;
      for (;;) {
        i = FindStringStop(p, i, n);
        if (i >= n) return r;  // unterminated: the parser reports it
        if (p[i] == '"') break;
        if (p[i] >= 0x80) {
          const size_t length = Utf8SequenceLength(p, i, n);
          if (length == 0 && r.bad_utf8_offset == kNpos) r.bad_utf8_offset = i;
          i += length == 0 ? 1 : length;
          continue;
        }
        if (p[i] == '\0') {
          r.nul_offset = i;
          return r;
        }
        // A backslash escapes the next byte, which must still not be NUL.
        if (i + 1 < n && p[i + 1] == '\0') {
          r.nul_offset = i + 1;
          return r;
        }
        if (i + 5 < n && p[i + 1] == 'u') {
          const int unit = Hex4(p + i + 2);
          if (unit >= 0xD800 && unit <= 0xDBFF) {
            high_surrogate_end = i + 6;
          } else if (unit >= 0xDC00 && unit <= 0xDFFF && high_surrogate_end != i &&
                     r.lone_surrogate_offset == kNpos) {
            r.lone_surrogate_offset = i;
          }
        }
        i += 2;
      }
      ++i;  // past the closing quote
      if (expect_key && root != Root::kOther && depth == base + 1) {
        expect_key = false;
        key = text.substr(open, i - open);
      }
      continue;
    }
    ++i;
    if (c == '\0') {
      r.nul_offset = i - 1;
      return r;
    }
    if (c == 'e' || c == 'E') {
      // An exponent (or the e of true/false), at any root (a scalar is parsed too): note it
      // when every digit before it is zero, or when the number overflows a double.
      size_t k = i - 1;
      bool digits = false;
      bool zero = true;
      while (k > start && ((p[k - 1] >= '0' && p[k - 1] <= '9') || p[k - 1] == '.')) {
        --k;
        digits |= p[k] != '.';
        zero &= p[k] == '0' || p[k] == '.';
      }
      if (digits && zero) r.zero_exponents.push_back(i - 1);
      if (digits && r.too_big_number_offset == kNpos && ExponentOverflowsDouble(text, k, i - 1)) {
        r.too_big_number_offset = k > 0 && p[k - 1] == '-' ? k - 1 : k;
      }
      continue;
    }
    if (root == Root::kOther) continue;  // only NUL bytes and numbers matter
    switch (c) {
      case '{':
      case '[':
        ++depth;
        if (root == Root::kBatch && depth == 1) {
          need_element = true;
          break;
        }
        if (depth == base + 1) {
          event_is_object = c == '{';
          expect_key = event_is_object;
          key = {};
        }
        if (depth - base > max_depth && !reported) {
          reported = true;
          r.too_deep.push_back({index, key});
        }
        break;
      case '}':
      case ']':
        if (depth > 0 && --depth == 0) root = Root::kOther;  // the root is complete
        break;
      case ',':
        if (root == Root::kBatch && depth == 1) {
          need_element = true;
        } else if (depth == base + 1 && event_is_object) {
          expect_key = true;
        }
        break;
      default:
        break;
    }
  }
  return r;
}

// The error field for a too-deep event: its top-level member, decoded, when it has one.
std::string TooDeepField(std::string_view key_token) {
  std::string field;
  if (key_token.size() < 2) return field;
  Document key_doc;
  key_doc.Parse<rapidjson::kParseValidateEncodingFlag>(key_token.data(), key_token.size());
  if (!key_doc.HasParseError() && key_doc.IsString()) AppendPathKey(field, NameOf(key_doc));
  return field;
}

// --- Parsing --------------------------------------------------------------------------------

// Parses buffer[begin, end) in place (the fastest RapidJSON mode: strings are decoded where
// they lie instead of being copied). `buffer` is the caller's private copy of the input, free
// of NUL bytes (the pre-scan rejects them); buffer[end] is overwritten with the terminator.
// `bad_utf8_offset` is the pre-scan's first invalid UTF-8 sequence in a string (or kNpos).
// On failure returns "invalid JSON at byte N: <RapidJSON's message>" or "invalid UTF-8 at
// byte N", N counted from the start of the buffer.
//
// The errors are those of a parse with kParseValidateEncodingFlag: that parse behaves as this
// one up to the first invalid sequence, where it stops. So a syntax error before that offset
// is reported as such; otherwise the invalid sequence is.
std::optional<std::string> ParseInPlace(Document& doc, char* buffer, size_t begin, size_t end,
                                        const ScanResult& scan) {
  const size_t bad_utf8_offset = scan.bad_utf8_offset;
  for (size_t e : scan.zero_exponents) ZeroExponentDigits(buffer, end, e);  // json_numbers.h
  // A number RapidJSON would read out of bounds is never parsed: the text ends before it, so
  // an earlier syntax error is still reported as such.
  const size_t too_big = scan.too_big_number_offset;
  const size_t stop = too_big != kNpos && too_big < end ? too_big : end;
  buffer[stop] = '\0';
  rapidjson::InsituStringStream stream(buffer + begin);
  const rapidjson::ParseResult parsed = ParseWithExactNumbers<kParseFlags>(doc, stream);
  size_t error_offset = parsed.IsError() ? begin + parsed.Offset() : kNpos;
  if (stop != end && (error_offset == kNpos || error_offset >= stop)) {
    doc.SetNull();
    error_offset = stop;
    if (bad_utf8_offset == kNpos || bad_utf8_offset > stop) {
      return fmt::format("invalid JSON at byte {}: {}", stop,
                         rapidjson::GetParseError_En(rapidjson::kParseErrorNumberTooBig));
    }
  }
  if (bad_utf8_offset != kNpos && (error_offset == kNpos || bad_utf8_offset <= error_offset)) {
    doc.SetNull();  // may hold invalid strings
    return fmt::format("invalid UTF-8 at byte {}", bad_utf8_offset);
  }
  const size_t lone = scan.lone_surrogate_offset;
  if (lone != kNpos && (error_offset == kNpos || lone <= error_offset)) {
    doc.SetNull();  // holds the surrogate's bytes, which are not UTF-8
    return fmt::format(
        "invalid JSON at byte {}: a \\u escape of a lone surrogate (not a character)", lone);
  }
  if (error_offset == kNpos) return std::nullopt;
  return fmt::format("invalid JSON at byte {}: {}", error_offset,
                     rapidjson::GetParseError_En(parsed.Code()));
}

// The DOM pool starts in a stack buffer so a small event needs no heap chunk.
struct DomArena {
  alignas(16) char inline_bytes[kInlinePoolBytes];
  Pool pool{inline_bytes, sizeof(inline_bytes)};
  Document doc{&pool};

  void Reset() {
    doc.SetNull();
    pool.Clear();
  }
};

// --- Field checks -----------------------------------------------------------------------------

enum Field : uint8_t {
  kSessionId,
  kEventType,
  kType,
  kEventId,
  kTimestamp,
  kAgentId,
  kToolName,
  kStatus,
  kModel,
  kFeatureId,
  kParentEventId,
  kCostTokens,
  kDurationMs,
  kTotalTokens,
  kPromptTokens,
  kCompletionTokens,
  kExecutionDurationSeconds,
  kOffset,
  kIngestedAt,
  kFieldCount,
  kOtherField = kFieldCount,
};

constexpr std::string_view kFieldNames[kFieldCount] = {
    "session_id",
    "event_type",
    "type",
    "event_id",
    "timestamp",
    "agent_id",
    "tool_name",
    "status",
    "model",
    "feature_id",
    "parent_event_id",
    "cost_tokens",
    "duration_ms",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "execution_duration_seconds",
    "offset",
    "ingested_at",
};

// `name`, of the literal's length, is the literal. A memcmp of constant length compiles to a
// few loads: Classify runs for every member of every event. (The names are kFieldNames'.)
template <size_t N>
bool Is(std::string_view name, const char (&literal)[N]) {
  return std::memcmp(name.data(), literal, N - 1) == 0;
}

Field Classify(std::string_view name) {
  switch (name.size()) {
    case 4:
      return Is(name, "type") ? kType : kOtherField;
    case 5:
      return Is(name, "model") ? kModel : kOtherField;
    case 6:
      if (Is(name, "status")) return kStatus;
      return Is(name, "offset") ? kOffset : kOtherField;
    case 8:
      if (Is(name, "event_id")) return kEventId;
      return Is(name, "agent_id") ? kAgentId : kOtherField;
    case 9:
      if (Is(name, "timestamp")) return kTimestamp;
      return Is(name, "tool_name") ? kToolName : kOtherField;
    case 10:
      if (Is(name, "session_id")) return kSessionId;
      if (Is(name, "event_type")) return kEventType;
      return Is(name, "feature_id") ? kFeatureId : kOtherField;
    case 11:
      if (Is(name, "cost_tokens")) return kCostTokens;
      if (Is(name, "duration_ms")) return kDurationMs;
      return Is(name, "ingested_at") ? kIngestedAt : kOtherField;
    case 12:
      return Is(name, "total_tokens") ? kTotalTokens : kOtherField;
    case 13:
      return Is(name, "prompt_tokens") ? kPromptTokens : kOtherField;
    case 15:
      return Is(name, "parent_event_id") ? kParentEventId : kOtherField;
    case 17:
      return Is(name, "completion_tokens") ? kCompletionTokens : kOtherField;
    case 26:
      return Is(name, "execution_duration_seconds") ? kExecutionDurationSeconds : kOtherField;
    default:
      return kOtherField;
  }
}

std::string_view StringOf(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

// True when `s` holds no C0 control, DEL or C1 control (U+0080..U+009F) character.
// `s` is valid UTF-8 (the pre-scan validated it), so a C1 control is 0xC2 0x80..0x9F.
bool HasNoControlCharacters(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
#if defined(__SSE2__)
  // Blocks without a control character, DEL or 0xC2 (the common case) need no closer look.
  const __m128i max_control = _mm_set1_epi8(0x1F);
  const __m128i del = _mm_set1_epi8(0x7F);
  const __m128i c2 = _mm_set1_epi8(static_cast<char>(0xC2));
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, max_control), max_control);
    const __m128i hits =
        _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(v, c2)));
    if (_mm_movemask_epi8(hits) != 0) break;  // look byte by byte from this block on
  }
#endif
  for (; i < n; ++i) {
    const unsigned char c = p[i];
    if (c < 0x20 || c == 0x7F) return false;
    if (c == 0xC2 && i + 1 < n && p[i + 1] < 0xA0) return false;
  }
  return true;
}

bool IsPrintableString(const Value& v, size_t min_bytes, size_t max_bytes) {
  if (!v.IsString()) return false;
  const std::string_view s = StringOf(v);
  return s.size() >= min_bytes && s.size() <= max_bytes && HasNoControlCharacters(s);
}

bool IsEventTypeChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

bool IsEventType(const Value& v) {
  if (!v.IsString()) return false;
  const std::string_view s = StringOf(v);
  if (s.empty() || s.size() > kMaxEventTypeBytes) return false;
  return std::all_of(s.begin(), s.end(), IsEventTypeChar);
}

bool IsNonNegativeInt64(const Value& v) { return v.IsInt64() && v.GetInt64() >= 0; }

bool IsNonNegativeFinite(const Value& v) {
  if (!v.IsNumber()) return false;
  const double d = v.GetDouble();
  return std::isfinite(d) && d >= 0;
}

std::optional<int64_t> TimestampMillis(const Value& v) {
  if (v.IsString()) return ParseRfc3339Millis(StringOf(v));
  if (v.IsInt64()) {
    const int64_t ms = v.GetInt64();
    if (ms < kMinTimestampMs || ms > kMaxTimestampMs) return std::nullopt;
    return ms;
  }
  if (v.IsDouble()) {  // e.g. 1.7e12 or 1700000000000.5: floor to the millisecond
    const double d = std::floor(v.GetDouble());
    if (!(d >= static_cast<double>(kMinTimestampMs) && d <= static_cast<double>(kMaxTimestampMs))) {
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

// execution_duration_seconds -> duration_ms. Goes through whole nanoseconds while they are
// exact in a double, so 1.234 s becomes 1234 ms rather than 1233.9999999999998.
double SecondsToMillis(double seconds) {
  const double ns = seconds * 1e9;
  if (ns < 9007199254740992.0) return std::round(ns) / 1e6;
  return seconds * 1000;
}

// --- Writing bodies -------------------------------------------------------------------------

// How BodyWriter escapes each byte of a string.
struct EscapeTable {
  char code[256] = {};  // 0: written as is; 'u': \u00XX; else the character after '\\'
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
constexpr EscapeTable kEscape{};

// Offset of the first byte in s[i, n) that BodyWriter escapes, or n.
size_t FindEscape(const unsigned char* s, size_t i, size_t n) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i max_control = _mm_set1_epi8(0x1F);
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const __m128i control = _mm_cmpeq_epi8(_mm_max_epu8(v, max_control), max_control);
    const __m128i hits =
        _mm_or_si128(control, _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    const int mask = _mm_movemask_epi8(hits);
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
#endif
  while (i < n && kEscape.code[s[i]] == 0) ++i;
  return i;
}

// rapidjson::Writer with a faster string path: runs of bytes that need no escaping are copied
// with memcpy instead of byte by byte. The escaping is RapidJSON's own, so the output is the
// same byte for byte: '"', '\\' and control characters are escaped (\b \t \n \f \r, else
// \u00XX), everything else, including UTF-8 and '/', is written as is.
class BodyWriter : public rapidjson::Writer<rapidjson::StringBuffer> {
 public:
  explicit BodyWriter(rapidjson::StringBuffer& out) : Writer(out) {}

  // Hide Writer::String/Key; Value::Accept calls these through the BodyWriter type.
  bool String(const char* str, SizeType length, bool /*copy*/ = false) {
    Prefix(rapidjson::kStringType);
    return EndValue(WriteEscaped(str, length));
  }
  bool Key(const char* str, SizeType length, bool copy = false) {
    return String(str, length, copy);
  }

 private:
  bool WriteEscaped(const char* str, SizeType length) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    const size_t reserved = 2 + size_t{length} * 6;  // every byte as \u00XX, and the quotes
    char* const begin = os_->Push(reserved);
    char* out = begin;
    *out++ = '"';
    const auto* s = reinterpret_cast<const unsigned char*>(str);
    size_t i = 0;
    while (i < length) {
      const size_t run_end = FindEscape(s, i, length);
      std::memcpy(out, s + i, run_end - i);
      out += run_end - i;
      if (run_end == length) break;
      const unsigned char c = s[run_end];
      i = run_end + 1;
      *out++ = '\\';
      *out++ = kEscape.code[c];
      if (kEscape.code[c] == 'u') {
        *out++ = '0';
        *out++ = '0';
        *out++ = kHex[c >> 4];
        *out++ = kHex[c & 15];
      }
    }
    *out++ = '"';
    os_->Pop(reserved - static_cast<size_t>(out - begin));
    return true;
  }
};

// --- The per-call decoder ---------------------------------------------------------------------

struct NameRef {
  std::string_view name;
  size_t position;
};

class Decoder {
 public:
  Decoder(const DecodeLimits& limits, int64_t now_ms, DecodeResult& result)
      : limits_(limits),
        now_ms_(now_ms),
        result_(result),
        errors_(result, limits.max_reported_errors),
        writer_(body_) {}

  ErrorSink& errors() { return errors_; }

  // Validates and normalises one event; appends it to the result while no error has been seen.
  void DecodeEvent(const Value& event, size_t index);

  // The fast path: reads one event object at the scanner's position, validates it and appends
  // it to the result. Returns false, with the result in an unspecified state, whenever it gives
  // up (json_scan.h); the caller then decodes the whole input again by the reference path, which
  // reports any error. Never adds an error of its own.
  bool DecodeEventFast(json_scan::Scanner& scanner, size_t index);

  // Reports each too-deep event found by a pre-scan; `first_index` is the index of the
  // scanned root's first event.
  void ReportTooDeep(const ScanResult& scan, size_t first_index) {
    for (const TooDeep& t : scan.too_deep) {
      errors_.Add(first_index + t.index, TooDeepField(t.key_token),
                  fmt::format("nesting depth exceeds the limit of {}", limits_.max_depth));
    }
  }

  void Finish() {
    if (errors_.count() > 0) result_.events.clear();
  }

 private:
  void Error(size_t index, std::string_view field, std::string reason) {
    errors_.Add(index, std::string(field), std::move(reason));
  }
  void CheckDuplicates(const Value& v, size_t index, size_t depth);
  void CheckObjectKeys(const Value& object, size_t index);

  // What CheckFields derives from an event's indexed members.
  struct Checked {
    const Value* event_type = nullptr;  // event_type, or type in its absence
    bool type_as_event_type = false;
    int64_t timestamp_ms = 0;
    std::optional<int64_t> cost_tokens;
    bool cost_derived = false;  // cost_tokens is added to the body
    std::optional<double> duration_ms;
    bool duration_derived = false;  // duration_ms is added to the body
  };
  // Checks the indexed members `f` (the first occurrence of each, nullptr when absent) and
  // derives the rest; reports each problem. True when there was none.
  bool CheckFields(const Value* const* f, size_t index, Checked* c);
  // Reports a body beyond max_event_bytes; true when it fits.
  bool CheckBodySize(size_t body_bytes, size_t index);
  // Appends the valid event with body `body` to the result.
  void Emit(const Value* const* f, const Checked& c, std::string body, std::string event_id);
  // FormatRfc3339Millis(ms), remembered: most events of a batch carry the ingest time.
  const std::string& FormattedTimestamp(int64_t ms);

  const DecodeLimits& limits_;
  const int64_t now_ms_;
  DecodeResult& result_;
  ErrorSink errors_;
  rapidjson::StringBuffer body_;
  BodyWriter writer_;
  // Where the value being checked is: member names, or array indices (name == nullptr).
  // Rendered as text only when an error is reported.
  struct PathSegment {
    const Value* name;
    size_t index;
  };
  std::vector<PathSegment> path_;
  std::string PathString() const {
    std::string out;
    for (const PathSegment& segment : path_) {
      if (segment.name != nullptr) {
        AppendPathKey(out, NameOf(*segment.name));
      } else {
        AppendPathIndex(out, segment.index);
      }
    }
    return out;
  }
  std::vector<NameRef> names_;  // scratch for duplicate detection
  std::string scratch_;         // the fast path's body being written
  std::optional<int64_t> formatted_ms_;
  std::string formatted_;              // FormatRfc3339Millis(*formatted_ms_)
  std::vector<size_t> dup_positions_;  // scratch for duplicate detection
};

void Decoder::CheckObjectKeys(const Value& object, size_t index) {
  const SizeType n = object.MemberCount();
  if (n < 2) return;
  auto members = object.MemberBegin();
  auto report = [&](size_t position) {
    std::string field = PathString();
    AppendPathKey(field, NameOf(members[position].name));
    Error(index, field, "duplicate key");
  };
  if (n <= 16) {
    // Few members: pairwise is cheaper than sorting. Report each name at its second use.
    for (SizeType i = 1; i < n; ++i) {
      const std::string_view name = NameOf(members[i].name);
      int earlier = 0;
      for (SizeType j = 0; j < i && earlier < 2; ++j) {
        if (NameOf(members[j].name) == name) ++earlier;
      }
      if (earlier == 1) report(i);
    }
    return;
  }
  // Many members: sort names, O(n log n).
  names_.clear();
  names_.reserve(n);
  for (SizeType i = 0; i < n; ++i) names_.push_back({NameOf(members[i].name), i});
  std::sort(names_.begin(), names_.end(), [](const NameRef& a, const NameRef& b) {
    const int c = a.name.compare(b.name);
    return c != 0 ? c < 0 : a.position < b.position;
  });
  dup_positions_.clear();
  for (size_t i = 1; i < names_.size(); ++i) {
    // names_[i] is the second use of its name when it equals the first and only earlier one.
    if (names_[i].name == names_[i - 1].name && (i < 2 || names_[i - 2].name != names_[i].name)) {
      dup_positions_.push_back(names_[i].position);
    }
  }
  if (dup_positions_.empty()) return;
  std::sort(dup_positions_.begin(), dup_positions_.end());  // report in document order
  for (size_t position : dup_positions_) report(position);
}

void Decoder::CheckDuplicates(const Value& v, size_t index, size_t depth) {
  // The pre-scan bounded the depth; the guard only keeps the recursion obviously finite.
  if (depth > limits_.max_depth) return;
  if (v.IsObject()) {
    CheckObjectKeys(v, index);
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      if (!m->value.IsObject() && !m->value.IsArray()) continue;
      path_.push_back({&m->name, 0});
      CheckDuplicates(m->value, index, depth + 1);
      path_.pop_back();
    }
  } else if (v.IsArray()) {
    for (SizeType i = 0; i < v.Size(); ++i) {
      if (!v[i].IsObject() && !v[i].IsArray()) continue;
      path_.push_back({nullptr, i});
      CheckDuplicates(v[i], index, depth + 1);
      path_.pop_back();
    }
  }
}

bool Decoder::CheckFields(const Value* const* f, size_t index, Checked* c) {
  const size_t errors_before = errors_.count();

  // session_id
  if (f[kSessionId] == nullptr) {
    Error(index, "session_id", "missing");
  } else if (!IsPrintableString(*f[kSessionId], 1, kMaxSessionIdBytes)) {
    Error(index, "session_id",
          fmt::format("must be a string of 1-{} printable bytes, got {}", kMaxSessionIdBytes,
                      Quote(*f[kSessionId])));
  }

  // event_type, or type in its absence
  c->event_type = f[kEventType];
  c->type_as_event_type = c->event_type == nullptr && f[kType] != nullptr;
  if (c->type_as_event_type) c->event_type = f[kType];
  if (c->event_type == nullptr) {
    Error(index, "event_type", "missing");
  } else if (!IsEventType(*c->event_type)) {
    Error(index, c->type_as_event_type ? "type" : "event_type",
          fmt::format("must match [A-Za-z0-9_.:-]{{1,{}}}, got {}", kMaxEventTypeBytes,
                      Quote(*c->event_type)));
  }

  // event_id
  if (f[kEventId] != nullptr && !IsPrintableString(*f[kEventId], 1, kMaxEventIdBytes)) {
    Error(index, "event_id",
          fmt::format("must be a string of 1-{} printable bytes, got {}", kMaxEventIdBytes,
                      Quote(*f[kEventId])));
  }

  // timestamp
  c->timestamp_ms = now_ms_;
  if (f[kTimestamp] != nullptr) {
    if (std::optional<int64_t> ms = TimestampMillis(*f[kTimestamp])) {
      c->timestamp_ms = *ms;
    } else {
      Error(index, "timestamp",
            fmt::format("must be an RFC 3339 date-time string or epoch milliseconds in years "
                        "0000-9999, got {}",
                        Quote(*f[kTimestamp])));
    }
  }

  // Optional indexed strings; null means absent.
  for (Field field : {kAgentId, kToolName, kStatus, kModel, kFeatureId, kParentEventId}) {
    const Value* v = f[field];
    if (v == nullptr || v->IsNull()) continue;
    if (!IsPrintableString(*v, 0, kMaxOptionalStringBytes)) {
      Error(index, kFieldNames[field],
            fmt::format("must be null or a string of at most {} bytes without control "
                        "characters, got {}",
                        kMaxOptionalStringBytes, Quote(*v)));
    }
  }

  // cost_tokens, given or derived
  if (const Value* v = f[kCostTokens]) {
    if (IsNonNegativeInt64(*v)) {
      c->cost_tokens = v->GetInt64();
    } else if (v->IsUint64()) {
      Error(index, "cost_tokens",
            fmt::format("must be at most {}, got {}", std::numeric_limits<int64_t>::max(),
                        Quote(*v)));
    } else {
      Error(index, "cost_tokens", fmt::format("must be a non-negative integer, got {}", Quote(*v)));
    }
  } else if (const Value* total = f[kTotalTokens]) {
    if (IsNonNegativeInt64(*total)) {
      c->cost_tokens = total->GetInt64();
      c->cost_derived = true;
    } else {
      Error(index, "total_tokens",
            fmt::format("must be a non-negative integer to derive cost_tokens, got {}",
                        Quote(*total)));
    }
  } else if (f[kPromptTokens] != nullptr || f[kCompletionTokens] != nullptr) {
    // Either may be absent (e.g. embeddings have no completion): it counts as 0.
    int64_t sum = 0;
    bool valid = true;
    for (Field field : {kPromptTokens, kCompletionTokens}) {
      const Value* v = f[field];
      if (v == nullptr) continue;
      if (!IsNonNegativeInt64(*v)) {
        Error(
            index, kFieldNames[field],
            fmt::format("must be a non-negative integer to derive cost_tokens, got {}", Quote(*v)));
        valid = false;
      } else if (valid && __builtin_add_overflow(sum, v->GetInt64(), &sum)) {
        Error(index, "cost_tokens",
              fmt::format("prompt_tokens + completion_tokens exceeds {}",
                          std::numeric_limits<int64_t>::max()));
        valid = false;
      }
    }
    if (valid) {
      c->cost_tokens = sum;
      c->cost_derived = true;
    }
  }

  // duration_ms, given or derived
  if (const Value* v = f[kDurationMs]) {
    if (IsNonNegativeFinite(*v)) {
      c->duration_ms = v->GetDouble();
    } else {
      Error(index, "duration_ms", fmt::format("must be a finite number >= 0, got {}", Quote(*v)));
    }
  } else if (const Value* seconds = f[kExecutionDurationSeconds]) {
    if (!IsNonNegativeFinite(*seconds)) {
      Error(index, "execution_duration_seconds",
            fmt::format("must be a finite number >= 0 to derive duration_ms, got {}",
                        Quote(*seconds)));
    } else if (const double ms = SecondsToMillis(seconds->GetDouble()); !std::isfinite(ms)) {
      Error(index, "duration_ms",
            fmt::format("execution_duration_seconds * 1000 is not a finite number, got {}",
                        Quote(*seconds)));
    } else {
      c->duration_ms = ms;
      c->duration_derived = true;
    }
  }
  return errors_.count() == errors_before;
}

const std::string& Decoder::FormattedTimestamp(int64_t ms) {
  if (!formatted_ms_.has_value() || *formatted_ms_ != ms) {
    formatted_ = FormatRfc3339Millis(ms);
    formatted_ms_ = ms;
  }
  return formatted_;
}

bool Decoder::CheckBodySize(size_t body_bytes, size_t index) {
  if (body_bytes > limits_.max_event_bytes ||
      limits_.max_event_bytes - body_bytes < kCommitOverheadBytes) {
    errors_.Add(index, "",
                fmt::format("too large: {} bytes after normalisation (+{} for offset and "
                            "ingested_at) exceeds the limit of {} bytes",
                            body_bytes, kCommitOverheadBytes, limits_.max_event_bytes));
    return false;
  }
  return true;
}

void Decoder::Emit(const Value* const* f, const Checked& c, std::string body,
                   std::string event_id) {
  Event& out = result_.events.emplace_back();
  out.body = std::move(body);
  EventHeader& h = out.header;
  h.session_id.assign(StringOf(*f[kSessionId]));
  h.event_type.assign(StringOf(*c.event_type));
  h.event_id = std::move(event_id);
  h.event_id_generated = f[kEventId] == nullptr;
  h.timestamp_ms = c.timestamp_ms;
  auto optional_string = [&](Field field, std::string& dst) {
    const Value* v = f[field];
    if (v != nullptr && v->IsString()) dst.assign(StringOf(*v));
  };
  optional_string(kAgentId, h.agent_id);
  optional_string(kToolName, h.tool_name);
  optional_string(kStatus, h.status);
  optional_string(kModel, h.model);
  optional_string(kFeatureId, h.feature_id);
  optional_string(kParentEventId, h.parent_event_id);
  h.cost_tokens = c.cost_tokens;
  h.duration_ms = c.duration_ms;
}

void Decoder::DecodeEvent(const Value& event, size_t index) {
  if (!event.IsObject()) {
    errors_.Add(index, "", fmt::format("must be a JSON object, got {}", TypeName(event)));
    return;
  }
  const size_t errors_before = errors_.count();

  path_.clear();
  CheckDuplicates(event, index, 1);

  // The first occurrence of each indexed member (duplicates are errors anyway).
  const Value* f[kFieldCount] = {};
  bool strip = false;  // offset / ingested_at present
  for (auto m = event.MemberBegin(); m != event.MemberEnd(); ++m) {
    const Field field = Classify(NameOf(m->name));
    if (field == kOtherField) continue;
    if (field == kOffset || field == kIngestedAt) strip = true;
    if (f[field] == nullptr) f[field] = &m->value;
  }

  Checked c;
  CheckFields(f, index, &c);
  if (errors_.count() != errors_before) return;

  // Valid: write the body.
  const std::string_view event_type_value = StringOf(*c.event_type);
  std::string event_id =
      f[kEventId] != nullptr ? std::string(StringOf(*f[kEventId])) : NewEventId(now_ms_);
  const std::string& timestamp = FormattedTimestamp(c.timestamp_ms);
  body_.Clear();
  writer_.Reset(body_);
  writer_.StartObject();
  for (auto m = event.MemberBegin(); m != event.MemberEnd(); ++m) {
    if (strip) {
      const Field field = Classify(NameOf(m->name));
      if (field == kOffset || field == kIngestedAt) continue;
    }
    writer_.Key(m->name.GetString(), m->name.GetStringLength());
    if (&m->value == f[kTimestamp]) {
      writer_.String(timestamp.data(), static_cast<SizeType>(timestamp.size()));
    } else if (!m->value.Accept(writer_)) {
      // The writer refuses a non-finite double: RapidJSON 1.1.0 reads some numbers just
      // beyond a double's range ("1.8e308") as infinity instead of refusing them, and JSON
      // has no infinity (found by fuzz/event_decoder_fuzz: the body was stored as `"x":,`).
      Error(index, NameOf(m->name), "has a number beyond the range of a double");
      return;
    }
  }
  if (c.type_as_event_type) {
    writer_.Key("event_type", 10);
    writer_.String(event_type_value.data(), static_cast<SizeType>(event_type_value.size()));
  }
  if (f[kEventId] == nullptr) {
    writer_.Key("event_id", 8);
    writer_.String(event_id.data(), static_cast<SizeType>(event_id.size()));
  }
  if (f[kTimestamp] == nullptr) {
    writer_.Key("timestamp", 9);
    writer_.String(timestamp.data(), static_cast<SizeType>(timestamp.size()));
  }
  if (c.cost_derived) {
    writer_.Key("cost_tokens", 11);
    writer_.Int64(*c.cost_tokens);
  }
  if (c.duration_derived) {
    writer_.Key("duration_ms", 11);
    writer_.Double(*c.duration_ms);
  }
  writer_.EndObject();

  const size_t body_bytes = body_.GetSize();
  if (!CheckBodySize(body_bytes, index)) return;
  if (errors_.count() > 0) return;  // the batch is rejected: keep validating, stop building
  Emit(f, c, std::string(body_.GetString(), body_bytes), std::move(event_id));
}

// --- The fast path ----------------------------------------------------------------------------

// Reads the value of an indexed member into `v` (strings point into the input) and appends its
// canonical text to `out`. Gives up on escaped strings (the header needs decoded text, and they
// are rare in indexed members).
bool ReadIndexedValue(json_scan::Scanner& s, Value* v, std::string* out) {
  s.SkipSpace();
  const char c = s.Peek();
  if (c == '"') {
    std::string_view raw;
    bool escaped;
    if (!s.ReadString(&raw, &escaped) || escaped) return false;
    v->SetString(rapidjson::StringRef(raw.data(), static_cast<SizeType>(raw.size())));
    json_scan::Scanner::AppendString(out, raw, false);
    return true;
  }
  if (c == 't' || c == 'f' || c == 'n') {
    std::string_view text;
    if (!s.ReadLiteral(&text)) return false;
    if (text[0] == 'n') {
      v->SetNull();
    } else {
      v->SetBool(text[0] == 't');
    }
    out->append(text);
    return true;
  }
  if (c == '{' || c == '[') {
    // Invalid in every indexed member but `type` next to `event_type`, where it is kept
    // unchecked; an empty one of the same kind is all the checks look at.
    if (!s.CopyValue(out, 1)) return false;
    if (c == '{') {
      v->SetObject();
    } else {
      v->SetArray();
    }
    return true;
  }
  json_scan::Number number;
  std::string_view text;
  if (!s.ReadNumber(&number, &text)) return false;
  switch (number.kind) {  // the Value json_parse.h's handler would build
    case json_scan::Number::Kind::kUint64:
      v->SetUint64(number.u);
      break;
    case json_scan::Number::Kind::kInt64:
      v->SetInt64(number.i);
      break;
    case json_scan::Number::Kind::kDouble:
      v->SetDouble(number.d);
      break;
  }
  json_scan::Scanner::AppendNumber(out, number, text);
  return true;
}

// `key` is a plain name (no byte to escape) given as a literal.
template <size_t N>
void AppendKey(std::string* out, const char (&key)[N]) {
  char text[N + 2];
  text[0] = '"';
  std::memcpy(text + 1, key, N - 1);
  text[N] = '"';
  text[N + 1] = ':';
  out->append(text, N + 2);
}

bool Decoder::DecodeEventFast(json_scan::Scanner& s, size_t index) {
  if (!s.Consume('{')) return false;
  std::string& out = scratch_;
  out.clear();
  out.push_back('{');
  Value values[kFieldCount];
  const Value* f[kFieldCount] = {};
  size_t timestamp_begin = 0;  // where the timestamp's value is in `out`
  size_t timestamp_end = 0;
  std::vector<std::string_view>& keys = s.keys();
  keys.clear();
  bool first = true;
  if (s.Consume('}')) return false;  // no session_id: the reference path reports it
  for (;;) {
    s.SkipSpace();
    std::string_view key;
    bool escaped;
    if (!s.ReadString(&key, &escaped) || escaped) return false;
    const Field field = Classify(key);
    // Indexed names are told apart by f[]; only the others need the general duplicate check.
    if (field == kOtherField) {
      keys.push_back(key);
    } else if (f[field] != nullptr) {
      return false;  // a duplicate key
    }
    if (field == kOffset || field == kIngestedAt) {
      // Dropped from the body, whatever it holds; still read (and checked) as JSON.
      f[field] = &values[field];
      if (!s.Consume(':') || !s.SkipValue(1)) return false;
    } else {
      // The key, unescaped, is written as is: with the comma before it and the colon after
      // it in one copy when the input has them right there (compact JSON).
      const char* from = key.data() - 1;  // the opening quote
      const char* to = key.data() + key.size() + 1;
      if (!first) {
        if (from[-1] == ',') {
          --from;  // the separator, just before the opening quote
        } else {
          out.push_back(',');
        }
      }
      const bool colon = s.Peek() == ':';  // right after the closing quote
      if (colon) ++to;
      out.append(from, static_cast<size_t>(to - from));
      if (!s.Consume(':')) return false;
      if (!colon) out.push_back(':');
      first = false;
      if (field == kOtherField) {
        if (!s.CopyValue(&out, 1)) return false;
      } else {
        const size_t value_begin = out.size();
        if (!ReadIndexedValue(s, &values[field], &out)) return false;
        f[field] = &values[field];
        if (field == kTimestamp) {
          timestamp_begin = value_begin;
          timestamp_end = out.size();
        }
      }
    }
    s.SkipSpace();
    const char c = s.Peek();
    if (c != ',' && c != '}') return false;
    s.Consume(c);
    if (c == '}') break;
  }
  if (!s.KeysUnique(0)) return false;

  Checked c;
  if (!CheckFields(f, index, &c)) return false;

  // Three strings need no escaping: a generated id is a ULID ([0-9A-Z]), a formatted time
  // is digits and "-:.TZ", an event type matches [A-Za-z0-9_.:-] (CheckFields).
  auto append_plain = [&out](std::string_view v) {
    out.push_back('"');
    out.append(v);
    out.push_back('"');
  };
  std::string event_id =
      f[kEventId] != nullptr ? std::string(StringOf(*f[kEventId])) : NewEventId(now_ms_);
  const std::string& timestamp = FormattedTimestamp(c.timestamp_ms);
  if (f[kTimestamp] != nullptr) {
    out.replace(timestamp_begin, timestamp_end - timestamp_begin, "\"" + timestamp + "\"");
  }
  // Members the normalisation adds, in the order the reference path writes them.
  auto comma = [&] {
    if (out.size() > 1) out.push_back(',');
  };
  if (c.type_as_event_type) {
    comma();
    AppendKey(&out, "event_type");
    append_plain(StringOf(*c.event_type));
  }
  if (f[kEventId] == nullptr) {
    comma();
    AppendKey(&out, "event_id");
    append_plain(event_id);
  }
  if (f[kTimestamp] == nullptr) {
    comma();
    AppendKey(&out, "timestamp");
    append_plain(timestamp);
  }
  char number[32];
  if (c.cost_derived) {
    comma();
    AppendKey(&out, "cost_tokens");
    const char* end = rapidjson::internal::i64toa(*c.cost_tokens, number);
    out.append(number, static_cast<size_t>(end - number));
  }
  if (c.duration_derived) {
    comma();
    AppendKey(&out, "duration_ms");
    const char* end = rapidjson::internal::dtoa(*c.duration_ms, number);
    out.append(number, static_cast<size_t>(end - number));
  }
  out.push_back('}');
  if (!CheckBodySize(out.size(), index)) return false;
  Emit(f, c, out, std::move(event_id));
  return true;
}

size_t SkipBom(std::string_view text) { return text.substr(0, 3) == kUtf8Bom ? 3 : 0; }

size_t SkipSpace(std::string_view text, size_t pos) {
  while (pos < text.size() && IsJsonSpace(text[pos])) ++pos;
  return pos;
}

std::string NulReason(size_t offset) {
  return fmt::format("invalid JSON at byte {}: NUL character", offset);
}

}  // namespace

std::string FieldError::ToString() const {
  std::string out;
  if (index.has_value()) {
    out = fmt::format("events[{}]", *index);
    if (!field.empty()) {
      if (field.front() != '[') out += '.';
      out += field;
    }
  } else {
    out = field.empty() ? "body" : field;
  }
  out += ": ";
  out += reason;
  return out;
}

Status DecodeResult::ToStatus() const {
  if (ok()) return Status::Ok();
  std::string msg = errors.front().ToString();
  if (error_count > 1) {
    const size_t more = error_count - 1;
    msg += fmt::format(" (and {} more error{})", more, more == 1 ? "" : "s");
  }
  return Status::InvalidArgument(std::move(msg));
}

namespace decoder_internal {

std::optional<DecodeResult> DecodeEventsFast(std::string_view json, const DecodeLimits& limits,
                                             int64_t now_ms) {
  if (limits.max_depth < 1) return std::nullopt;
  DecodeResult result;
  Decoder decoder(limits, now_ms, result);
  json_scan::Scanner s(json.substr(SkipBom(json)), limits.max_depth);
  s.SkipSpace();
  if (s.Peek() == '{') {
    if (!decoder.DecodeEventFast(s, 0)) return std::nullopt;
  } else if (s.Consume('[')) {
    if (s.Consume(']')) return std::nullopt;  // an empty batch
    for (size_t index = 0;; ++index) {
      if (index >= limits.max_batch_events) return std::nullopt;
      const size_t begin = s.pos();
      if (!decoder.DecodeEventFast(s, index)) return std::nullopt;
      if (index == 0) {  // guess the batch size from the first event's (growth does the rest)
        const size_t guess = json.size() / std::max<size_t>(s.pos() - begin, 1) + 1;
        result.events.reserve(std::min({guess, limits.max_batch_events, kMaxReservedEvents}));
      }
      s.SkipSpace();
      const char c = s.Peek();
      if (c != ',' && c != ']') return std::nullopt;
      s.Consume(c);
      if (c == ']') break;
    }
  } else {
    return std::nullopt;
  }
  s.SkipSpace();
  if (!s.AtEnd()) return std::nullopt;
  return result;
}

std::optional<DecodeResult> DecodeNdjsonFast(std::string_view text, const DecodeLimits& limits,
                                             int64_t now_ms) {
  if (limits.max_depth < 1) return std::nullopt;
  DecodeResult result;
  Decoder decoder(limits, now_ms, result);
  size_t index = 0;
  for (size_t pos = SkipBom(text); pos < text.size();) {
    const void* nl = std::memchr(text.data() + pos, '\n', text.size() - pos);
    const size_t end =
        nl ? static_cast<size_t>(static_cast<const char*>(nl) - text.data()) : text.size();
    json_scan::Scanner s(text.substr(pos, end - pos), limits.max_depth);
    pos = end + 1;
    s.SkipSpace();
    if (s.AtEnd()) continue;  // a blank line
    if (index >= limits.max_batch_events || s.Peek() != '{') return std::nullopt;
    if (!decoder.DecodeEventFast(s, index++)) return std::nullopt;
    s.SkipSpace();
    if (!s.AtEnd()) return std::nullopt;
  }
  if (index == 0) return std::nullopt;
  return result;
}

DecodeResult DecodeEventsReference(std::string_view json, const DecodeLimits& limits,
                                   int64_t now_ms) {
  DecodeResult result;
  Decoder decoder(limits, now_ms, result);
  const size_t start = SkipSpace(json, SkipBom(json));
  if (start == json.size()) {
    decoder.errors().AddInput("empty input");
    return result;
  }
  const Root root = json[start] == '{'   ? Root::kEvent
                    : json[start] == '[' ? Root::kBatch
                                         : Root::kOther;
  const ScanResult scan = PreScan(json, start, root, limits.max_depth);
  if (scan.nul_offset != kNpos) {
    decoder.errors().AddInput(NulReason(scan.nul_offset));
    return result;
  }
  if (root == Root::kBatch && scan.elements > limits.max_batch_events) {
    decoder.errors().AddInput(fmt::format("batch of {} events exceeds the limit of {}",
                                          scan.elements, limits.max_batch_events));
    return result;
  }
  if (!scan.too_deep.empty()) {
    decoder.ReportTooDeep(scan, 0);
    decoder.Finish();
    return result;
  }

  std::string buffer(json);  // parsed in place; the DOM's strings point into it
  DomArena arena;
  Document& doc = arena.doc;
  if (std::optional<std::string> error =
          ParseInPlace(doc, buffer.data(), start, buffer.size(), scan)) {
    decoder.errors().AddInput(std::move(*error));
    return result;
  }
  if (doc.IsObject()) {
    decoder.DecodeEvent(doc, 0);
  } else if (doc.IsArray()) {
    if (doc.Empty()) {
      decoder.errors().AddInput("empty batch");
      return result;
    }
    if (doc.Size() > limits.max_batch_events) {  // the pre-scan already counted; stay safe
      decoder.errors().AddInput(fmt::format("batch of {} events exceeds the limit of {}",
                                            doc.Size(), limits.max_batch_events));
      return result;
    }
    result.events.reserve(doc.Size());
    for (SizeType i = 0; i < doc.Size(); ++i) decoder.DecodeEvent(doc[i], i);
  } else {
    decoder.errors().AddInput(
        fmt::format("must be a JSON object or an array of objects, got {}", TypeName(doc)));
  }
  decoder.Finish();
  return result;
}

DecodeResult DecodeNdjsonReference(std::string_view text, const DecodeLimits& limits,
                                   int64_t now_ms) {
  DecodeResult result;
  Decoder decoder(limits, now_ms, result);

  // Non-blank lines, [begin, end) offsets into text; counted beyond the limit, kept up to it.
  struct Line {
    size_t begin;
    size_t end;
  };
  std::vector<Line> lines;
  size_t count = 0;
  for (size_t pos = SkipBom(text); pos < text.size();) {
    const void* nl = std::memchr(text.data() + pos, '\n', text.size() - pos);
    const size_t end =
        nl ? static_cast<size_t>(static_cast<const char*>(nl) - text.data()) : text.size();
    if (SkipSpace(text, pos) < end) {
      if (++count <= limits.max_batch_events) lines.push_back({pos, end});
    }
    pos = end + 1;
  }
  if (count == 0) {
    decoder.errors().AddInput("empty input");
    return result;
  }
  if (count > limits.max_batch_events) {
    decoder.errors().AddInput(
        fmt::format("batch of {} events exceeds the limit of {}", count, limits.max_batch_events));
    return result;
  }

  result.events.reserve(lines.size());
  std::string buffer(text);  // parsed line by line in place
  DomArena arena;
  Document& doc = arena.doc;
  for (size_t index = 0; index < lines.size(); ++index) {
    const std::string_view line = text.substr(0, lines[index].end);
    const size_t start = SkipSpace(line, lines[index].begin);
    const Root root = line[start] == '{' || line[start] == '[' ? Root::kEvent : Root::kOther;
    const ScanResult scan = PreScan(line, start, root, limits.max_depth);
    if (scan.nul_offset != kNpos) {
      decoder.errors().Add(index, "", NulReason(scan.nul_offset));
      continue;
    }
    if (!scan.too_deep.empty()) {
      decoder.ReportTooDeep(scan, index);
      continue;
    }
    arena.Reset();
    if (std::optional<std::string> error =
            ParseInPlace(doc, buffer.data(), start, lines[index].end, scan)) {
      decoder.errors().Add(index, "", std::move(*error));
      continue;
    }
    decoder.DecodeEvent(doc, index);
  }
  decoder.Finish();
  return result;
}

}  // namespace decoder_internal

DecodeResult DecodeEvents(std::string_view json, const DecodeLimits& limits, int64_t now_ms) {
  if (std::optional<DecodeResult> fast = decoder_internal::DecodeEventsFast(json, limits, now_ms)) {
    return std::move(*fast);
  }
  return decoder_internal::DecodeEventsReference(json, limits, now_ms);
}

DecodeResult DecodeNdjson(std::string_view text, const DecodeLimits& limits, int64_t now_ms) {
  if (std::optional<DecodeResult> fast = decoder_internal::DecodeNdjsonFast(text, limits, now_ms)) {
    return std::move(*fast);
  }
  return decoder_internal::DecodeNdjsonReference(text, limits, now_ms);
}

std::string decoder_internal::BodyWithoutGeneratedId(const Event& e) {
  std::string body = e.body;
  if (e.header.event_id_generated) {
    const size_t at = body.find(e.header.event_id);
    if (at != std::string::npos) body.replace(at, e.header.event_id.size(), "ID");
  }
  return body;
}

}  // namespace tailbus
