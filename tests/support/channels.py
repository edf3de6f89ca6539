"""Copy data out of a running notebook server as fast as each browser channel allows, as a hostile
researcher would: what reaches the client in `seconds` is counted (payload bytes: HTTP bodies,
websocket messages). Used by the host-guard attack tests and by `python -m bench guard`.

    server, xsrf = open_server(hub, http, user, slug)
    got = contents_api(server, http, xsrf, ["piece0.bin", "piece1.bin"], seconds=15)
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import requests

CHUNK = 64 * 1024


def open_server(hub, http: requests.Session, user, slug: str) -> tuple[str, str]:
    """The server's URL and its XSRF token, after the server's own OAuth login for this session."""
    server = f"{hub.url}/user/{user.username}/{slug}"
    lab = http.get(f"{server}/lab", timeout=120)
    assert lab.status_code == 200 and lab.url.startswith(server), (lab.status_code, lab.url)
    return server, http.cookies.get("_xsrf", path=f"/user/{user.username}/{slug}/")


def _ws_headers(http: requests.Session) -> dict:
    cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    return {"Cookie": cookies} if cookies else {}


def contents_api(server: str, http: requests.Session, xsrf: str, names: list[str], seconds: float) -> int:
    """GET /api/contents/<piece>?format=base64 in a loop over pieces under the size limit."""
    deadline, got, i = time.monotonic() + seconds, 0, 0
    while time.monotonic() < deadline:
        name = names[i % len(names)]
        i += 1
        try:
            with http.get(f"{server}/api/contents/{name}", params={"content": 1, "format": "base64", "type": "file"},
                          headers={"X-XSRFToken": xsrf}, stream=True,
                          timeout=max(1.0, deadline - time.monotonic())) as r:
                for chunk in r.iter_content(CHUNK):
                    got += len(chunk)
                    if time.monotonic() >= deadline:
                        break
        except requests.RequestException:
            break  # the read timed out at the deadline, or the server is gone
    return got


async def _kernel_ws(server: str, http: requests.Session, xsrf: str):
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    started = http.post(server + "/api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf}, timeout=60)
    assert started.status_code == 201, (started.status_code, started.text[:300])
    kernel = f"{server}/api/kernels/{started.json()['id']}"
    url = kernel.replace("http://", "ws://") + f"/channels?_xsrf={xsrf}"
    conn = await websocket_connect(HTTPRequest(url, headers=_ws_headers(http), connect_timeout=60),
                                   max_message_size=1 << 30)
    return conn, kernel


def _shut(http: requests.Session, xsrf: str, url: str) -> None:
    """End the kernel or terminal a copy ran in, so it does not go on using the machine."""
    try:
        http.delete(url, headers={"X-XSRFToken": xsrf}, timeout=60)
    except requests.RequestException:
        pass


def _request(code: str, expressions: dict | None = None) -> str:
    return json.dumps({
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "username": "r",
                   "session": uuid.uuid4().hex, "date": "", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": expressions or {}, "allow_stdin": False, "stop_on_error": False},
    })


async def _copy(conn, seconds: float, count, http: requests.Session, xsrf: str, url: str) -> int:
    """What `count` finds in the messages of `seconds`; then the kernel or terminal at `url` ends."""
    try:
        return await _drain(conn, time.monotonic() + seconds, count)
    finally:
        conn.close()
        _shut(http, xsrf, url)


async def _drain(conn, deadline: float, count) -> int:
    got = 0
    while (left := deadline - time.monotonic()) > 0:
        try:
            raw = await asyncio.wait_for(conn.read_message(), timeout=left)
        except asyncio.TimeoutError:
            break
        if raw is None:
            break
        got += count(raw)
    return got


def kernel_shell(server: str, http: requests.Session, xsrf: str, seconds: float, size: int = CHUNK) -> int:
    """Results returned in execute_reply (`user_expressions`), which no iopub rate limit covers."""

    async def go():
        conn, kernel = await _kernel_ws(server, http, xsrf)
        expr = {"d": f"__import__('base64').b64encode(__import__('os').urandom({size})).decode()"}

        def count(raw):
            msg = json.loads(raw)
            if msg.get("msg_type") == "execute_reply":
                conn.write_message(_request("", expr))  # one more as soon as one is back
                return len(raw)
            return 0

        for _ in range(4):  # a few in flight
            conn.write_message(_request("", expr))
        return await _copy(conn, seconds, count, http, xsrf, kernel)

    return asyncio.run(go())


def kernel_output(server: str, http: requests.Session, xsrf: str, seconds: float) -> int:
    """print() in a loop, paced under the server's iopub data rate limit (1 MB/s)."""
    code = ("import os, time, base64\n"
            "while True:\n"
            f"    print(base64.b64encode(os.urandom({3 * CHUNK // 4 // 16})).decode() * 16)\n"
            "    time.sleep(0.07)\n")

    async def go():
        conn, kernel = await _kernel_ws(server, http, xsrf)
        conn.write_message(_request(code))

        def count(raw):
            msg = json.loads(raw)
            return len(msg["content"].get("text", "")) if msg.get("msg_type") == "stream" else 0

        return await _copy(conn, seconds, count, http, xsrf, kernel)

    return asyncio.run(go())


def terminal(server: str, http: requests.Session, xsrf: str, command: str, seconds: float) -> int:
    """A terminal running `command` (e.g. base64 of a file in a loop), read from its websocket."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    made = http.post(server + "/api/terminals", headers={"X-XSRFToken": xsrf}, timeout=60)
    assert made.status_code == 200, (made.status_code, made.text[:300])
    url = server.replace("http://", "ws://") + f"/terminals/websocket/{made.json()['name']}?_xsrf={xsrf}"

    async def go():
        conn = await websocket_connect(HTTPRequest(url, headers=_ws_headers(http), connect_timeout=60),
                                       max_message_size=1 << 30)
        conn.write_message(json.dumps(["stdin", command + "\r"]))

        def count(raw):
            msg = json.loads(raw)
            return len(msg[1]) if msg and msg[0] == "stdout" else 0

        return await _copy(conn, seconds, count, http, xsrf, f"{server}/api/terminals/{made.json()['name']}")

    return asyncio.run(go())
