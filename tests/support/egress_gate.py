"""A login gate for the review service that trusts a header naming the user: fast tests and benchmarks
drive the real app (create_app(settings, gate=HeaderGate())) without a hub. It lives here, under tests/,
so no production code path can construct it."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import PlainTextResponse

from egress_review.auth import Identity, NeedsLogin


class HeaderGate:
    """Trusts the `X-Egress-Test-User` header."""

    header = "x-egress-test-user"

    def __init__(self, prefix: str = "/services/egress"):
        self.prefix = prefix.rstrip("/") + "/"

    async def identify(self, request: Request) -> Identity | None:
        name = request.headers.get(self.header)
        return Identity(name, via_cookie=False) if name else None

    def login(self, request: Request):
        return PlainTextResponse("no test user header", status_code=401)

    async def callback(self, request: Request):
        raise NeedsLogin("no OAuth in test mode")

    def logout(self, resp) -> None:
        pass
