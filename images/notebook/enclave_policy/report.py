"""Tell the hub about a refusal, so it reaches the enclave's audit log (the container's log does not last).

Fire-and-forget: `report_refusal` starts a POST to `$JUPYTERHUB_API_URL/enclave/refusals` with the
server's own token and returns at once, so the researcher's 403/413 is neither delayed nor changed.
Failures (no hub, as when the image runs on its own; a slow or refusing hub) are only logged. The hub
takes the user and project from the token, not from this body (see hub/services/refusal_reports.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger("enclave_policy")

CONNECT_TIMEOUT = 2.0
REQUEST_TIMEOUT = 5.0
MAX_PATH_CHARS = 1024  # what the hub accepts

_pending: set = set()  # keeps the running reports referenced until they finish


def _target(env) -> tuple[str, str] | None:
    url, token = env.get("JUPYTERHUB_API_URL", ""), env.get("JUPYTERHUB_API_TOKEN", "")
    if not url or not token:
        return None
    return url.rstrip("/") + "/enclave/refusals", token


async def _send(request: HTTPRequest, what: str) -> None:
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except Exception as exc:  # noqa: BLE001 - unreachable hub, timeout: log and move on
        log.warning("enclave policy: could not report refused %s to the hub: %s", what, exc)
        return
    if response.code >= 300:
        log.warning("enclave policy: the hub did not record refused %s (HTTP %s)", what, response.code)


def report_refusal(kind: str, path: str, size: int | None = None, fmt: str | None = None,
                   env: dict | None = None) -> None:
    """Start reporting one refusal to the hub; never raises, never waits."""
    try:
        target = _target(os.environ if env is None else env)
        what = f"{kind} {path}"
        if target is None:
            log.debug("enclave policy: no hub to report refused %s to", what)
            return
        body: dict = {"kind": kind, "path": path[:MAX_PATH_CHARS] or "/"}
        if size is not None:
            body["size"] = int(size)
        if fmt:
            body["format"] = fmt
        url, token = target
        request = HTTPRequest(
            url, method="POST", body=json.dumps(body),
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            connect_timeout=CONNECT_TIMEOUT, request_timeout=REQUEST_TIMEOUT,
        )
        task = asyncio.get_running_loop().create_task(_send(request, what))
        _pending.add(task)
        task.add_done_callback(_pending.discard)
    except Exception as exc:  # noqa: BLE001 - reporting must never change what the researcher gets
        log.warning("enclave policy: could not report refused %s %s: %s", kind, path, exc)
