"""`tailbus serve` end to end: the start-up line, SIGTERM with clients connected
(close code 1001, exit status 0), and a client resuming on a new server over the
same database without a gap.
"""

import asyncio
import json
import re
import signal

import websockets

from tailbus_server import Server, check, fail, recv_json, recv_type, run


async def test(binary):
    server = Server(binary)
    line = server.log().splitlines()[0]
    check(re.match(r"tailbus \d+\.\d+\.\d+ serving http://127\.0\.0\.1:\d+ \(WebSocket "
                   r"ws://127\.0\.0\.1:\d+/ws\) db=\S+ epoch=[0-9a-f]{32} head=0$", line),
          f"start-up line: {line!r}")
    offsets = server.publish([{"session_id": "s", "type": "a"}, {"session_id": "s", "type": "b"}])

    async with websockets.connect(f"{server.ws_url}/ws?after=0") as ws:
        hello = await recv_json(ws)
        epoch = hello["epoch"]
        await recv_type(ws, "caught_up")
        server.proc.send_signal(signal.SIGTERM)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 20)
        except websockets.ConnectionClosed as closed:
            check(closed.code == 1001, f"close code {closed.code}, want 1001")
        except asyncio.TimeoutError:
            fail("no close within 20 s of SIGTERM")
    try:
        server.proc.wait(timeout=30)
    except Exception:  # noqa: BLE001
        fail("tailbus serve did not exit within 30 s of SIGTERM")
    check(server.proc.returncode == 0, f"exit status {server.proc.returncode}: {server.log()}")
    check("shutting down" in server.log(), f"no shutdown message: {server.log()}")

    # A new server on the same database: same epoch, resume without a gap.
    server2 = Server(binary, db=server.db)
    try:
        server2.publish([{"session_id": "s", "type": "c"}])
        async with websockets.connect(
                f"{server2.ws_url}/ws?after={offsets[-1]}&epoch={epoch}") as ws:
            hello = await recv_json(ws)
            check(hello["epoch"] == epoch, f"epoch changed: {hello}")
            frame = await recv_json(ws)
            check(frame["type"] == "batch" and [e["offset"] for e in frame["events"]] == [3],
                  f"resume: {frame}")
    finally:
        server2.stop()
        server.stop()


if __name__ == "__main__":
    run(test)
