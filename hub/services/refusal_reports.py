"""Refused download attempts reach the audit log: `POST /hub/api/enclave/refusals`.

The notebook image refuses `/files/`, `/view/`, nbconvert and oversized contents-API reads and writes
(images/notebook/enclave_policy), but its log goes with the container when it stops. So the container
reports each refusal here, and the hub records `notebook.download_refused` in the audit log.

The researcher controls the container and everything it sends, so who and where come from the
credentials, never from the body: only a running notebook server's own API token
(JUPYTERHUB_API_TOKEN, held by the hub in memory for that server) is accepted; the actor is the
token's user and the target its server's name, i.e. the project (the plain token is only in memory:
after a hub restart no earlier server is left to report, as the enclave stops every server with the
hub, `cleanup_servers`). The body only says what was refused
(kind, path, size), each bounded and checked. A loop cannot flood the log: per user and kind, at most
`PER_WINDOW` events per `WINDOW_SECONDS`, then one `suppressed` summary event; the number dropped is
carried by the next recorded event of that user and kind. These reports are the container's word: a
researcher can make them up (under their own name) or silence them; what the host itself refuses and
measures is the host guard's record, not this one.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.user import User
from tornado import web

from enclave import db
from enclave.errors import Invalid

from hub.auth.login import record_event
from hub.hubconfig import config_list

ACTION = "notebook.download_refused"
ROUTE = r"/api/enclave/refusals"  # JupyterHub puts it under /hub/
KINDS = ("files", "view", "nbconvert", "read_too_large", "write_too_large", "link_outside")
MAX_BODY_BYTES = 4096
MAX_PATH_CHARS = 1024
MAX_FORMAT_CHARS = 32
PER_WINDOW = 20
WINDOW_SECONDS = 60.0

@dataclass(frozen=True)
class Refusal:
    """What the container says it refused (the only part of a report that comes from the container)."""

    kind: str
    path: str
    size: int | None = None
    format: str | None = None

    def detail(self) -> dict:
        out: dict = {"kind": self.kind, "path": self.path}
        if self.size is not None:
            out["size"] = self.size
        if self.format is not None:
            out["format"] = self.format
        return out


def _printable(text: str) -> bool:
    return not any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def parse_report(body: bytes) -> Refusal:
    """The report in a request body, or Invalid saying what is wrong. Other keys are ignored."""
    if len(body) > MAX_BODY_BYTES:
        raise Invalid(f"a refusal report is at most {MAX_BODY_BYTES} bytes", reason="too_large")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Invalid("the body must be a JSON object", reason="not_json") from None
    if not isinstance(data, dict):
        raise Invalid("the body must be a JSON object", reason="not_json")
    kind = data.get("kind")
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}", reason="bad_kind")
    path = data.get("path")
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_CHARS or not _printable(path):
        raise Invalid(f"path must be 1-{MAX_PATH_CHARS} printable characters", reason="bad_path")
    size = data.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**63):
        raise Invalid("size must be a whole number of bytes", reason="bad_size")
    fmt = data.get("format")
    if fmt is not None and (
        not isinstance(fmt, str) or not 0 < len(fmt) <= MAX_FORMAT_CHARS
        or not all(ch.isalnum() or ch in "-_." for ch in fmt)
    ):
        raise Invalid(f"format must be 1-{MAX_FORMAT_CHARS} letters, digits, '-', '_' or '.'", reason="bad_format")
    return Refusal(kind=kind, path=path, size=size, format=fmt)


# -- rate limit ------------------------------------------------------------------------------------
@dataclass
class _Window:
    start: float
    recorded: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class Admission:
    """What to do with one report: record it, write the summary instead, or drop it."""

    record: bool
    summary: bool = False
    dropped_before: int = 0  # reports of the user's previous window with no event of their own
    remaining: int = 0
    resets_in: float = 0.0


@dataclass
class RefusalLimiter:
    """Per key (a user and a kind), at most `per_window` events in a fixed window from its first report."""

    per_window: int = PER_WINDOW
    window_seconds: float = WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, _Window] = field(default_factory=dict)
    _carry: dict[str, int] = field(default_factory=dict)

    def admit(self, key: str) -> Admission:
        now = self.clock()
        win = self._windows.get(key)
        if win is None or now - win.start >= self.window_seconds:
            if win is not None and win.dropped:
                self._carry[key] = self._carry.get(key, 0) + win.dropped
            win = self._windows[key] = _Window(start=now)
        resets_in = max(0.0, win.start + self.window_seconds - now)
        if win.recorded < self.per_window:
            win.recorded += 1
            return Admission(True, dropped_before=self._carry.pop(key, 0),
                             remaining=self.per_window - win.recorded, resets_in=resets_in)
        win.dropped += 1
        return Admission(False, summary=win.dropped == 1, resets_in=resets_in)


# -- the handler -----------------------------------------------------------------------------------
def server_of(user: User, token: str):
    """The user's running server whose own API token this is, or None."""
    for spawner in user.spawners.values():
        if spawner.api_token and spawner.active and hmac.compare_digest(spawner.api_token, token):
            return spawner
    return None


class RefusalReportHandler(APIHandler):
    """POST /hub/api/enclave/refusals from a notebook server, with its own token."""

    def initialize(self, db_url: str, limiter: RefusalLimiter):
        self.enclave_db_url = db_url
        self.limiter = limiter

    async def post(self):
        user, token = self.current_user, self.get_auth_token()
        spawner = None
        if isinstance(user, User) and token and getattr(self, "_token_authenticated", False):
            spawner = server_of(user, token)
        if spawner is None:
            raise web.HTTPError(403, "only a running notebook server may report refusals, with its own API token")
        try:
            refusal = parse_report(self.request.body)
        except Invalid as exc:
            raise web.HTTPError(400, "%s", exc.message) from None

        # One window per user *and kind*: a loop of made-up reports of one kind cannot crowd out the
        # others (the reports come from the researcher's container: claims, not the host's own record).
        decision = self.limiter.admit(f"{user.name}\0{refusal.kind}")
        if decision.record:
            detail = refusal.detail()
            if decision.dropped_before:
                detail["suppressed_before"] = decision.dropped_before
            await db.off_loop(record_event, self.enclave_db_url, user.name, ACTION, spawner.name, detail)
            self.set_status(201)
            self.finish(json.dumps({"recorded": True, "remaining": decision.remaining,
                                    "resets_in": round(decision.resets_in, 1)}))
            return
        if decision.summary:  # once per window, so a loop floods neither the audit log nor this log
            detail = {"kind": "suppressed", "limit": self.limiter.per_window,
                      "window_seconds": self.limiter.window_seconds, "first_dropped": refusal.detail()}
            await db.off_loop(record_event, self.enclave_db_url, user.name, ACTION, spawner.name, detail)
            self.log.warning("refusal reports from %s/%s over %d per %.0f s: counted, not recorded one by one "
                             "for %.0f s", user.name, spawner.name, self.limiter.per_window,
                             self.limiter.window_seconds, decision.resets_in)
        self.set_status(429)
        self.finish(json.dumps({"recorded": False, "message": "too many refusal reports; later ones are counted, "
                                "not recorded one by one", "resets_in": round(decision.resets_in, 1)}))


def configure(c, s) -> None:
    """Add the report endpoint to the hub (one limiter for the hub process)."""
    handlers = [h for h in config_list(c.JupyterHub, "extra_handlers") if h[0] != ROUTE]
    c.JupyterHub.extra_handlers = handlers + [
        (ROUTE, RefusalReportHandler, {"db_url": s.database_url, "limiter": RefusalLimiter()}),
    ]
