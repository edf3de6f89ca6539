"""Enrolment by one-time link: the person sets a password (unless SSO does the first factor), scans a
TOTP seed and proves it with a first code, then sees 10 recovery codes once.

Service functions (`open_link`, `start`, `complete`) change the database, each change
audited; `EnrolHandler` is the page at /hub/enrol/<token>, registered by the authenticator's
`get_handlers` (`handlers()` gives the list to any authenticator that needs them).
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import accounts, audit, clock, secrets_store
from enclave.errors import EnclaveError, Invalid, NotFound
from enclave.models import Account, AccountStatus, EnrolmentToken

from hub.auth import mfa, passwords

MIN_PASSWORD_LENGTH = 12
_TOKEN_IN_PATH = re.compile(r"/enrol/[^/?#]+")


class LinkGone(EnclaveError):
    """The link existed but can no longer be used (used, expired, replaced or account disabled)."""

    reason = "link_gone"
    status = 410


@dataclass
class EnrolmentView:
    username: str
    secret: str
    uri: str
    needs_password: bool


def open_link(session: Session, token: str) -> tuple[Account, EnrolmentToken]:
    """The account behind a usable link, or a refusal that says why the link does not work."""
    row = session.execute(
        select(EnrolmentToken).where(EnrolmentToken.token_hash == accounts.token_hash(token or ""))
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("This enrolment link is not valid. Check that you copied all of it, "
                       "or ask an administrator for a new one.")
    if row.used_at is not None:
        raise LinkGone("This enrolment link has already been used or was replaced by a newer one. "
                       "Ask an administrator for a new link if you still need to enrol.")
    if row.expires_at <= clock.now():
        raise LinkGone("This enrolment link has expired. Ask an administrator for a new one "
                       "(`enclave user reset-mfa`).")
    if row.account.status == AccountStatus.disabled:
        raise LinkGone("This account is disabled; ask an administrator.")
    return row.account, row


def _needs_password(settings) -> bool:
    return not settings.oidc.enabled


def start(session: Session, settings, token: str) -> EnrolmentView:
    """Show the pending seed, creating it on first visit (stored encrypted, so a reload shows it again)."""
    account, _ = open_link(session, token)
    keyring = secrets_store.mfa_keyring(settings.state_dir)
    if account.totp_secret is None:
        account.totp_secret = mfa.encrypt(keyring, mfa.new_secret())
        account.totp_last_counter = 0
    secret = mfa.decrypt(keyring, account.totp_secret)
    return EnrolmentView(
        username=account.username,
        secret=secret,
        uri=mfa.provisioning_uri(secret, account.username, settings.auth.totp_issuer),
        needs_password=_needs_password(settings),
    )


def check_password_policy(username: str, password: str, confirm: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise Invalid(f"Choose a password of at least {MIN_PASSWORD_LENGTH} characters.", reason="weak_password")
    if password != confirm:
        raise Invalid("The two passwords differ; type the same password twice.", reason="password_mismatch")
    if password.strip().lower() == username.lower():
        raise Invalid("The password must not be your user name.", reason="weak_password")


def complete(
    session: Session, settings, token: str, *, password: str = "", password_confirm: str = "", otp: str = "",
    source: str = "",
) -> list[str]:
    """Finish enrolment; returns the 10 recovery codes (to show once). Raises and changes nothing on bad input."""
    account, row = open_link(session, token)
    if account.totp_secret is None:
        raise Invalid("Open the enrolment link again to see your code, then try again.", reason="no_secret")
    if _needs_password(settings):
        check_password_policy(account.username, password, password_confirm)
    keyring = secrets_store.mfa_keyring(settings.state_dir)
    result = mfa.check_totp(account, otp, keyring)
    if result is not mfa.CodeCheck.ok:
        raise Invalid("That code does not match. Enter the 6-digit code your authenticator app shows now "
                      "(check that the phone's clock is right).", reason="bad_otp")
    now = clock.now()
    account.password_hash = passwords.hash_password(settings, password) if _needs_password(settings) else None
    account.status = AccountStatus.active
    account.enrolled_at = now
    account.failed_logins = 0
    account.locked_until = None
    row.used_at = now
    codes = mfa.new_recovery_codes(session, account)
    audit.record(session, account.username, "user.enrol", account.username,
                 {"source": source, "password": _needs_password(settings)})
    return codes


def qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code, made here (no external service sees the seed)."""
    import qrcode
    from qrcode.image.svg import SvgPathImage

    img = qrcode.make(uri, image_factory=SvgPathImage, box_size=8, border=2)
    buf = io.BytesIO()
    img.save(buf)
    svg = buf.getvalue().decode()
    if svg.startswith("<?xml"):
        svg = svg.split("?>", 1)[1]
    return svg.strip()


def qr_data_uri(uri: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(uri).encode()).decode()


# -- the page -------------------------------------------------------------------------------------

def _handler_class():
    from jupyterhub.handlers.base import BaseHandler

    from hub.auth.login import write_transaction

    class EnrolHandler(BaseHandler):
        """GET shows seed + form; POST completes enrolment and shows the recovery codes once."""

        def initialize(self, enclave_settings=None):
            self.enclave_settings = enclave_settings

        async def prepare(self):
            # The token is a credential until used: keep it out of the hub's access and error logs.
            self.request.uri = _TOKEN_IN_PATH.sub("/enrol/[token]", self.request.uri)
            self.request.path = _TOKEN_IN_PATH.sub("/enrol/[token]", self.request.path)
            await super().prepare()

        def _view(self, token):
            s = self.enclave_settings
            with write_transaction(s.database_url) as session:
                return start(session, s, token)

        async def _page(self, token, view, error="", status=200):
            self.set_status(status)
            self.set_header("Cache-Control", "no-store")
            html = await self.render_template(
                "enrol.html", token=token, view=view, qr=qr_svg(view.uri), error=error,
                min_password_length=MIN_PASSWORD_LENGTH, xsrf=self.xsrf_token.decode("ascii"),
            )
            self.finish(html)

        async def _gone(self, exc: EnclaveError):
            self.set_status(exc.status)
            self.set_header("Cache-Control", "no-store")
            html = await self.render_template("enrol_done.html", codes=None, error=str(exc))
            self.finish(html)

        async def get(self, token):
            try:
                view = await passwords.run(self._view, token)
            except (NotFound, LinkGone) as exc:
                return await self._gone(exc)
            await self._page(token, view)

        def _complete(self, token, form):
            s = self.enclave_settings
            with write_transaction(s.database_url) as session:
                return complete(session, s, token, source=self.request.remote_ip, **form)

        async def post(self, token):
            form = {
                "password": self.get_body_argument("password", ""),
                "password_confirm": self.get_body_argument("password_confirm", ""),
                "otp": self.get_body_argument("otp", "", strip=True),
            }
            try:
                codes = await passwords.run(self._complete, token, form)
            except (NotFound, LinkGone) as exc:
                return await self._gone(exc)
            except EnclaveError as exc:
                try:
                    view = await passwords.run(self._view, token)
                except (NotFound, LinkGone) as gone:
                    return await self._gone(gone)
                return await self._page(token, view, error=str(exc), status=400)
            self.set_header("Cache-Control", "no-store")
            html = await self.render_template("enrol_done.html", codes=codes, error="")
            self.finish(html)

    return EnrolHandler


def handlers(settings) -> list[tuple]:
    """URL routes (relative to /hub/) of the enrolment page, for any authenticator's get_handlers."""
    return [(r"/enrol/([^/]+)", _handler_class(), {"enclave_settings": settings})]
