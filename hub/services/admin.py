"""Registers the admin pages (`python -m admin`) as a JupyterHub managed service at /services/admin/.

Like the review service, it gets its OAuth client from the hub and skips the consent page (the hub's
login with MFA is what matters). Only the enclave-admin role holds its access scope (hub/auth/roles.py
adds ACCESS_SCOPE to that role), and the service itself lets in admin accounts only.
"""

from __future__ import annotations

import sys

from hub.hubconfig import register_service

NAME = "admin"
ACCESS_SCOPE = f"access:services!service={NAME}"


def admin_scopes(s) -> list[str]:
    """What the admin role needs from this service (nothing when it is off)."""
    return [ACCESS_SCOPE] if s.admin.enabled else []


def configure(c, s) -> None:
    if s.admin.enabled:
        register_service(c, s, {
            "name": NAME, "url": f"http://127.0.0.1:{s.admin.port}", "display": False,
            "info": {"description": "Administration: people, projects, datasets, audit log"},
            "command": [sys.executable, "-m", "admin"], "oauth_no_confirm": True,
        })
