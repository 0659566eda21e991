"""background.md §1: agent chat with live telemetry, the way its React app talks.

One WebSocket per tab on /ws?session_id=<id> (no other parameters); the tab
sends {"type":"message",...}; every frame it gets is a JSON object keyed by
`type` (assistant, tool_call, tool_result, openai_call, error, ...). No
cross-session leakage; a reconnecting tab resumes with after=<last offset>.
"""

import asyncio
import json

import websockets

from tailbus_server import Server, check, recv_json, recv_type, run


async def test(binary):
    server = Server(binary)
    try:
        url = f"{server.ws_url}/ws?session_id=chat-1"
        async with websockets.connect(url) as tab_a, websockets.connect(url) as tab_b, \
                websockets.connect(f"{server.ws_url}/ws?session_id=chat-2") as other:
            for ws in (tab_a, tab_b, other):
                hello = await recv_json(ws)
                check(hello["type"] == "hello", f"first frame is not hello: {hello}")
                check(hello["batch_size"] == 1, f"chat tabs need single-event frames: {hello}")

            # The user types a message in tab A; tab B shows it.
            await tab_a.send(json.dumps({"type": "message", "session_id": "chat-1",
                                         "content": "What is the patient's diagnosis?"}))
            shown = await recv_type(tab_b, "message")
            check(shown["content"] == "What is the patient's diagnosis?", f"content: {shown}")
            check(shown["session_id"] == "chat-1", f"session: {shown}")
            ack = await recv_type(tab_a, "ack")
            check(len(ack["offsets"]) == 1, f"ack: {ack}")

            # The agent emits telemetry (fire and forget, over HTTP).
            telemetry = [
                {"session_id": "chat-1", "type": "assistant", "content": "Let me check",
                 "streaming": True},
                {"session_id": "chat-1", "type": "tool_call", "tool_call_id": "c1",
                 "tool_name": "lookup_record", "arguments": {"patient": 7},
                 "timestamp": "2026-01-02T03:04:05Z"},
                {"session_id": "chat-1", "type": "tool_result", "tool_call_id": "c1",
                 "tool_name": "lookup_record", "result": {"dx": "flu"}, "duration_ms": 12.5},
                {"session_id": "chat-1", "type": "openai_call", "model": "gpt-4o",
                 "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                 "duration_ms": 800},
                {"session_id": "chat-1", "type": "error", "error": "rate limited"},
            ]
            offsets = server.publish(telemetry)

            # The tab's reducer: switch on type.
            seen = []
            while len(seen) < len(telemetry):
                frame = await recv_json(tab_b)
                kind = frame["type"]
                if kind == "assistant":
                    check(frame["content"] == "Let me check" and frame["streaming"] is True,
                          f"assistant: {frame}")
                elif kind == "tool_call":
                    check(frame["tool_name"] == "lookup_record" and
                          frame["arguments"] == {"patient": 7} and
                          frame["timestamp"].startswith("2026-01-02T03:04:05"),
                          f"tool_call: {frame}")
                elif kind == "tool_result":
                    check(frame["result"] == {"dx": "flu"} and frame["duration_ms"] == 12.5,
                          f"tool_result: {frame}")
                elif kind == "openai_call":
                    check(frame["total_tokens"] == 120 and frame["model"] == "gpt-4o",
                          f"openai_call: {frame}")
                elif kind == "error":
                    check(frame["error"] == "rate limited", f"error: {frame}")
                else:
                    check(False, f"unexpected frame for the chat tab: {frame}")
                seen.append(kind)
            check(seen == ["assistant", "tool_call", "tool_result", "openai_call", "error"],
                  f"order: {seen}")

            # No leakage: the other session's tab sees its own event first.
            server.publish([{"session_id": "chat-2", "type": "assistant", "content": "mine"}])
            first = await recv_json(other)
            check(first.get("content") == "mine", f"chat-2 received another session's frame: {first}")

        # Tab B reconnects after missing events and resumes from its last offset.
        missed = server.publish([
            {"session_id": "chat-1", "type": "assistant", "content": "while away"},
            {"session_id": "chat-2", "type": "assistant", "content": "not yours"},
            {"session_id": "chat-1", "type": "assistant", "content": "still away"},
        ])
        async with websockets.connect(f"{url}&after={offsets[-1]}") as tab_b:
            await recv_type(tab_b, "hello")
            got = [await recv_json(tab_b), await recv_json(tab_b)]
            check([g.get("content") for g in got] == ["while away", "still away"],
                  f"resume delivered {got}")
            check([g["offset"] for g in got] == [missed[0], missed[2]], f"offsets {got}")
            caught_up = await recv_json(tab_b)
            check(caught_up["type"] == "caught_up", f"expected caught_up, got {caught_up}")
    finally:
        server.stop()


if __name__ == "__main__":
    run(test)
