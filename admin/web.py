"""What every admin page shares: who is calling (admins only), the templates (the review service's
look), and rendering."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from enclave import db, permissions
from enclave.errors import PermissionDenied
from enclave.models import Account, Role

from egress_review.auth import Identity, NeedsLogin, check_csrf

_HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=[str(_HERE / "templates"), str(_HERE.parent / "egress_review" / "templates")])
PAGE_SIZE = 50


@dataclass(frozen=True)
class Ctx:
    ident: Identity
    username: str
    settings: object
    prefix: str

    @property
    def url(self) -> str:
        return self.settings.database_url

    @property
    def actor(self) -> str:
        return self.username  # as the audit log names a person acting in the browser


async def admin(request: Request) -> Ctx:
    """FastAPI dependency of every page: an active admin account, CSRF checked on changes."""
    state = request.app.state
    ident = await state.gate.identify(request)
    if ident is None:
        raise NeedsLogin("login required")
    await check_csrf(request, ident)
    with db.transaction(state.settings.database_url) as s:
        account = s.execute(select(Account).where(Account.username == ident.name)).scalar_one_or_none()
        if not permissions.may_act(account) or account.role != Role.admin:
            raise PermissionDenied("the admin pages are for administrators", reason="not_admin")
    return Ctx(ident, ident.name, state.settings, state.prefix)


def page(request: Request, ctx: Ctx, template: str, status_code: int = 200, **data) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, {
        "prefix": ctx.prefix, "me": ctx.username, "csrf": ctx.ident.csrf, **data}, status_code=status_code)


class Said(io.StringIO):
    """Collects what a core change says it did (enclave.access prints its steps) for the next page."""

    def lines(self) -> list[str]:
        return [line for line in self.getvalue().splitlines() if line.strip()]
