"""A producer that pipelines publishes over one WebSocket, the way an agent
backend streams telemetry without waiting for each ack.

The server answers acks that complete together in one write of several
frames (ws/ws_subscription.cc, WriteControl). Python's websockets parses every
frame strictly: each ack must arrive as its own well-formed message, in
request order, with offsets that match the log.
"""

import asyncio
import json

import websockets

from tailbus_server import Server, check, recv_json, run

N = 400


async def test(binary):
    server = Server(binary)
    try:
        async with websockets.connect(f"{server.ws_url}/ws?batch_size=1") as ws:
            hello = await recv_json(ws)
            check(hello["type"] == "hello", f"first frame is not hello: {hello}")
            for i in range(N):
                event = {"session_id": f"p{i % 7}", "type": "tool_call", "seq": i,
                         "tool_name": "search", "payload": "x" * (i % 300)}
                await ws.send(json.dumps({"type": "publish", "request_id": i, "event": event}))
            acks, events = [], {}
            while len(acks) < N or len(events) < N:
                frame = await recv_json(ws)
                if "event_type" in frame:  # an event frame (its own `type` wins)
                    events[frame["offset"]] = frame
                elif frame["type"] == "ack":
                    acks.append(frame)
                else:
                    check(False, f"unexpected frame: {frame}")
            check([a["request_id"] for a in acks] == list(range(N)),
                  "acks out of request order")
            offsets = [a["offsets"][0] for a in acks]
            check(offsets == list(range(offsets[0], offsets[0] + N)),
                  f"acked offsets not contiguous: {offsets[:5]}...")
            for i, offset in enumerate(offsets):
                check(events[offset]["seq"] == i, f"offset {offset} holds {events[offset]}")
            # The connection still serves a request after the burst.
            await ws.send(json.dumps({"type": "ping"}))
            check((await recv_json(ws))["type"] == "pong", "no pong after the burst")
    finally:
        server.stop()


if __name__ == "__main__":
    run(test)
