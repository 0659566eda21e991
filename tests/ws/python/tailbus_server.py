"""Shared helpers for the Python compatibility tests (tests/ws/python/test_*.py).

Starts the real `tailbus serve` on an ephemeral loopback port over a temporary
database, reads the bound port from its start-up line, and stops it with
SIGTERM. Every wait is bounded; a failure prints one clear line and exits 1.
Run with Debian's interpreter: /usr/bin/python3 test_x.py /path/to/tailbus
"""

import asyncio
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

TEST_TIMEOUT_S = 90
_servers = []  # killed at exit if a failure left them running


@atexit.register
def _kill_servers():
    for proc in _servers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


class Server:
    """`tailbus serve --listen 127.0.0.1:0` in a temporary directory."""

    def __init__(self, binary, *extra_args, db=None, ssl_context=None):
        self.dir = tempfile.mkdtemp(prefix="tailbus-py-")
        self.db = db or os.path.join(self.dir, "t.db")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stderr = open(self.stderr_path, "w+")
        self.proc = subprocess.Popen(
            [binary, "serve", "--db", self.db,
             "--listen", "127.0.0.1:0", *extra_args],
            stdout=subprocess.DEVNULL, stderr=self.stderr)
        _servers.append(self.proc)
        deadline = time.monotonic() + 30
        self.port = None
        self.ssl_context = ssl_context  # for https:// (--tls-cert)
        scheme = "http"
        while time.monotonic() < deadline and self.port is None:
            if self.proc.poll() is not None:
                fail(f"tailbus serve exited with {self.proc.returncode}: {self.log()}")
            match = re.search(r"serving (https?)://127\.0\.0\.1:(\d+)", self.log())
            if match:
                scheme, self.port = match.group(1), int(match.group(2))
            else:
                time.sleep(0.05)
        check(self.port is not None, f"no start-up line within 30 s: {self.log()}")
        self.http_url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if scheme == 'https' else 'ws'}://127.0.0.1:{self.port}"

    def log(self):
        with open(self.stderr_path) as f:
            return f.read()

    def http(self, method, path, body=None, content_type="application/json"):
        """(status, parsed JSON or text) of one request."""
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        req = urllib.request.Request(self.http_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=20, context=self.ssl_context) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def publish(self, events):
        status, body = self.http("POST", "/api/events", events)
        check(status == 200, f"POST /api/events answered {status}: {body}")
        return body["offsets"]

    def stop(self, expect_clean=True):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail("tailbus serve did not stop within 30 s of SIGTERM")
        if expect_clean:
            check(self.proc.returncode == 0,
                  f"tailbus serve exited with {self.proc.returncode}: {self.log()}")
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


async def recv_json(ws, timeout=10):
    """The next text message as JSON (bounded)."""
    try:
        message = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        fail(f"no message within {timeout} s")
    try:
        return json.loads(message)
    except ValueError:
        fail(f"not JSON: {message!r}")


async def recv_type(ws, wanted, timeout=10):
    """Skips messages until one of type `wanted` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"no {wanted!r} message within {timeout} s")
        message = await recv_json(ws, left)
        if message.get("type") == wanted:
            return message


def run(test):
    """Runs `test(binary)` (a coroutine function) under an overall time bound."""
    if len(sys.argv) != 2:
        fail(f"usage: {sys.argv[0]} /path/to/tailbus")
    signal.signal(signal.SIGALRM, lambda *_: fail(f"test exceeded {TEST_TIMEOUT_S} s"))
    signal.alarm(TEST_TIMEOUT_S)
    try:
        import websockets  # noqa: F401  (Debian's python3-websockets)
    except ImportError:
        fail("python3-websockets is not installed (apt-get install python3-websockets)")
    try:
        asyncio.run(test(sys.argv[1]))
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001 - report any crash as a failure
        traceback.print_exc()
        fail("unexpected exception")
    print("PASS", flush=True)
