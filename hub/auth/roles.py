"""What each enclave role may do through JupyterHub: its roles and scopes, written out explicitly.

JupyterHub's defaults do not fit an enclave:
- its `admin` role (fixed: JupyterHub refuses to change it) carries `admin:servers`, `access:servers`
  and `tokens` on everyone, so an admin could start a kernel in a researcher's project and read the
  workspace. Nobody in the enclave is a JupyterHub admin (`admin` is False in every auth model and
  `admin_users` is empty); enclave admins get `enclave-admin` below: seeing people and servers, never
  reaching a server, minting a token or editing an account from the hub (people and projects are
  managed through the enclave's own services, which audit every change);
- its `user` role is `self`, which includes `tokens!user` (a logged-in person could mint API tokens
  that never expire and skip the second factor for ever, and tokens can mint tokens) and the sharing
  scopes (a person could hand their server to a non-member). The enclave's `user` role keeps only
  what working in one's own servers needs. Sessions are cookies and OAuth tokens the hub issues at
  login; they end with the session (see hub.auth.sessions).
"""

from __future__ import annotations

from hub.hubconfig import config_list

# Every person: their own servers (start, stop, open), their own account's public facts.
USER_SCOPES = [
    "read:users!user",
    "users:activity!user",
    "servers!user",
    "access:servers!user",
]

# Enclave admins on top: the hub's admin page, people and servers listed (who runs what), nothing more.
ADMIN_ROLE = "enclave-admin"
ADMIN_SCOPES = ["admin-ui", "list:users", "read:users", "read:groups", "read:servers", "read:hub"]

# Scopes no enclave role may hold on other people (checked by a test over every role defined here).
NEVER_ON_OTHERS = ("admin:servers", "access:servers", "servers", "tokens", "admin:users", "shares", "users:shares")


def auth_model(username: str, role: str) -> dict:
    """The user part of a JupyterHub auth model: the enclave role as a group, never a hub admin."""
    return {"name": username, "admin": False, "groups": [role]}


def roles(extra_user_scopes=(), extra_admin_scopes=()) -> list[dict]:
    """The roles; `extra_user_scopes` (what other configurers granted every user, e.g. the review
    service's access scope) join the user role, as JupyterHub ignores them once that role is defined;
    `extra_admin_scopes` (the admin pages' access scope) join the enclave-admin role."""
    user_scopes = list(USER_SCOPES) + sorted(set(extra_user_scopes) - set(USER_SCOPES))
    return [
        {"name": "user", "description": "Enclave person: own servers only", "scopes": user_scopes},
        {"name": ADMIN_ROLE, "description": "Enclave admin: people and servers listed, no data",
         "scopes": list(ADMIN_SCOPES) + list(extra_admin_scopes), "groups": ["admin"]},
    ]


def configure(c, s) -> None:
    """Runs after every other configurer (it reads the extra_user_scopes they set)."""
    extra = set(c.JupyterHub.get("extra_user_scopes") or ())
    from hub.services import admin as admin_pages

    mine = roles(extra, admin_pages.admin_scopes(s))
    names = {r["name"] for r in mine}
    c.JupyterHub.load_roles = [r for r in config_list(c.JupyterHub, "load_roles") if r.get("name") not in names] + mine
    c.Authenticator.admin_users = set()  # (JupyterHub creates the "admin" group the role names if missing)
