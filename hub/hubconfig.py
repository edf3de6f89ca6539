"""The hub's own plumbing: where it listens, its database and secrets, the proxy it runs."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from enclave.secrets_store import secrets_dir

_REPO = Path(__file__).resolve().parent.parent


def proxy_command() -> list[str]:
    local = _REPO / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return [str(local)]
    found = shutil.which("configurable-http-proxy")
    if not found:
        raise RuntimeError("configurable-http-proxy is not installed: run `make up` (npm ci) first")
    return [found]


def config_list(section, key: str) -> list:
    """A list setting as a plain list, whether other configurers set it or `.append()`ed to it (which
    leaves a traitlets LazyConfigValue); for configurers that add to `services`, `load_roles`..."""
    value = section[key] if key in section else []
    if hasattr(value, "get_value"):
        value = value.get_value([])
    return list(value)


def register_service(c, s, spec: dict, scopes: list[str] | None = None) -> None:
    """Add (or replace) a managed service: it gets the enclave settings' location in its environment, and,
    with `scopes`, a role of exactly those scopes (its API token comes in `spec`)."""
    import os

    env = {k: os.environ[k] for k in ("ENCLAVE_CONFIG", "ENCLAVE_STATE_DIR") if os.environ.get(k)}
    env.setdefault("ENCLAVE_STATE_DIR", str(s.state_dir))
    name = spec["name"]
    services = [svc for svc in config_list(c.JupyterHub, "services") if svc.get("name") != name]
    c.JupyterHub.services = services + [{"environment": env, **spec}]
    if scopes is not None:
        roles = [r for r in config_list(c.JupyterHub, "load_roles") if r.get("name") != name]
        c.JupyterHub.load_roles = roles + [{"name": name, "scopes": list(scopes), "services": [name]}]


def use_wal(db_url: str) -> None:
    """Put JupyterHub's own SQLite file in WAL mode (a persistent property of the file): a commit
    then appends to the log instead of rewriting pages under a rollback journal, which is most of
    the hub's time per login on SQLite. Other databases are left as they are."""
    if not db_url.startswith("sqlite:///"):
        return
    path = Path(db_url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def configure(c, s) -> None:
    secrets = secrets_dir(s.state_dir)
    c.JupyterHub.bind_url = f"http://{s.hub.bind}:{s.hub.port}"
    c.JupyterHub.hub_port = s.hub.api_port
    c.JupyterHub.db_url = s.hub_db_url
    use_wal(s.hub_db_url)
    c.JupyterHub.cookie_secret_file = str(secrets / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.auth_token = (secrets / "proxy_auth_token").read_text().strip()
    c.ConfigurableHTTPProxy.command = proxy_command()
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.hub.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(s.state_dir / "jupyterhub-proxy.pid")
    c.JupyterHub.pid_file = str(s.state_dir / "jupyterhub.pid")
    c.JupyterHub.template_paths = [str(Path(__file__).resolve().parent / "templates")]
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.cleanup_servers = True
