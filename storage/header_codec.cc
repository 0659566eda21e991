#include "storage/header_codec.h"

#include <bit>
#include <cstring>

namespace tailbus::sqlite {

namespace {

constexpr uint8_t kHasCost = 1;
constexpr uint8_t kHasDuration = 2;

char* PutFixed64(uint64_t v, char* p) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return p + 8;
}

char* PutString(std::string_view s, char* p) {
  uint64_t v = s.size();
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

uint64_t GetFixed64(const uint8_t* p) {
  if constexpr (std::endian::native == std::endian::little) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

bool GetString(const uint8_t*& p, const uint8_t* end, std::string_view& out) {
  uint64_t n = 0;
  int shift = 0;
  // Fast path: field strings are short, so their length is one byte.
  if (p != end && *p < 0x80 && static_cast<uint64_t>(end - p - 1) >= *p) {
    n = *p++;
    out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    return true;
  }
  while (true) {
    if (p == end || shift > 28) return false;
    const uint8_t b = *p++;
    n |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) break;
    shift += 7;
  }
  if (n > static_cast<uint64_t>(end - p)) return false;
  out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  p += n;
  return true;
}

}  // namespace

void EncodeHeader(const EventHeader& h, std::string& out) {
  const std::string_view strings[] = {h.event_type, h.event_id, h.agent_id,   h.tool_name,
                                      h.status,     h.model,    h.feature_id, h.parent_event_id};
  size_t bound = 1 + 3 * 8;
  for (std::string_view s : strings) bound += s.size() + 10;  // LEB128 of size_t <= 10 bytes
  const size_t start = out.size();
  out.resize(start + bound);
  char* p = out.data() + start;
  *p++ = static_cast<char>((h.cost_tokens ? kHasCost : 0) | (h.duration_ms ? kHasDuration : 0));
  p = PutFixed64(static_cast<uint64_t>(h.timestamp_ms), p);
  if (h.cost_tokens) p = PutFixed64(static_cast<uint64_t>(*h.cost_tokens), p);
  if (h.duration_ms) {
    uint64_t bits;
    std::memcpy(&bits, &*h.duration_ms, sizeof bits);
    p = PutFixed64(bits, p);
  }
  for (std::string_view s : strings) p = PutString(s, p);
  out.resize(static_cast<size_t>(p - out.data()));
}

bool DecodeHeader(const void* data, size_t size, HeaderView& out) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  const uint8_t* end = p + size;
  if (size < 9) return false;
  const uint8_t flags = *p++;
  if ((flags & ~(kHasCost | kHasDuration)) != 0) return false;
  out.timestamp_ms = static_cast<int64_t>(GetFixed64(p));
  p += 8;
  out.cost_tokens.reset();
  out.duration_ms.reset();
  if (flags & kHasCost) {
    if (end - p < 8) return false;
    out.cost_tokens = static_cast<int64_t>(GetFixed64(p));
    p += 8;
  }
  if (flags & kHasDuration) {
    if (end - p < 8) return false;
    const uint64_t bits = GetFixed64(p);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    out.duration_ms = d;
    p += 8;
  }
  return GetString(p, end, out.event_type) && GetString(p, end, out.event_id) &&
         GetString(p, end, out.agent_id) && GetString(p, end, out.tool_name) &&
         GetString(p, end, out.status) && GetString(p, end, out.model) &&
         GetString(p, end, out.feature_id) && GetString(p, end, out.parent_event_id) && p == end;
}

}  // namespace tailbus::sqlite
