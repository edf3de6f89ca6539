"""Registers the review service with JupyterHub (a CONFIGURERS entry in hub/jupyterhub_config.py).

The hub starts it as a managed service at /services/egress/ (so its lifecycle follows the hub's and it
gets its OAuth client and API token from the hub), passes the enclave settings location through, skips
the OAuth consent page (the hub login with MFA is the consent that matters) and lets every user reach
it with the `access:services!service=egress` scope; what each person may do is decided by the service
from the enclave `accounts` table.
"""

from __future__ import annotations

import os
import sys

NAME = "egress"
ACCESS_SCOPE = f"access:services!service={NAME}"


def service_spec(s) -> dict:
    env = {k: os.environ[k] for k in ("ENCLAVE_CONFIG", "ENCLAVE_STATE_DIR") if os.environ.get(k)}
    env.setdefault("ENCLAVE_STATE_DIR", str(s.state_dir))
    return {
        "name": NAME,
        "display": True,
        "info": {"description": "Ask for outputs to be released; review outputs (stewards)"},
        "url": f"http://{s.egress.bind}:{s.egress.port}",
        "command": [sys.executable, "-m", "egress_review"],
        "environment": env,
        "oauth_no_confirm": True,
    }


def _current(section, key, empty):
    value = section[key] if key in section else empty
    if hasattr(value, "get_value"):  # traitlets LazyConfigValue from an earlier .append()/.add()
        value = value.get_value(empty)
    return value


def configure(c, s) -> None:
    services = [svc for svc in _current(c.JupyterHub, "services", []) if svc.get("name") != NAME]
    c.JupyterHub.services = services + [service_spec(s)]
    c.JupyterHub.extra_user_scopes = set(_current(c.JupyterHub, "extra_user_scopes", set())) | {ACCESS_SCOPE}
