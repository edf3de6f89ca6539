"""The public register's pages (no login): the register as HTML, the same signed as JSON, and the
site's public key. Every change the register shows writes an audit event, so the register is built
again only when the audit head moved (or after `CACHE_SECONDS`): a flood of visitors costs one small
read each."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import jinja2
from aiohttp import web
from sqlalchemy import func, select

from enclave import db
from enclave.models import AuditHead
from enclave.settings import Settings

from transparency import register, signing

CACHE_SECONDS = 300
_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                                autoescape=True)


class Register:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._at = 0.0
        self._head: int | None = None
        self._envelope: dict | None = None
        self._lock = asyncio.Lock()

    def _head_seq(self) -> int:
        with db.transaction(self.settings.database_url) as session:
            return session.execute(select(func.coalesce(func.max(AuditHead.seq), 0))).scalar_one()

    def _build(self) -> dict:
        with db.transaction(self.settings.database_url) as session:
            return signing.sign(self.settings.state_dir, register.build(session, self.settings))

    async def envelope(self) -> dict:
        loop = asyncio.get_running_loop()
        async with self._lock:
            head = await loop.run_in_executor(None, self._head_seq)
            if self._envelope is None or head != self._head or time.monotonic() - self._at > CACHE_SECONDS:
                self._envelope = await loop.run_in_executor(None, self._build)
                self._at, self._head = time.monotonic(), head
            return self._envelope


_HEADERS = {"Cache-Control": "public, max-age=30", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


def make_app(settings: Settings, prefix: str = "/") -> web.Application:
    reg = Register(settings)
    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"

    async def page(_request):
        env = await reg.envelope()
        html = _TEMPLATES.get_template("register.html").render(r=env["register"], sig=env["signature"], prefix=prefix)
        return web.Response(text=html, content_type="text/html", headers=_HEADERS)

    async def as_json(_request):
        env = await reg.envelope()
        return web.Response(text=json.dumps(env, indent=1, sort_keys=True), content_type="application/json",
                            headers=_HEADERS)

    async def key(_request):
        env = await reg.envelope()
        return web.Response(text=env["signature"]["public_key"] + "\n", headers=_HEADERS)

    app = web.Application()
    app.router.add_get(prefix, page)
    app.router.add_get(prefix + "register.json", as_json)
    app.router.add_get(prefix + "public-key", key)
    return app
