"""background.md §4: the agent-observability stream, read the way its client does.

ws://HOST/ws/events/{session_id}?filter=<url-encoded JSON>&batch_size=&poll_interval=;
the client reads data['count'] and iterates data['events'] of batch frames,
printing event['event_type'] and event['tool_name']. Also the metrics, status
and sessions endpoints it polls.
"""

import asyncio
import json
import urllib.parse

import websockets

from tailbus_server import Server, check, recv_json, run


async def observe(url, want_events):
    """The §4 client loop: batch frames carry count and events."""
    printed = []
    async with websockets.connect(url) as ws:
        while len(printed) < want_events:
            data = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if data["type"] == "batch":
                check(data["count"] == len(data["events"]), f"count mismatch: {data}")
                check("timestamp" in data, f"batch without timestamp: {data}")
                for event in data["events"]:
                    printed.append(f"{event['event_type']} {event['tool_name']}")
            elif data["type"] == "event":
                printed.append(f"{data['event_type']} {data['tool_name']}")
    return printed


async def test(binary):
    server = Server(binary, "--max-clients-per-session", "50")
    try:
        session = "agent-run-9"
        flt = {"event_types": ["tool_call"], "cost_threshold_tokens": 10}
        url = (f"{server.ws_url}/ws/events/{session}?filter="
               f"{urllib.parse.quote(json.dumps(flt))}&batch_size=10&poll_interval=50&after=0")

        def ev(i, event_type, cost, tool, sid=session):
            return {"event_id": f"e{i}", "agent_id": "planner", "event_type": event_type,
                    "timestamp": "2026-03-01T10:00:00Z", "tool_name": tool,
                    "input_summary": "in", "output_summary": "out", "session_id": sid,
                    "status": "success", "model": "m", "parent_event_id": None,
                    "execution_duration_seconds": 0.25, "cost_tokens": cost, "feature_id": "f"}

        events = [ev(i, "tool_call" if i % 2 else "llm_call", 5 + i, f"tool{i % 3}")
                  for i in range(40)]
        events += [ev(100, "tool_call", 500, "elsewhere", sid="other-session")]
        server.publish(events)
        expected = [f"{e['event_type']} {e['tool_name']}" for e in events
                    if e["session_id"] == session and e["event_type"] == "tool_call"
                    and e["cost_tokens"] > 10]

        # 50 clients per session are supported (their published target).
        clients = [observe(url, len(expected)) for _ in range(50)]
        results = await asyncio.wait_for(asyncio.gather(*clients), 60)
        for printed in results:
            check(printed == expected, f"client printed {printed}, want {expected}")

        # Live: a new matching event reaches a connected client in a batch frame.
        async with websockets.connect(url.replace("&after=0", "")) as ws:
            hello = await recv_json(ws)
            check(hello["type"] == "hello" and hello["session_id"] == session, f"hello: {hello}")
            check(hello["batch_window_ms"] == 50, f"poll_interval alias: {hello}")
            server.publish([ev(200, "tool_call", 99, "live")])
            frame = await recv_json(ws)
            check(frame["type"] == "batch" and frame["count"] == 1, f"live frame: {frame}")
            check(frame["events"][0]["tool_name"] == "live", f"live event: {frame}")

            status, metrics = server.http("GET", "/api/websocket-metrics")
            check(status == 200, f"/api/websocket-metrics: {status}")
            for key in ("active_sessions", "total_connected_clients", "total_events_broadcast",
                        "total_bytes_sent", "sessions"):
                check(key in metrics, f"websocket-metrics lacks {key}: {metrics}")
            per = metrics["sessions"].get(session)
            check(per is not None, f"no per-session metrics: {metrics}")
            for key in ("connected_clients", "total_events_sent", "total_bytes_sent",
                        "uptime_seconds"):
                check(key in per, f"session metrics lack {key}: {per}")
            check(per["connected_clients"] == 1, f"connected_clients: {per}")

        status, st = server.http("GET", "/api/status")
        check(status == 200 and st["head"] == 42, f"/api/status: {status} {st}")
        status, sessions = server.http("GET", "/api/sessions")
        check(status == 200 and {s["session_id"] for s in sessions["sessions"]} ==
              {session, "other-session"}, f"/api/sessions: {sessions}")
        status, page = server.http("GET", f"/api/sessions/{session}/events?limit=5")
        check(status == 200 and len(page["events"]) == 5 and page["has_more"],
              f"/api/sessions/{{id}}/events: {page}")
    finally:
        server.stop()


if __name__ == "__main__":
    run(test)
