#include "ws/ws_frame.h"

namespace tailbus::ws {

size_t EncodeFrameHeader(uint8_t opcode, uint64_t payload_len, bool masked,
                         uint8_t out[kMaxFrameHeaderBytes]) {
  const uint8_t mask_bit = masked ? 0x80 : 0;
  size_t n = 0;
  out[n++] = static_cast<uint8_t>(0x80 | opcode);  // FIN
  if (payload_len < 126) {
    out[n++] = static_cast<uint8_t>(mask_bit | payload_len);
  } else if (payload_len <= 0xffff) {
    out[n++] = mask_bit | 126;
    out[n++] = static_cast<uint8_t>(payload_len >> 8);
    out[n++] = static_cast<uint8_t>(payload_len);
  } else {
    out[n++] = mask_bit | 127;
    for (int i = 7; i >= 0; --i) out[n++] = static_cast<uint8_t>(payload_len >> (i * 8));
  }
  return n;
}

void AppendServerTextFrame(std::string& out, std::string_view payload) {
  uint8_t header[kMaxFrameHeaderBytes];
  const size_t n = EncodeFrameHeader(kOpText, payload.size(), false, header);
  out.append(reinterpret_cast<const char*>(header), n);
  out.append(payload);
}

}  // namespace tailbus::ws
