"""EnclaveAuthenticator: JupyterHub's login form with password + TOTP, decided by hub.auth.login.

JupyterHub runs authenticate -> normalize_username -> check_blocked_users -> check_allowed ->
post_auth_hook; refusals are raised as HTTPError(403, message), which JupyterHub's LoginHandler shows
on the re-rendered login form. `check_allowed` ends in an explicit deny for anything that is not an
active enclave account. Roles become JupyterHub groups (researcher / steward / admin), whose scopes
hub.auth.roles sets; nobody is a JupyterHub admin.
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Any, Bool, Unicode

from enclave import accounts, db
from enclave.models import AccountStatus

from hub.auth import enrolment, login, passwords, roles, sessions


class EnclaveAuthenticator(Authenticator):
    request_otp = Bool(True, help="Always ask for the second factor on the login form.").tag(config=True)
    otp_prompt = Unicode("Code from your authenticator app (or a recovery code)").tag(config=True)
    enclave_settings = Any(help="enclave.settings.Settings of this enclave (set by hub.auth.authenticator.configure)").tag(
        config=True
    )

    # Allow decisions come from the enclave database, not from allowed_users.
    any_allow_config = Bool(True)

    async def authenticate(self, handler, data):
        s = self.enclave_settings
        try:
            who = await passwords.run(
                login.password_login, s, data.get("username", ""), data.get("password", ""),
                data.get("otp", ""), handler.request.remote_ip,
            )
        except login.LoginRefused as exc:
            self.log.warning("Login refused: %s", exc.detail)
            await sessions.after_refused_login(handler, exc, s.database_url)
            raise _forbidden(str(exc)) from None
        return {
            **roles.auth_model(who.username, who.role),
            # what password_login just established, in the same request; check_allowed reads it
            "user_info": {"enclave_status": AccountStatus.active.value},
        }

    def _active(self, username: str) -> bool:
        with db.transaction(self.enclave_settings.database_url) as session:
            return accounts.may_act(session, username)

    async def check_allowed(self, username, authentication=None):
        info = (authentication or {}).get("user_info") or {}
        if info.get("enclave_status") == AccountStatus.active.value and authentication.get("name") == username:
            return True  # decided by password_login moments ago, inside its write transaction
        if await db.off_loop(self._active, username):
            return True
        return False  # explicit deny: not an active enclave account

    async def refresh_user(self, user, handler=None):
        """Every `[auth] recheck_seconds` a session re-checks its account: disabled, reset or deleted
        accounts lose access to a session they already had (the person must log in again)."""
        if await db.off_loop(self._active, user.name):
            return True
        self.log.warning("Session of %s ended: the enclave account is no longer active", user.name)
        return False

    def get_handlers(self, app):
        return super().get_handlers(app) + enrolment.handlers(self.enclave_settings)


def _forbidden(message: str) -> web.HTTPError:
    # No format args are passed, so tornado shows the message exactly as written.
    return web.HTTPError(403, message)


def configure(c, settings) -> None:
    c.EnclaveAuthenticator.enclave_settings = settings
    c.JupyterHub.authenticator_class = EnclaveAuthenticator
    c.Authenticator.manage_groups = True
    c.Authenticator.enable_auth_state = False
    c.Authenticator.auth_refresh_age = settings.auth.recheck_seconds
    c.Authenticator.refresh_pre_spawn = True
    # After login people choose a project on the home page; nothing spawns on its own.
    c.JupyterHub.default_url = "/hub/home"
