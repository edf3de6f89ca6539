"""Run one cell in a kernel of a notebook server, as JupyterLab does: REST to start the kernel, then an
execute_request over the kernel's websocket. What a researcher's own code can do, it does this way.

    out = run_cell(server_url, http, "python3", "print(1)")   # http: a requests.Session that reaches it
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import requests


async def _execute(server_url: str, http: requests.Session, kernel: str, code: str, xsrf: str | None) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    headers = {"X-XSRFToken": xsrf} if xsrf else {}
    started = http.post(server_url + "/api/kernels", json={"name": kernel}, headers=headers, timeout=60)
    assert started.status_code == 201, (started.status_code, started.text[:500])
    kernel_id = started.json()["id"]
    ws_url = server_url.replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels"
    if xsrf:
        ws_url += f"?_xsrf={xsrf}"
    ws_headers = {k: v for k, v in http.headers.items() if k == "Authorization"}
    cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
    if cookies:
        ws_headers["Cookie"] = cookies
    conn = await websocket_connect(HTTPRequest(ws_url, headers=ws_headers, connect_timeout=30))
    msg_id = uuid.uuid4().hex
    conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                   "session": uuid.uuid4().hex, "date": "", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }))
    output, idle = [], False
    deadline = time.monotonic() + 240  # a kernel starts slowly on a busy 2-core machine
    try:
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(conn.read_message(), timeout=deadline - time.monotonic())
            assert raw is not None, "kernel websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                output.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                output.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                output.append("ERROR " + content["ename"] + ": " + content["evalue"])
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
                break
    finally:
        conn.close()
        http.delete(server_url + f"/api/kernels/{kernel_id}", headers=headers, timeout=60)
    assert idle, f"{kernel} kernel did not finish the cell in time; output so far: {''.join(output)!r}"
    return "".join(output)


def run_cell(server_url: str, http: requests.Session, kernel: str, code: str, xsrf: str | None = None) -> str:
    """The cell's output (stream, results, `ERROR name: value`)."""
    return asyncio.run(_execute(server_url, http, kernel, code, xsrf))
