"""The JupyterHub roles the enclave defines: nobody reaches other people's servers or mints tokens."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from hub.auth import roles


def test_no_role_holds_a_scope_on_other_people_that_reaches_data_or_tokens():
    for role in roles.roles():
        unfiltered = {s for s in role["scopes"] if "!" not in s}
        assert not unfiltered & set(roles.NEVER_ON_OTHERS), role
        assert "self" not in role["scopes"] and "inherit" not in role["scopes"], role  # no blanket expansions


def test_the_user_role_works_only_on_ones_own_servers_and_mints_no_token():
    user = next(r for r in roles.roles() if r["name"] == "user")
    assert all(s.endswith("!user") for s in user["scopes"])
    assert not any(s.startswith(("tokens", "shares", "users:shares")) for s in user["scopes"])


@pytest.mark.parametrize("role", ["researcher", "steward", "admin"])
def test_nobody_is_a_jupyterhub_admin(role):
    assert roles.auth_model("ann", role) == {"name": "ann", "admin": False, "groups": [role]}


def test_configure_replaces_the_default_user_role_and_keeps_other_roles():
    c = Config()
    c.JupyterHub.load_roles = [{"name": "idle-culler", "scopes": ["list:users"]}, {"name": "user", "scopes": ["self"]}]
    c.Authenticator.admin_users = {"root"}
    c.JupyterHub.extra_user_scopes = {"access:services!service=egress"}
    from enclave.settings import Settings

    roles.configure(c, Settings())
    roles.configure(c, Settings())  # idempotent
    names = [r["name"] for r in c.JupyterHub.load_roles]
    assert names == ["idle-culler", "user", roles.ADMIN_ROLE]
    assert c.Authenticator.admin_users == set()
    # JupyterHub ignores extra_user_scopes once the user role is defined: they move into it
    user = c.JupyterHub.load_roles[1]
    assert user["scopes"] == roles.USER_SCOPES + ["access:services!service=egress"]
    # only admins may reach the admin pages; with them off, nobody has the scope
    assert c.JupyterHub.load_roles[2]["scopes"] == roles.ADMIN_SCOPES + ["access:services!service=admin"]
    assert "access:services!service=admin" not in user["scopes"]
    c2 = Config()
    roles.configure(c2, Settings({"admin": {"enabled": False}}))
    assert c2.JupyterHub.load_roles[-1]["scopes"] == roles.ADMIN_SCOPES
