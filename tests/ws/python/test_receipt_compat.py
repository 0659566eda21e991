"""background.md §2: a document pipeline streaming its progress.

ws://HOST/ws/receipt/{receipt_id}: a `connected` frame on connect, the text
`ping` answered with `pong`, then the job's events as JSON objects carrying
event_id, event_type, timestamp and the job's fields. Prometheus /metrics.
"""

import asyncio
import json

import websockets

from tailbus_server import Server, check, recv_json, recv_type, run


async def test(binary):
    server = Server(binary)
    try:
        async with websockets.connect(f"{server.ws_url}/ws/receipt/rcpt-42") as ws:
            hello = await recv_json(ws)
            check(hello["type"] == "hello", f"first frame: {hello}")
            connected = await recv_json(ws)
            check(connected["type"] == "connected", f"expected connected, got {connected}")
            check(connected["receipt_id"] == "rcpt-42", f"connected: {connected}")

            await ws.send("ping")
            pong = await asyncio.wait_for(ws.recv(), 10)
            check(pong == "pong", f"expected the text pong, got {pong!r}")

            job = [
                {"session_id": "rcpt-42", "event_type": "processing_started", "job_id": "j1"},
                {"session_id": "rcpt-42", "event_type": "tool_progress", "tool_name": "ocr",
                 "status": "running", "progress": 40, "message": "page 2 of 5"},
                {"session_id": "other", "event_type": "tool_progress", "progress": 99},
                {"session_id": "rcpt-42", "event_type": "line_item_found",
                 "metadata": {"sku": "A-1", "qty": 3}},
                {"session_id": "rcpt-42", "event_type": "processing_completed",
                 "duration_ms": 1234},
            ]
            server.publish(job)
            expected = [e for e in job if e["session_id"] == "rcpt-42"]
            for want in expected:
                got = await recv_json(ws)
                check(got["event_type"] == want["event_type"], f"got {got}, want {want}")
                check(got.get("event_id") and got.get("timestamp"), f"missing id/time: {got}")
                for key, value in want.items():
                    check(got.get(key) == value, f"{key}: got {got.get(key)!r}, want {value!r}")

            # The text ping still works mid-stream.
            await ws.send("ping")
            check(await asyncio.wait_for(ws.recv(), 10) == "pong", "second pong")

        status, metrics = server.http("GET", "/metrics")
        check(status == 200, f"/metrics answered {status}")
        for series in ("tailbus_appended_events_total 5", "tailbus_delivered_events_total",
                       "# TYPE tailbus_commit_latency_seconds histogram",
                       "# TYPE tailbus_connections gauge"):
            check(series in metrics, f"/metrics lacks {series!r}")
    finally:
        server.stop()


if __name__ == "__main__":
    run(test)
