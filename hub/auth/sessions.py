"""Ending a person's access ends their sessions: every hub cookie and every token, at once.

JupyterHub re-checks a cookie session only every `auth_refresh_age`, and never ends a token-authenticated
one ("keep using the stale auth", handlers/base.py), so a disabled account would keep its open browser
session and its tokens. Here the enclave ends them in the hub's own database:

- every API and OAuth token of the person is deleted (the OAuth tokens are what the person's notebook
  servers and the review service accept), and
- the person's `cookie_id` is replaced, so every hub login cookie they hold stops naming anyone.

Two callers: the CLI commands that end access (`enclave user disable|reset-mfa`, `enclave project
remove-member`) through `DELETE /hub/api/enclave/sessions/<name>` with the access-reconciler's token
(custom scope below), and a login that locks an account (password form or the SSO code step), in the
hub process. Servers are stopped by enclave.access (the start rule decides), or here for a lockout.
"""

from __future__ import annotations

import json

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.utils import new_token
from tornado import web

from enclave import db

from hub.auth.login import record_event
from hub.hubconfig import config_list

ROUTE = r"/api/enclave/sessions/([^/]+)"  # JupyterHub puts it under /hub/
SCOPE = "custom:enclave:end-sessions"
ACTION = "account.sessions_ended"


def end_in_hub_db(hub_db, user) -> int:
    """Delete the person's tokens and replace their cookie id in JupyterHub's database; tokens deleted."""
    tokens = list(user.orm_user.api_tokens)
    for token in tokens:
        hub_db.delete(token)
    user.orm_user.cookie_id = new_token()
    hub_db.commit()
    return len(tokens)


async def end_all(handler, username: str, actor: str, reason: str, db_url: str, *, stop_servers: bool) -> dict:
    """End `username`'s hub sessions and tokens (and, if asked, servers); audit it. From a hub handler."""
    user = handler.find_user(username)
    if user is None:  # never logged in: nothing to end
        return {"tokens": 0, "servers": []}
    tokens = end_in_hub_db(handler.db, user)
    stopped = []
    if stop_servers:
        for name, spawner in list(user.spawners.items()):
            if spawner.active:
                await handler.stop_single_user(user, name)
                stopped.append(name)
                await db.off_loop(record_event, db_url, actor, "notebook.revoked", name,
                                  {"user": username, "reason": reason})
    detail = {"reason": reason, "tokens": tokens, "cookies": "all"}
    if stopped:
        detail["servers"] = stopped
    await db.off_loop(record_event, db_url, actor, ACTION, username, detail)
    return {"tokens": tokens, "servers": stopped}


async def after_refused_login(handler, refusal, db_url: str) -> None:
    """A login refusal that locked the account (someone is guessing): its open sessions end too."""
    if getattr(refusal, "locked_account", None):
        await end_all(handler, refusal.locked_account, "system:lockout", "account_locked", db_url, stop_servers=True)


class EndSessionsHandler(APIHandler):
    """DELETE /hub/api/enclave/sessions/<name>?reason=&actor= with a token holding SCOPE."""

    def initialize(self, db_url: str):
        self.enclave_db_url = db_url

    async def delete(self, name: str):
        if SCOPE not in (self.expanded_scopes or set()):
            raise web.HTTPError(403, "only the enclave's access service may end sessions")
        reason = (self.get_argument("reason", "") or "access_ended")[:64]
        actor = (self.get_argument("actor", "") or "service:access-reconciler")[:128]
        done = await end_all(self, name, actor, reason, self.enclave_db_url, stop_servers=False)
        self.finish(json.dumps(done))


def configure(c, s) -> None:
    """Add the endpoint and its scope to the hub."""
    handlers = [h for h in config_list(c.JupyterHub, "extra_handlers") if h[0] != ROUTE]
    c.JupyterHub.extra_handlers = handlers + [(ROUTE, EndSessionsHandler, {"db_url": s.database_url})]
    c.JupyterHub.custom_scopes = {
        **dict(c.JupyterHub.get("custom_scopes") or {}),
        SCOPE: {"description": "End every hub session and token of a person (enclave access changes)."},
    }
