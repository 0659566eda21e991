"""Access control with Debian's python3-websockets: a server started with
--auth-secret-file, tokens minted by `tailbus token`, passed as ?token= and as
an `Authorization: Bearer` header on the WebSocket upgrade; a missing token
closes with 4401, a token for another session with 4403; HTTP answers 401/403
with WWW-Authenticate.
"""

import asyncio
import atexit
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

import websockets

from tailbus_server import Server, check, recv_type, run


def mint(binary, secret_file, sessions, scope):
    out = subprocess.run(
        [binary, "token", "--secret-file", secret_file, "--sub", "py", "--sessions", sessions,
         "--scope", scope, "--ttl", "10m"],
        capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, f"tailbus token failed: {out.stderr}")
    return out.stdout.strip()


def http(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


async def expect_close(uri, code, **kwargs):
    async with websockets.connect(uri, **kwargs) as ws:
        err = await recv_type(ws, "error")
        check(err["code"] == ("unauthorized" if code == 4401 else "forbidden"),
              f"{uri}: error frame {err}")
        try:
            await asyncio.wait_for(ws.recv(), 10)
            check(False, f"{uri}: expected a close")
        except websockets.ConnectionClosed as closed:
            check(closed.code == code, f"{uri}: closed with {closed.code}, expected {code}")


async def test(binary):
    secret_dir = tempfile.mkdtemp(prefix="tailbus-py-secret-")
    atexit.register(shutil.rmtree, secret_dir, True)
    secret_file = os.path.join(secret_dir, "secret")
    with open(secret_file, "w") as f:
        f.write("python-auth-secret-0123456789abcdefghij\n")
    os.chmod(secret_file, 0o600)
    server = Server(binary, "--auth-secret-file", secret_file)
    try:
        writer = mint(binary, secret_file, "chat-1", "publish,subscribe")
        reader_all = mint(binary, secret_file, "*", "subscribe")

        # HTTP: the status page is public, the rest needs the token.
        status, _, _ = http(server.http_url + "/api/status")
        check(status == 200, f"/api/status: {status}")
        status, headers, body = http(server.http_url + "/api/sessions")
        check(status == 401, f"/api/sessions without a token: {status} {body}")
        check(headers.get("WWW-Authenticate", "").startswith("Bearer"), f"headers: {dict(headers)}")
        check(json.loads(body)["code"] == "unauthorized", body)
        status, _, body = http(server.http_url + "/api/sessions",
                               headers={"Authorization": f"Bearer {writer}"})
        check(status == 403 and json.loads(body)["code"] == "forbidden", f"{status} {body}")
        event = json.dumps({"session_id": "chat-1", "event_type": "note"}).encode()
        status, _, body = http(server.http_url + "/api/events", "POST", event,
                               {"Authorization": f"Bearer {writer}",
                                "Content-Type": "application/json"})
        check(status == 200, f"POST with the writer token: {status} {body}")

        # WebSocket with ?token= (what browsers do).
        async with websockets.connect(
                f"{server.ws_url}/ws?session_id=chat-1&after=0&token={writer}") as ws:
            await recv_type(ws, "hello")
            first = await recv_type(ws, "event")
            check(first["session_id"] == "chat-1", f"event: {first}")
            # A chat message is published with the same token (§1 clients).
            await ws.send(json.dumps({"type": "message", "content": "hi"}))
            echo = await recv_type(ws, "message")
            check(echo["content"] == "hi", f"echo: {echo}")

        # WebSocket with an Authorization header (server-side clients).
        async with websockets.connect(
                f"{server.ws_url}/ws?after=0",
                extra_headers={"Authorization": f"Bearer {reader_all}"}) as ws:
            await recv_type(ws, "hello")
            seen = await recv_type(ws, "batch")
            check(len(seen["events"]) >= 1, f"batch: {seen}")
            # Publishing needs the publish scope: refused, the connection stays.
            await ws.send(json.dumps({"type": "publish", "request_id": "r1",
                                      "event": {"session_id": "chat-1", "event_type": "x"}}))
            err = await recv_type(ws, "error")
            check(err["code"] == "forbidden" and err["request_id"] == "r1", f"error: {err}")

        await expect_close(f"{server.ws_url}/ws/events/chat-1", 4401)
        await expect_close(f"{server.ws_url}/ws/events/chat-1?token=not.a.token", 4401)
        await expect_close(f"{server.ws_url}/ws/events/chat-2?token={writer}", 4403)
        await expect_close(f"{server.ws_url}/ws/events/chat-2", 4403,
                           extra_headers={"Authorization": f"Bearer {writer}"})
        check(writer not in server.log(), "the token must never be logged")
    finally:
        server.stop()
        shutil.rmtree(secret_dir, ignore_errors=True)


run(test)
