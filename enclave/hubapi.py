"""The one seam to JupyterHub's REST API for enclave code outside the hub process (services, CLI).

Only what stopping servers needs: list the servers that run, stop one and wait until it is gone.
Endpoints (JupyterHub 6): `GET /users?state=active` (paginated, scopes list:users + read:servers),
`GET /users/{name}` and `DELETE /users/{name}/servers/{server}` (delete:servers; 204 when stopped,
202 while the stop goes on).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

import requests

PAGE = 200


class HubUnavailable(Exception):
    """The hub API does not answer (not running, or still starting)."""


class HubRefused(Exception):
    """The hub answered with an error (e.g. a token it does not know)."""


@dataclass(frozen=True)
class RunningServer:
    """One named server as the hub reports it; `pending` is None, "spawn" or "stop"."""

    user: str
    name: str
    ready: bool
    pending: str | None


class HubAPI:
    def __init__(self, api_url: str, token: str, timeout: float = 10.0):
        self.api_url = api_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            r = self.http.request(method, self.api_url + path, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise HubUnavailable(f"the hub API at {self.api_url} does not answer ({type(exc).__name__})") from None
        if r.status_code >= 400 and r.status_code != 404:
            raise HubRefused(f"{method} {path}: HTTP {r.status_code} {r.text[:200]}")
        return r

    def running_servers(self) -> list[RunningServer]:
        """Every server that is running, starting or stopping, of every user."""
        found: list[RunningServer] = []
        offset = 0
        while True:
            r = self._call("GET", "/users", params={"state": "active", "offset": offset, "limit": PAGE},
                           headers={"Accept": "application/jupyterhub-pagination+json"})
            body = r.json()
            for user in body["items"]:
                for name, server in (user.get("servers") or {}).items():
                    found.append(RunningServer(user["name"], name, bool(server.get("ready")), server.get("pending")))
            nxt = (body.get("_pagination") or {}).get("next")
            if not nxt:
                return found
            offset = nxt["offset"]

    def server(self, user: str, name: str) -> dict | None:
        r = self._call("GET", f"/users/{quote(user, safe='')}")
        if r.status_code == 404:
            return None
        return (r.json().get("servers") or {}).get(name)

    def stop(self, user: str, name: str, wait: float = 60.0) -> bool:
        """Ask the hub to stop the server; True once the hub no longer reports it (False: still stopping)."""
        r = self._call("DELETE", f"/users/{quote(user, safe='')}/servers/{quote(name, safe='')}")
        if r.status_code in (204, 404):
            return True
        return self.wait_gone(user, name, wait)

    def end_sessions(self, user: str, reason: str, actor: str) -> dict:
        """Delete every token and hub cookie session of `user` (hub.auth.sessions); what was ended."""
        r = self._call("DELETE", f"/enclave/sessions/{quote(user, safe='')}", params={"reason": reason, "actor": actor})
        if r.status_code == 404:
            raise HubRefused(f"this hub cannot end sessions (HTTP 404 at {r.url})")
        return r.json()

    def wait_gone(self, user: str, name: str, wait: float = 60.0) -> bool:
        """True once the hub no longer reports the server as running, starting or stopping."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            model = self.server(user, name)
            if model is None or (not model.get("ready") and not model.get("pending")):
                return True
            time.sleep(0.25)
        return False
