"""Institutional single sign-on (OpenID Connect) with the enclave TOTP as the second factor.

OAuthenticator's `GenericOAuthenticator` runs the authorization-code flow (PKCE on). We change three
steps of JupyterHub's login sequence and nothing else:

- `token_to_user`: the id_token is verified here against the issuer's published keys (signature,
  iss, aud/azp, exp, iat; asymmetric algorithms only). OAuthenticator itself decodes id_tokens with
  `verify_signature=False`, so none of its decoded claims are trusted. The nonce we send is bound to
  the OAuth state cookie and checked in `authenticate`.
- `check_allowed`: the username claim must name an existing, active enclave account; anything else
  is refused with a message (and an audit event), ending in an explicit deny.
- the callback: unless the verified id_token asserts MFA (`amr`/`acr` values from `[oidc]`), the
  login is NOT completed. The hub keeps the half-done login in a short-lived signed+encrypted cookie
  and sends the person to /hub/mfa, where `hub.auth.login.second_factor` checks the enclave TOTP (or a
  recovery code) with the usual lockout, throttle, replay protection and audit. Only then is the
  JupyterHub login cookie set.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler, OAuthLogoutHandler, _deserialize_state
from traitlets import Any as AnyTrait
from traitlets import Bool, Float, List, Unicode

from enclave.errors import EnclaveError, PermissionDenied

from hub.auth import roles, sessions

# Asymmetric only: an "HS256" token "signed" with the public key, or "none", must never verify.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
PENDING_COOKIE = "enclave-sso-pending"
JWKS_CACHE_SECONDS = 600


class IdTokenRejected(EnclaveError):
    """The IdP's id_token cannot be trusted; the login stops."""

    reason = "id_token_rejected"
    status = 403


# -- the IdP's metadata and keys ----------------------------------------------------------------

@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def discover(issuer: str, timeout: float = 10.0) -> ProviderMetadata:
    """Read the issuer's discovery document (start-up, blocking); refuse one naming another issuer."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        resp = requests.get(url, timeout=timeout)
        resp.raise_for_status()
        doc = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise EnclaveError(
            f"cannot read the OpenID Connect discovery document at {url} ({exc}); check [oidc] issuer "
            "and that the identity provider is reachable from the hub",
            reason="oidc_discovery",
        ) from None
    if doc.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise EnclaveError(
            f"the discovery document at {url} names issuer {doc.get('issuer')!r}, not {issuer!r}; "
            "set [oidc] issuer to exactly the IdP's issuer URL",
            reason="oidc_discovery",
        )
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not doc.get(k)]
    if missing:
        raise EnclaveError(f"the discovery document at {url} lacks {', '.join(missing)}", reason="oidc_discovery")
    return ProviderMetadata(
        issuer=doc["issuer"], authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"], userinfo_endpoint=doc.get("userinfo_endpoint", ""),
        jwks_uri=doc["jwks_uri"],
    )


def _signing_key(token: str, jwks: dict) -> tuple[Any, str]:
    """The published key the token's header points at, and the algorithm to verify it with."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise IdTokenRejected("The identity provider sent an unreadable id_token.", detail=str(exc)) from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise IdTokenRejected("The identity provider's id_token is not signed with a public-key algorithm.",
                              detail=f"alg={alg!r}")
    try:
        keyset = jwt.PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError as exc:
        raise IdTokenRejected("The identity provider publishes no usable signing key.", detail=str(exc)) from None
    kid = header.get("kid")
    candidates = [k for k in keyset.keys if kid is None or k.key_id == kid]
    if kid is None and len(candidates) != 1:
        raise IdTokenRejected("The id_token names no key and the IdP publishes several.", detail="no kid")
    if not candidates:
        raise IdTokenRejected("The id_token is signed with a key the identity provider does not publish.",
                              detail=f"unknown kid {kid!r}", reason="unknown_kid")
    key = candidates[0]
    if key._jwk_data.get("alg") not in (None, alg):
        raise IdTokenRejected("The id_token's algorithm does not match its key.", detail=f"alg={alg!r}")
    return key.key, alg


def verify_id_token(token: str, jwks: dict, *, issuer: str, client_id: str, nonce: str | None = None,
                    leeway: float = 60.0) -> dict[str, Any]:
    """The claims of an id_token whose signature, iss, aud/azp, exp and iat (and nonce) all check out."""
    key, alg = _signing_key(token, jwks)
    try:
        claims = jwt.decode(
            token, key, algorithms=[alg], audience=client_id, issuer=issuer, leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.InvalidSignatureError:
        raise IdTokenRejected("The id_token's signature does not verify with the identity provider's key.",
                              detail="bad signature", reason="bad_signature") from None
    except jwt.PyJWTError as exc:
        raise IdTokenRejected("The identity provider's id_token is not valid for this enclave.",
                              detail=f"{type(exc).__name__}: {exc}") from None
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise IdTokenRejected("The id_token was issued for another application.", detail="azp mismatch")
    if "azp" in claims and claims["azp"] != client_id:
        raise IdTokenRejected("The id_token was issued for another application.", detail="azp mismatch")
    if nonce is not None and claims.get("nonce") != nonce:
        raise IdTokenRejected("The sign-in answer does not belong to this browser session; sign in again.",
                              detail="nonce mismatch", reason="nonce")
    return claims


def mfa_asserted(claims: dict[str, Any], amr_values: list[str], acr_values: list[str]) -> bool:
    """True when verified claims say the IdP did MFA: an `amr` entry or the `acr` is in the lists."""
    amr = claims.get("amr")
    if isinstance(amr, list) and any(isinstance(v, str) and v in amr_values for v in amr):
        return True
    acr = claims.get("acr")
    return isinstance(acr, str) and acr in acr_values


def nonce_for(state_id: str) -> str:
    """The nonce sent to the IdP: derived from the OAuth state id kept in the signed state cookie."""
    return hashlib.sha256(f"enclave-oidc-nonce:{state_id}".encode()).hexdigest()


def _state_id(state_b64: str | None) -> str | None:
    return _deserialize_state(state_b64).get("state_id") if state_b64 else None


# -- the account behind a verified identity ---------------------------------------------------------

@dataclass
class Decision:
    username: str
    role: str  # the enclave role, carried as a JupyterHub group (hub.auth.roles); nobody is a hub admin
    mfa_at_idp: bool


def _audit_refusal(session, username: str, reason: str, detail: dict) -> None:
    from enclave import audit

    audit.record(session, username[:64] or "-", "login.failed", username[:255] or "-",
                 {"reason": reason, "method": "sso", **detail})


def admit(settings, username: str, mfa_at_idp: bool, source: str, sub: str) -> Decision:
    """Allow-logic for a person the IdP has authenticated: only an existing, active enclave account.

    Every refusal is audited (`login.failed`, method sso) and raises PermissionDenied with a message
    that says what to do; the function ends in an explicit deny. An IdP-asserted MFA login is complete
    here (`login.ok`); otherwise `login.sso.idp_ok` records the first factor and the TOTP step follows.
    """
    from sqlalchemy import select

    from enclave import audit, clock, permissions
    from enclave.models import Account
    from enclave.permissions import AccountState

    from hub.auth.login import write_transaction

    refusal: PermissionDenied | None = None
    with write_transaction(settings.database_url) as session:
        account = session.execute(
            select(Account).where(Account.username == username).with_for_update()
        ).scalar_one_or_none()
        now = clock.now()
        state = permissions.account_state(account)
        if state is AccountState.unknown:
            refusal = PermissionDenied(
                f"Your institutional identity '{username}' has no account in this enclave. Ask an "
                "administrator to create it (`enclave user add`).", reason="unknown_user")
        elif state is AccountState.disabled:
            refusal = PermissionDenied("This account is disabled; ask an administrator.", reason="disabled")
        elif state is not AccountState.active:
            refusal = PermissionDenied(
                "This account has not been enrolled yet: open the enrolment link you were given and "
                "register your authenticator app, or ask an administrator for a new link.", reason="pending")
        elif account.locked_until is not None and account.locked_until > now:
            refusal = PermissionDenied(
                f"Account locked after too many failed attempts; try again after "
                f"{account.locked_until:%H:%M} UTC or ask an administrator.", reason="locked")
        else:  # AccountState.active: the only state that may act
            detail = {"source": source, "sub": sub}
            if mfa_at_idp:
                account.failed_logins = 0
                audit.record(session, username, "login.ok", username, {**detail, "method": "sso+idp_mfa"})
            else:
                audit.record(session, username, "login.sso.idp_ok", username, {**detail, "next": "totp"})
            return Decision(username, account.role.value, mfa_at_idp)
        _audit_refusal(session, username, refusal.reason, {"source": source, "sub": sub})
    raise refusal


def record_id_token_refusal(settings, exc: EnclaveError, source: str) -> None:
    """A forged, expired or foreign id_token is a security event: audit it (no trusted name exists)."""
    from hub.auth.login import write_transaction

    with write_transaction(settings.database_url) as session:
        _audit_refusal(session, "-", exc.reason, {"source": source, "detail": exc.detail[:200]})


def second_step(settings, username: str, code: str, source: str) -> None:
    """Blocking: the enclave TOTP / recovery code after the IdP; `login.ok` on success."""
    from enclave import accounts, audit, permissions

    from hub.auth.login import LoginRefused, second_factor, write_transaction

    with write_transaction(settings.database_url) as session:
        try:
            account = accounts.get(session, username)
        except EnclaveError:
            raise LoginRefused("This account no longer exists; ask an administrator.", reason="unknown_user") from None
        try:
            second_factor(session, settings, account, code, source)  # commits + raises on refusal
        except LoginRefused as exc:
            if exc.reason == "bad_otp":  # the shared message mentions a password, which SSO users have not
                raise LoginRefused("That code is not right. Enter the 6-digit code your authenticator app "
                                   "shows now, or one of your recovery codes.",
                                   reason=exc.reason, detail=exc.detail) from None
            raise
        if not permissions.may_act(account):  # second_factor refuses these; never rely on one check
            raise LoginRefused("This account is not active; ask an administrator.", reason="not_active")
        account.failed_logins = 0
        account.locked_until = None
        audit.record(session, username, "login.ok", username, {"source": source, "method": "sso+totp"})


def _account_active(settings, username: str) -> bool:
    from enclave import accounts
    from enclave.db import transaction

    with transaction(settings.database_url) as session:
        return accounts.may_act(session, username)


# -- JupyterHub handlers -------------------------------------------------------------------------------

class EnclaveOIDCLoginHandler(OAuthLoginHandler):
    """Adds an OIDC nonce bound to the OAuth state cookie."""

    def authorize_redirect(self, *args, **kwargs):
        extra = kwargs.setdefault("extra_params", {})
        state_id = _state_id(extra.get("state"))
        if state_id:
            extra["nonce"] = nonce_for(state_id)
        return super().authorize_redirect(*args, **kwargs)


def _forbidden(exc: EnclaveError):
    from tornado import web

    # The message goes to JupyterHub's error page only: tornado would otherwise log it together with
    # the unscrubbed callback URL (authorization code and state); our own log line has the detail.
    err = web.HTTPError(exc.status if exc.status >= 400 else 403)
    err.jupyterhub_message = str(exc)
    return err


async def complete_login(handler, username: str, role: str):
    """Create/refresh the JupyterHub user and set its login cookie (the login is audited already)."""
    user = await handler.auth_to_user({**roles.auth_model(username, role), "auth_state": None})
    handler.set_login_cookie(user)
    handler.log.info("SSO login completed for %s", username)
    return user


class EnclaveOIDCLogoutHandler(OAuthLogoutHandler):
    """Logging out also forgets a half-done SSO login."""

    async def handle_logout(self):
        self.clear_cookie(PENDING_COOKIE, path=self.hub.base_url)
        await super().handle_logout()


class EnclaveOIDCCallbackHandler(OAuthCallbackHandler):
    """Completes the login only when the IdP asserted MFA; otherwise hands over to /hub/mfa."""

    async def get(self):
        self.check_arguments()
        try:
            authenticated = await self.authenticate(None)
        except EnclaveError as exc:
            self.log.warning("SSO login refused: %s (%s)", exc.detail, exc.reason)
            raise _forbidden(exc) from None
        if authenticated is None:
            raise _forbidden(PermissionDenied(self.authenticator.custom_403_message))
        decision: Decision = authenticated["auth_state"]["enclave"]["decision"]
        next_url = self.get_next_url()
        if decision.mfa_at_idp:
            await complete_login(self, decision.username, decision.role)
            return self.redirect(next_url)
        seconds = self.authenticator.pending_seconds
        pending = {"u": decision.username, "r": decision.role, "n": next_url,
                   "exp": time.time() + seconds}
        self._set_cookie(PENDING_COOKIE, json.dumps(pending), encrypted=True, path=self.hub.base_url,
                         expires_days=None, max_age=int(seconds))
        self.redirect(self.hub.base_url + "mfa")


def _mfa_handler_class():
    from jupyterhub._xsrf_utils import _set_xsrf_cookie
    from jupyterhub.handlers.base import BaseHandler

    class MFAStepHandler(BaseHandler):
        """GET asks for the enclave TOTP after an SSO sign-in; POST checks it and completes the login."""

        def _pending(self) -> dict | None:
            seconds = self.authenticator.pending_seconds
            raw = self.get_secure_cookie(PENDING_COOKIE, max_age_days=seconds / 86400 + 1e-6)
            try:
                pending = json.loads(raw) if raw else None
            except ValueError:
                pending = None
            if not isinstance(pending, dict) or pending.get("exp", 0) <= time.time():
                return None
            return pending

        async def _page(self, pending: dict | None, error: str = "", status: int = 200):
            self.set_status(status)
            self.set_header("Cache-Control", "no-store")
            html = await self.render_template(
                "mfa_step.html", pending_user=(pending or {}).get("u"), error=error,
                xsrf=self.xsrf_token.decode("ascii"), login_url=self.settings["login_url"],
                minutes=max(1, round(self.authenticator.pending_seconds / 60)),
            )
            self.finish(html)

        def _expired(self):
            return self._page(None, status=403, error=(
                "Your institutional sign-in is missing or has expired. Sign in again; you will then be "
                "asked for your authenticator code."))

        async def get(self):
            pending = self._pending()
            if pending is None:
                return await self._expired()
            if self.request.headers.get("Sec-Fetch-Mode", "navigate") == "navigate":
                _set_xsrf_cookie(self, self._xsrf_token_id, cookie_path=self.hub.base_url,
                                 xsrf_token=self.xsrf_token)
            await self._page(pending)

        async def post(self):
            from hub.auth import passwords
            from hub.auth.login import LoginRefused

            pending = self._pending()
            if pending is None:
                return await self._expired()
            code = self.get_body_argument("otp", "", strip=True)
            try:
                await passwords.run(second_step, self.authenticator.enclave_settings, pending["u"], code,
                                    self.request.remote_ip)
            except LoginRefused as exc:
                self.log.warning("SSO second factor refused: %s", exc.detail)
                await sessions.after_refused_login(self, exc, self.authenticator.enclave_settings.database_url)
                return await self._page(pending, error=str(exc), status=403)
            self.clear_cookie(PENDING_COOKIE, path=self.hub.base_url)
            await complete_login(self, pending["u"], pending["r"])
            next_url = pending.get("n") or ""
            if not next_url.startswith("/") or next_url.startswith("//"):
                next_url = self.hub.base_url + "home"
            self.redirect(next_url)

    return MFAStepHandler


# -- the authenticator ---------------------------------------------------------------------------------

class EnclaveOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator + verified id_token + enclave account mapping + enclave TOTP step."""

    login_handler = EnclaveOIDCLoginHandler
    callback_handler = EnclaveOIDCCallbackHandler
    logout_handler = EnclaveOIDCLogoutHandler

    enclave_settings = AnyTrait(help="enclave.settings.Settings of this enclave (set by hub.auth.oidc.configure).").tag(
        config=True)
    oidc_issuer = Unicode(help="Issuer every id_token must name (iss).").tag(config=True)
    jwks_uri = Unicode(help="Where the issuer publishes its signing keys.").tag(config=True)
    mfa_amr_values = List(Unicode(), help="amr values that count as MFA done at the IdP.").tag(config=True)
    mfa_acr_values = List(Unicode(), help="acr values that count as MFA done at the IdP.").tag(config=True)
    pending_seconds = Float(300.0, help="Seconds a person has to enter the TOTP after the IdP.").tag(config=True)
    # Allow decisions come from the enclave database (check_allowed), not from allowed_users.
    any_allow_config = Bool(True)

    _jwks: dict | None = None
    _jwks_at: float = 0.0

    async def _keys(self, refresh: bool = False) -> dict:
        if refresh or self._jwks is None or time.monotonic() - self._jwks_at > JWKS_CACHE_SECONDS:
            self._jwks = await self.httpfetch(self.jwks_uri, label="fetching the IdP's signing keys",
                                              method="GET", headers={"Accept": "application/json"},
                                              validate_cert=self.validate_server_cert)
            self._jwks_at = time.monotonic()
        return self._jwks

    async def verified_claims(self, id_token: str) -> dict:
        """Verify with cached keys, and once more with fresh keys if the key id is new (rotation)."""
        kwargs = {"issuer": self.oidc_issuer, "client_id": self.client_id}
        try:
            return verify_id_token(id_token, await self._keys(), **kwargs)
        except IdTokenRejected as exc:
            if exc.reason != "unknown_kid":
                raise
        return verify_id_token(id_token, await self._keys(refresh=True), **kwargs)

    async def token_to_user(self, token_info):
        """Claims of the verified id_token, completed from userinfo only for the same `sub`."""
        id_token = token_info.get("id_token")
        if not id_token:
            raise IdTokenRejected("The identity provider returned no id_token; it must speak OpenID Connect "
                                  "(scope openid).", reason="no_id_token")
        claims = await self.verified_claims(id_token)
        if isinstance(self.username_claim, str) and self.username_claim not in claims and self.userdata_url:
            info = await super().token_to_user(token_info)
            if info.get("sub") != claims["sub"]:
                raise IdTokenRejected("The identity provider's answers disagree about who signed in.",
                                      detail="userinfo sub mismatch")
            claims = {**info, **claims}  # id_token claims win
        return claims

    async def authenticate(self, handler, data=None, **kwargs):
        """OAuthenticator's flow, then the nonce check; refusals of the IdP's answer are audited."""
        from hub.auth import passwords

        if not isinstance(handler, EnclaveOIDCCallbackHandler):
            # Only the callback knows to hold the login for the TOTP step; any other route (a POST to
            # /hub/login with a stolen code, say) would complete it without one. Fail closed.
            raise _forbidden(PermissionDenied("Sign in with the button on the login page.", reason="wrong_route"))
        source = handler.request.remote_ip
        try:
            auth_model = await super().authenticate(handler, data, **kwargs)
            claims = auth_model["auth_state"][self.user_auth_state_key]
            state_id = _state_id(handler.get_state_cookie())
            if not state_id or claims.get("nonce") != nonce_for(state_id):
                raise IdTokenRejected("The sign-in answer does not belong to this browser session; sign in again.",
                                      detail="nonce mismatch", reason="nonce")
        except IdTokenRejected as exc:
            await passwords.run(record_id_token_refusal, self.enclave_settings, exc, source)
            raise
        auth_model["auth_state"]["enclave"]["source"] = source
        return auth_model

    async def update_auth_model(self, auth_model):
        claims = auth_model["auth_state"][self.user_auth_state_key]
        auth_model["auth_state"]["enclave"] = {
            "sub": claims["sub"],
            "mfa_at_idp": mfa_asserted(claims, self.mfa_amr_values, self.mfa_acr_values),
        }
        return auth_model

    async def get_user_groups(self, auth_state):
        return set()  # groups are the enclave role, set when the login completes

    async def check_allowed(self, username, auth_model=None):
        """Only an existing, active enclave account (see `admit`, which raises on every refusal)."""
        from hub.auth import passwords

        enclave = (auth_model or {}).get("auth_state", {}).get("enclave") if auth_model else None
        if enclave is not None:
            decision = await passwords.run(admit, self.enclave_settings, username, enclave["mfa_at_idp"],
                                           enclave.get("source", ""), enclave["sub"])
            if decision.username == username:
                enclave["decision"] = decision
                auth_model["admin"] = False  # nobody is a JupyterHub admin (hub.auth.roles)
                return True
        return False  # explicit deny: no verified IdP login for an active enclave account

    async def refresh_user(self, user, handler=None, **kwargs):
        """A hub session ends when its enclave account stops being active."""
        from hub.auth import passwords

        if not await passwords.run(_account_active, self.enclave_settings, user.name):
            return False
        return await super().refresh_user(user, handler, **kwargs)

    def get_handlers(self, app):
        from hub.auth import enrolment

        return super().get_handlers(app) + [(r"/mfa", _mfa_handler_class())] + enrolment.handlers(
            self.enclave_settings)


# -- configuration ---------------------------------------------------------------------------------

def configure(c, settings) -> None:
    """Switch the hub to SSO when `[oidc] enabled`; otherwise leave the local login in place."""
    o = settings.oidc
    if not o.enabled:
        return
    from enclave.settings import SettingsError

    missing = [k for k in ("issuer", "client_id", "client_secret") if not getattr(o, k)]
    if missing:
        raise SettingsError(f"[oidc] enabled = true needs {', '.join(missing)}; set them in {settings.source}")
    try:
        meta = discover(o.issuer)
    except EnclaveError as exc:
        raise SettingsError(str(exc)) from None
    a = c.EnclaveOIDCAuthenticator
    c.JupyterHub.authenticator_class = EnclaveOIDCAuthenticator
    a.enclave_settings = settings
    a.oidc_issuer = meta.issuer
    a.jwks_uri = meta.jwks_uri
    a.authorize_url = meta.authorization_endpoint
    a.token_url = meta.token_endpoint
    a.userdata_url = meta.userinfo_endpoint
    a.client_id = o.client_id
    a.client_secret = o.client_secret
    a.scope = ["openid", "profile"]
    a.username_claim = o.username_claim
    a.enable_pkce = True
    a.allow_all = False
    a.login_service = o.display_name
    a.oauth_callback_url = f"{settings.public_url}/hub/oauth_callback"
    a.mfa_amr_values = list(o.mfa_amr_values)
    a.mfa_acr_values = list(o.mfa_acr_values)
    a.pending_seconds = o.mfa_step_minutes * 60
    a.custom_403_message = "Your institutional sign-in was refused for this enclave; ask an administrator."
