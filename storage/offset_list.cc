#include "storage/offset_list.h"

namespace tailbus::sqlite {

void EncodeOffsetList(std::span<const int64_t> offsets, std::string& out) {
  for (size_t i = 1; i < offsets.size(); ++i) {
    uint64_t delta = static_cast<uint64_t>(offsets[i] - offsets[i - 1]);
    while (delta >= 0x80) {
      out.push_back(static_cast<char>((delta & 0x7f) | 0x80));
      delta >>= 7;
    }
    out.push_back(static_cast<char>(delta));
  }
}

bool DecodeOffsetList(int64_t first_offset, int64_t last_offset, std::string_view blob,
                      int64_t after, int64_t through, size_t max, std::vector<int64_t>& out) {
  // Invariant: `offset` is the last decoded offset; every offset kept is in
  // (after, through], and decoding stops once past `through` or `max` kept.
  int64_t offset = first_offset;
  size_t kept = 0;
  auto keep = [&] {
    if (offset > after) {
      out.push_back(offset);
      ++kept;
    }
  };
  if (first_offset > last_offset) return false;
  if (offset > through) return true;
  keep();
  size_t i = 0;
  while (i < blob.size() && kept < max) {
    uint64_t delta = 0;
    int shift = 0;
    while (true) {
      if (i >= blob.size() || shift > 56) return false;
      const auto byte = static_cast<uint8_t>(blob[i++]);
      delta |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
      shift += 7;
    }
    if (delta == 0 || delta > static_cast<uint64_t>(last_offset - offset)) return false;
    offset += static_cast<int64_t>(delta);
    if (offset > through) return true;
    keep();
  }
  // Stopped at `max`, or read every distance: then the last must be last_offset.
  return kept >= max || offset == last_offset;
}

}  // namespace tailbus::sqlite
