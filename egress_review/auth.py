"""Who is calling: JupyterHub OAuth (HubOAuth), so the hub's login with password + TOTP applies here too.

Browsers are sent through the hub's OAuth authorize endpoint (with PKCE and a state cookie); the
callback exchanges the code for a hub token kept in an HttpOnly cookie scoped to the service prefix.
API clients may instead send `Authorization: token <hub token>`. Every token is checked with the hub
(cached briefly) and must carry this service's access scope.

Cookie-authenticated changes (POST) need the CSRF token (form field `_csrf` or header
`X-CSRF-Token`), derived from the session token so a third-party page cannot know it.

The service always uses `HubOAuthGate`; a gate that trusts a header naming the user exists only under
tests/ (tests/support/egress_gate.py), for fast tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse

from enclave.errors import EnclaveError, PermissionDenied

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_AUTH_HEADER = re.compile(r"(?:token|bearer)\s+(.+)", re.IGNORECASE)


class NeedsLogin(EnclaveError):
    reason = "login_required"
    status = 401


@dataclass(frozen=True)
class Identity:
    name: str
    via_cookie: bool
    csrf: str = ""


def csrf_for(token: str) -> str:
    return hashlib.sha256(b"egress-csrf\0" + token.encode()).hexdigest()[:40]


async def check_csrf(request: Request, ident: Identity) -> None:
    if request.method not in UNSAFE or not ident.via_cookie:
        return
    sent = request.headers.get("x-csrf-token", "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get("_csrf", ""))
    if not sent or not hmac.compare_digest(sent, ident.csrf):
        raise PermissionDenied("this form has expired or did not come from the review service; reload the "
                               "page and try again", reason="csrf")


class HubOAuthGate:
    """Identify people with JupyterHub's OAuth provider (configured from the JUPYTERHUB_* environment)."""

    def __init__(self, prefix: str, cookie: str = "egress-session", what: str = "the review service"):
        """`cookie` names the session cookie (each service its own), `what` the service in refusals."""
        from jupyterhub.services.auth import HubOAuth

        self.prefix = prefix.rstrip("/") + "/"
        self.hub_auth = HubOAuth(cache_max_age=60)
        self.cookie = cookie
        self.state_cookie = cookie.removesuffix("-session") + "-oauth-state"
        self.what = what

    def _secure(self, request: Request) -> bool:
        proto = request.headers.get("x-forwarded-proto", request.url.scheme)
        return proto.split(",")[0].strip() == "https"

    async def identify(self, request: Request) -> Identity | None:
        from jupyterhub.services.auth import check_scopes

        header = request.headers.get("authorization", "")
        m = _AUTH_HEADER.match(header)
        token, via_cookie = (m.group(1).strip(), False) if m else (request.cookies.get(self.cookie), True)
        if not token:
            return None
        model = await self.hub_auth.user_for_token(token, sync=False)
        if not model or model.get("kind", "user") != "user":
            return None
        required = self.hub_auth.access_scopes
        if required and not check_scopes(required, set(model.get("scopes", []))):
            raise PermissionDenied(f"your hub account is not allowed to use {self.what}",
                                   reason="no_access_scope")
        return Identity(model["name"], via_cookie, csrf_for(token))

    def login(self, request: Request) -> RedirectResponse:
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        verifier, challenge, method = self.hub_auth.generate_pkce_code_challenge()
        state = self.hub_auth.generate_state(nxt, code_verifier=verifier)
        url = self.hub_auth.login_url + "&" + urlencode(
            {"state": state, "code_challenge": challenge, "code_challenge_method": method})
        resp = RedirectResponse(url, status_code=302)
        resp.set_cookie(self.state_cookie, state, max_age=600, path=self.prefix, httponly=True,
                        samesite="lax", secure=self._secure(request))
        return resp

    async def callback(self, request: Request) -> RedirectResponse:
        code = request.query_params.get("code")
        state = request.query_params.get("state")
        cookie_state = request.cookies.get(self.state_cookie)
        if request.query_params.get("error"):
            raise PermissionDenied("the hub refused the login: " + request.query_params.get("error", ""),
                                   reason="oauth_error")
        if not code or not state or not cookie_state or not hmac.compare_digest(state, cookie_state):
            raise PermissionDenied("the login could not be completed (state mismatch); open the review "
                                   "service again", reason="oauth_state")
        nxt = self.hub_auth.get_next_url(state)
        verifier = self.hub_auth.get_code_verifier(state)
        self.hub_auth.clear_oauth_state(state)
        token = await self.hub_auth.token_for_code(code, code_verifier=verifier, sync=False)
        if not nxt.startswith(self.prefix):  # never an open redirect
            nxt = self.prefix
        resp = RedirectResponse(nxt, status_code=302)
        resp.delete_cookie(self.state_cookie, path=self.prefix)
        resp.set_cookie(self.cookie, token, path=self.prefix, httponly=True, samesite="lax",
                        secure=self._secure(request))
        return resp

    def logout(self, resp) -> None:
        resp.delete_cookie(self.cookie, path=self.prefix)
