#!/usr/bin/python3
"""Pipelined single-event WebSocket publisher, for instruction counts of the
publish path (bench/callgrind_ws_publish.sh): N publishes of one ~300-byte
event each over SESSIONS sessions, WINDOW in flight; exits non-zero on any
frame other than hello or ack (a rejected publish must not pass unseen).

usage: ws_publisher.py URL N [SESSIONS] [WINDOW]
"""
import asyncio
import json
import sys

import websockets  # Debian python3-websockets


async def publish(url, n, sessions, window):
    pad = "x" * 200
    async with websockets.connect(url, max_size=None) as ws:
        hello = json.loads(await ws.recv())
        if hello.get("type") != "hello":
            sys.exit(f"expected hello, got {hello}")
        sent = acked = 0
        freed = asyncio.Event()

        async def read_acks():
            nonlocal acked
            while acked < n:
                frame = json.loads(await ws.recv())
                if frame.get("type") != "ack":
                    sys.exit(f"publish {acked} not acked: {frame}")
                acked += 1
                freed.set()

        reader = asyncio.create_task(read_acks())
        while sent < n:
            while sent - acked < window and sent < n:
                event = {"session_id": f"s{sent % sessions}", "type": "tool_call",
                         "tool_name": "search", "status": "ok", "pad": pad}
                await ws.send(json.dumps({"type": "publish", "request_id": sent, "event": event}))
                sent += 1
            freed.clear()
            if sent < n:
                await freed.wait()
        await reader


def main():
    url, n = sys.argv[1], int(sys.argv[2])
    sessions = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    window = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    asyncio.run(publish(url, n, sessions, window))


if __name__ == "__main__":
    main()
