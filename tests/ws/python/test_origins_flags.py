"""--allowed-origins and its alias --cors-origins (and their environment
variables) through the real binary: both the CORS answer and the WebSocket
upgrade follow the list; a refused upgrade closes with 4003.
"""

import asyncio
import os
import urllib.error
import urllib.request

import websockets

from tailbus_server import Server, check, recv_type, run


def preflight_origin(server, origin):
    req = urllib.request.Request(server.http_url + "/api/events", method="OPTIONS",
                                 headers={"Origin": origin,
                                          "Access-Control-Request-Method": "POST"})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError as e:
        return e.headers.get("Access-Control-Allow-Origin")


async def check_server(server, what):
    check(preflight_origin(server, "https://good.example") == "https://good.example",
          f"{what}: allowed origin not echoed")
    check(preflight_origin(server, "https://evil.example") is None,
          f"{what}: a refused origin got Access-Control-Allow-Origin")
    async with websockets.connect(f"{server.ws_url}/ws",
                                  origin="https://good.example") as ws:
        await recv_type(ws, "hello")
    async with websockets.connect(f"{server.ws_url}/ws",
                                  origin="https://evil.example") as ws:
        err = await recv_type(ws, "error")
        check(err["code"] == "origin_not_allowed", f"{what}: {err}")
        try:
            await asyncio.wait_for(ws.recv(), 10)
            check(False, f"{what}: expected a close")
        except websockets.ConnectionClosed as closed:
            check(closed.code == 4003, f"{what}: closed with {closed.code}")


async def test(binary):
    for args, env, what in [
        (["--allowed-origins", "https://good.example"], None, "--allowed-origins"),
        (["--cors-origins", "https://good.example"], None, "--cors-origins (alias)"),
        ([], {"TAILBUS_ALLOWED_ORIGINS": "https://good.example"}, "TAILBUS_ALLOWED_ORIGINS"),
        ([], {"TAILBUS_CORS_ORIGINS": "https://good.example"}, "TAILBUS_CORS_ORIGINS"),
    ]:
        saved = dict(os.environ)
        if env:
            os.environ.update(env)
        try:
            server = Server(binary, *args)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        try:
            await check_server(server, what)
        finally:
            server.stop()


run(test)
