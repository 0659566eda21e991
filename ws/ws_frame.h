// RFC 6455 frame headers, for the few places that write WebSocket frames
// themselves instead of through lws_write's framing: our client (which masks
// its own frames) and the server's coalesced control messages (several frames
// in one write). Pure functions, no libwebsockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tailbus::ws {

inline constexpr uint8_t kOpText = 0x1;
inline constexpr size_t kMaxFrameHeaderBytes = 10;  // without the 4-byte mask

// Writes the header of a final (FIN) frame of `opcode` carrying `payload_len`
// bytes into `out` and returns its length (2, 4 or 10 bytes). `masked` sets
// the MASK bit; the caller appends the 4-byte key itself.
size_t EncodeFrameHeader(uint8_t opcode, uint64_t payload_len, bool masked,
                         uint8_t out[kMaxFrameHeaderBytes]);

// Appends an unmasked (server-to-client) final text frame holding `payload`.
void AppendServerTextFrame(std::string& out, std::string_view payload);

}  // namespace tailbus::ws
