"""A small but real OpenID Connect provider on 127.0.0.1, run by the tests themselves.

It speaks the authorization-code flow the way an institutional IdP does: discovery document,
``/authorize`` (auto-approves whoever the test queued with ``next_login``), ``/token`` (checks client
credentials, the code, the redirect_uri and PKCE), ``/userinfo`` and ``/jwks`` (an RS256 key generated at
start). ID tokens are signed with PyJWT and carry iss, sub, aud, exp, iat, auth_time, nonce (when the
client sent one), amr and acr.

To prove forged claims are refused, a queued login can be signed with a separate attacker key
(``signing="attacker"``) that is never published, while keeping the real key's ``kid`` in the header,
which is what a forger would do.

    with OIDCProvider() as idp:
        idp.next_login("u-123", "ann", amr=["pwd", "mfa"])
        ... point the hub's [oidc] issuer at idp.issuer ...
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import jwt
import tornado.httpserver
import tornado.netutil
import tornado.web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass
class QueuedLogin:
    """Who the next /authorize request signs in as, and what the id_token will claim."""

    sub: str
    username: str
    amr: list[str] | None = None
    acr: str | None = None
    signing: str = "real"  # "real" or "attacker"
    extra_claims: dict[str, Any] = field(default_factory=dict)  # override/add id_token claims
    deny: bool = False  # the person cancels at the IdP: redirect back with error=access_denied


@dataclass
class IssuedCode:
    login: QueuedLogin
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires: float


def _new_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OIDCProvider:
    """Start with ``start()`` (or use as a context manager); ``issuer`` is http://127.0.0.1:<port>."""

    def __init__(self, client_id: str = "enclave-hub", client_secret: str | None = None,
                 token_lifetime: int = 300):
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.token_lifetime = token_lifetime
        self.kid = "test-key-1"
        self._key = _new_rsa_key()
        self._attacker_key = _new_rsa_key()
        self._queue: deque[QueuedLogin] = deque()
        self._codes: dict[str, IssuedCode] = {}
        self._access_tokens: dict[str, QueuedLogin] = {}
        self._lock = threading.Lock()
        self.authorize_requests: list[dict[str, str]] = []  # query of every /authorize call
        self.token_requests: list[dict[str, str]] = []  # form of every /token call (secrets masked)
        self.issued_id_tokens: list[str] = []
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: tornado.httpserver.HTTPServer | None = None

    # ---- test controls -------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_login(self, sub: str, username: str, *, amr: list[str] | None = None, acr: str | None = None,
                   signing: str = "real", extra_claims: dict[str, Any] | None = None,
                   deny: bool = False) -> QueuedLogin:
        """Queue the person the next /authorize request signs in (one queued login per request)."""
        if signing not in ("real", "attacker"):
            raise ValueError("signing is 'real' or 'attacker'")
        login = QueuedLogin(sub, username, amr, acr, signing, dict(extra_claims or {}), deny)
        with self._lock:
            self._queue.append(login)
        return login

    def rotate_key(self) -> None:
        """Publish a new signing key under a new kid (what an IdP does on key rotation)."""
        with self._lock:
            self._key = _new_rsa_key()
            self.kid = f"test-key-{int(self.kid.rsplit('-', 1)[1]) + 1}"

    def public_jwks(self) -> dict:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return {"keys": [jwk]}

    def sign(self, claims: dict[str, Any], *, signing: str = "real", kid: str | None = None,
             algorithm: str = "RS256") -> str:
        """Sign arbitrary claims (unit tests build their own tokens with this)."""
        key = self._key if signing == "real" else self._attacker_key
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid or self.kid})

    def id_token_claims(self, login: QueuedLogin, nonce: str | None, now: int | None = None) -> dict:
        now = int(time.time()) if now is None else now
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": login.sub, "aud": self.client_id, "azp": self.client_id,
            "iat": now, "exp": now + self.token_lifetime, "auth_time": now,
            "preferred_username": login.username,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if login.amr is not None:
            claims["amr"] = list(login.amr)
        if login.acr is not None:
            claims["acr"] = login.acr
        claims.update(login.extra_claims)
        return {k: v for k, v in claims.items() if v is not None}

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> OIDCProvider:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = tornado.httpserver.HTTPServer(self._app())
            self._server.add_sockets(sockets)
            ready.set()
            self._loop.run_forever()
            self._server.stop()
            self._loop.close()

        self._thread = threading.Thread(target=run, name=f"oidc-provider-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("test OIDC provider did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> OIDCProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _app(self) -> tornado.web.Application:
        kw = {"provider": self}
        return tornado.web.Application([
            (r"/\.well-known/openid-configuration", _Discovery, kw),
            (r"/authorize", _Authorize, kw),
            (r"/token", _Token, kw),
            (r"/userinfo", _UserInfo, kw),
            (r"/jwks", _Jwks, kw),
        ])

    # ---- protocol steps (called from the handlers, on the provider's thread) ---------------------
    def _take_login(self) -> QueuedLogin | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _issue_code(self, issued: IssuedCode) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = issued
        return code

    def _redeem_code(self, code: str) -> IssuedCode | None:
        with self._lock:
            return self._codes.pop(code, None)  # single use


class _Base(tornado.web.RequestHandler):
    def initialize(self, provider: OIDCProvider) -> None:
        self.provider = provider

    def json(self, body: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def oauth_error(self, error: str, description: str, status: int = 400) -> None:
        self.json({"error": error, "error_description": description}, status)


class _Discovery(_Base):
    def get(self) -> None:
        iss = self.provider.issuer
        self.json({
            "issuer": iss,
            "authorization_endpoint": f"{iss}/authorize",
            "token_endpoint": f"{iss}/token",
            "userinfo_endpoint": f"{iss}/userinfo",
            "jwks_uri": f"{iss}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "amr", "acr", "preferred_username"],
        })


class _Jwks(_Base):
    def get(self) -> None:
        self.json(self.provider.public_jwks())


class _Authorize(_Base):
    def get(self) -> None:
        p = self.provider
        q = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        p.authorize_requests.append(q)
        if q.get("client_id") != p.client_id:
            return self.oauth_error("unauthorized_client", "unknown client_id")
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri.startswith("http://127.0.0.1:"):
            return self.oauth_error("invalid_request", "redirect_uri must be on loopback in tests")
        if q.get("response_type") != "code":
            return self.oauth_error("unsupported_response_type", "only the code flow is supported")
        if "openid" not in q.get("scope", "").split():
            return self.oauth_error("invalid_scope", "scope must include openid")
        login = p._take_login()
        back: dict[str, str] = {"state": q["state"]} if "state" in q else {}
        if login is None or login.deny:
            back.update(error="access_denied", error_description="the user did not sign in")
        else:
            back["code"] = p._issue_code(IssuedCode(
                login=login, client_id=q["client_id"], redirect_uri=redirect_uri,
                nonce=q.get("nonce"), code_challenge=q.get("code_challenge"),
                code_challenge_method=q.get("code_challenge_method"), expires=time.time() + 60,
            ))
        sep = "&" if "?" in redirect_uri else "?"
        self.redirect(redirect_uri + sep + urllib.parse.urlencode(back))


class _Token(_Base):
    def post(self) -> None:
        p = self.provider
        form = {k: self.get_body_argument(k) for k in self.request.body_arguments}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = self.request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        p.token_requests.append({k: ("***" if k == "client_secret" else v) for k, v in form.items()})
        if client_id != p.client_id or not secrets.compare_digest(client_secret or "", p.client_secret):
            return self.oauth_error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "authorization_code":
            return self.oauth_error("unsupported_grant_type", "only authorization_code")
        issued = p._redeem_code(form.get("code", ""))
        if issued is None or issued.expires < time.time() or issued.client_id != client_id:
            return self.oauth_error("invalid_grant", "unknown, used or expired code")
        if form.get("redirect_uri") != issued.redirect_uri:
            return self.oauth_error("invalid_grant", "redirect_uri differs from the authorize request")
        if issued.code_challenge:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if issued.code_challenge_method != "S256" or digest != issued.code_challenge:
                return self.oauth_error("invalid_grant", "PKCE verification failed")
        login = issued.login
        claims = p.id_token_claims(login, issued.nonce)
        id_token = p.sign(claims, signing=login.signing)
        p.issued_id_tokens.append(id_token)
        access_token = secrets.token_urlsafe(24)
        with p._lock:
            p._access_tokens[access_token] = login
        self.json({
            "access_token": access_token, "token_type": "Bearer", "expires_in": p.token_lifetime,
            "id_token": id_token, "scope": "openid profile",
        })


class _UserInfo(_Base):
    def get(self) -> None:
        auth = self.request.headers.get("Authorization", "")
        login = self.provider._access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if login is None:
            self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            return self.json({"error": "invalid_token"}, 401)
        self.json({"sub": login.sub, "preferred_username": login.username})
