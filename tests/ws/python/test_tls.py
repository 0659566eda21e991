"""`tailbus serve --tls-cert/--tls-key`: HTTPS and WSS on one port, checked by
clients that VERIFY the server against a self-signed certificate made here
with the openssl CLI: GET and POST over HTTPS, WSS subscribe + publish + resume
without gap, a client without the CA refused, a plain-HTTP request to the TLS
port failing cleanly while the server keeps serving, and bad TLS flags
refusing to start with one line naming the problem.
"""

import asyncio
import atexit
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request

import websockets

from tailbus_server import Server, check, fail, recv_json, recv_type, run


def make_cert(directory):
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    result = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key, "-out", cert],
        capture_output=True, text=True, timeout=60)
    check(result.returncode == 0, f"openssl req failed: {result.stderr}")
    return cert, key


def refuses_to_start(binary, directory, *args):
    """(exit status, stderr) of a `tailbus serve` that must not start."""
    proc = subprocess.run(
        [binary, "serve", "--db", os.path.join(directory, "never.db"),
         "--listen", "127.0.0.1:0", *args],
        capture_output=True, text=True, timeout=30)
    check(proc.returncode != 0, f"tailbus serve {args} started: {proc.stderr}")
    return proc.returncode, proc.stderr.strip()


async def test(binary):
    directory = tempfile.mkdtemp(prefix="tailbus-tls-")
    atexit.register(shutil.rmtree, directory, True)
    cert, key = make_cert(directory)
    ctx = ssl.create_default_context(cafile=cert)  # verifies the chain and the host (127.0.0.1)
    server = Server(binary, "--tls-cert", cert, "--tls-key", key, ssl_context=ctx)
    try:
        line = server.log().splitlines()[0]
        check(f"serving https://127.0.0.1:{server.port} (WebSocket wss://127.0.0.1:" in line,
              f"start-up line: {line!r}")

        # HTTPS GET and POST with verification.
        status, body = server.http("GET", "/api/status")
        check(status == 200 and body["tls"] is True, f"GET /api/status: {status} {body}")
        offsets = server.publish([{"session_id": "s", "type": "a"},
                                  {"session_id": "s", "type": "b"}])
        check(offsets == [1, 2], f"offsets {offsets}")

        # A client that does not trust the certificate is refused.
        try:
            urllib.request.urlopen(server.http_url + "/api/status", timeout=20,
                                   context=ssl.create_default_context())
            fail("an unverified certificate was accepted")
        except urllib.error.URLError as e:
            check(isinstance(e.reason, ssl.SSLCertVerificationError), f"unexpected error {e!r}")

        # WSS: subscribe from the start, publish on the same socket, see it live.
        async with websockets.connect(f"{server.ws_url}/ws?after=0", ssl=ctx) as ws:
            hello = await recv_json(ws)
            check(hello["type"] == "hello", f"hello: {hello}")
            epoch = hello["epoch"]
            seen = []
            while len(seen) < 2:
                frame = await recv_json(ws)
                seen += [e["offset"] for e in frame.get("events", [])]
            check(seen == [1, 2], f"history over WSS: {seen}")
            await ws.send('{"type":"publish","request_id":7,'
                          '"event":{"session_id":"s","type":"c"}}')
            # The ack and the live batch may come in either order.
            ack, live = None, []
            while ack is None or not live:
                frame = await recv_json(ws)
                if frame.get("type") == "ack":
                    ack = frame
                live += [e["offset"] for e in frame.get("events", [])]
            check(ack["request_id"] == 7 and ack["offsets"] == [3], f"ack: {ack}")
            check(live == [3], f"live over WSS: {live}")

        # Resume over WSS: no gap, no duplicate.
        server.publish([{"session_id": "s", "type": "d"}])
        async with websockets.connect(f"{server.ws_url}/ws?after=3&epoch={epoch}",
                                      ssl=ctx) as ws:
            await recv_type(ws, "hello")
            frame = await recv_json(ws)
            check([e["offset"] for e in frame["events"]] == [4], f"resume: {frame}")

        # The CLI: `tailbus publish --url https://… --ca-file` verifies and publishes;
        # without the CA it refuses the self-signed server and appends nothing.
        published = subprocess.run(
            [binary, "publish", "--url", server.http_url, "--ca-file", cert,
             "--session", "s", "--type", "cli"], capture_output=True, text=True, timeout=60)
        check(published.returncode == 0 and published.stdout.strip() == "5",
              f"publish --ca-file: {published.returncode} {published.stdout!r} {published.stderr!r}")
        untrusted = subprocess.run(
            [binary, "publish", "--url", server.http_url, "--session", "s", "--type", "x"],
            capture_output=True, text=True, timeout=60)
        check(untrusted.returncode == 1 and "cannot publish" in untrusted.stderr,
              f"publish without CA: {untrusted.returncode} {untrusted.stderr!r}")
        tail = subprocess.run([binary, "tail", "--url", server.ws_url], capture_output=True,
                              text=True, timeout=60)
        check(tail.returncode == 2 and "not supported" in tail.stderr,
              f"tail over wss: {tail.returncode} {tail.stderr!r}")
        status, body = server.http("GET", "/api/status")
        check(body["head"] == 5, f"head after the CLI: {body}")

        # Plain HTTP on the TLS port: no HTTP answer, the connection just ends.
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as raw:
            raw.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = b""
            try:
                while True:
                    chunk = raw.recv(4096)
                    if not chunk:
                        break
                    received += chunk
            except ConnectionResetError:
                pass
            check(not received.startswith(b"HTTP/"), f"plain HTTP got an answer: {received!r}")
        # ... and the server is still up for TLS clients.
        status, body = server.http("GET", "/api/status")
        check(status == 200 and body["head"] == 5, f"after plain HTTP: {status} {body}")
        check(server.proc.poll() is None, "the server exited")
    finally:
        server.stop()

    # Bad flags: refuse to start with one line naming the problem.
    code, err = refuses_to_start(binary, directory, "--tls-cert", cert)
    check(len(err.splitlines()) == 1 and "--tls-key" in err, f"cert without key: {err!r}")
    missing = os.path.join(directory, "missing.pem")
    code, err = refuses_to_start(binary, directory, "--tls-cert", missing, "--tls-key", key)
    check(len(err.splitlines()) == 1 and missing in err, f"missing cert: {err!r}")
    garbage = os.path.join(directory, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("garbage\n")
    code, err = refuses_to_start(binary, directory, "--tls-cert", cert, "--tls-key", garbage)
    check(len(err.splitlines()) == 1 and garbage in err and "private key" in err,
          f"garbage key: {err!r}")


if __name__ == "__main__":
    run(test)
