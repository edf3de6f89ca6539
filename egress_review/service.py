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


def configure(c, s) -> None:
    services = list(c.JupyterHub.services) if "services" in c.JupyterHub else []
    services = [svc for svc in services if svc.get("name") != NAME] + [service_spec(s)]
    c.JupyterHub.services = services
    scopes = set(c.JupyterHub.extra_user_scopes) if "extra_user_scopes" in c.JupyterHub else set()
    c.JupyterHub.extra_user_scopes = scopes | {ACCESS_SCOPE}
