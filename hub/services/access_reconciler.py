"""The access-reconciler: a JupyterHub service that runs `enclave.access.reconcile` every
`[spawner] access_check_seconds`, so a server stops once its person or project may no longer run it
(end dates passing, changes made while the hub was down; its first pass runs at hub start).

It authenticates with its API token (state_dir/secrets/access_reconciler_token, registered by
`configure`), whose role allows only listing users, reading and stopping servers and ending sessions.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from pathlib import Path

from enclave import secrets_store
from enclave.access import ACTOR, SERVICE, TOKEN_FILE, reconcile
from enclave.hubapi import HubAPI, HubUnavailable

from hub.auth import sessions
from hub.hubconfig import register_service
from hub.services import start

SCOPES = ["list:users", "read:servers", "delete:servers", sessions.SCOPE]
log = logging.getLogger(SERVICE)


def service_token(state_dir: Path) -> str:
    return secrets_store.ensure_file(state_dir, TOKEN_FILE, lambda: secrets.token_hex(32).encode()).decode().strip()


def configure(c, s) -> None:
    """Register the access-reconciler service, its token and its minimal role with the hub."""
    register_service(c, s, {
        "name": SERVICE,
        "command": [sys.executable, "-m", "hub.services.access_reconciler"],
        "api_token": service_token(s.state_dir),
    }, SCOPES)


def run_forever(api: HubAPI, db_url: str, interval: float) -> None:
    while True:
        delay = interval
        try:
            outcome = reconcile(api, db_url, ACTOR)
            for rev in outcome.stopped + outcome.still_stopping:
                log.info("stopped %s/%s: %s", rev.user, rev.server, rev.reason)
        except HubUnavailable as exc:  # the hub is still starting (or going away): try again soon
            log.info("%s", exc)
            delay = min(interval, 2.0)
        except Exception:  # noqa: BLE001 - a bad pass (database down...) must not end the service
            log.exception("access check failed; next try in %s s", interval)
        time.sleep(delay)


def main() -> int:
    s, api = start("python -m hub.services.access_reconciler", SERVICE, __doc__.splitlines()[0])
    log.info("checking running notebook servers every %s s", s.spawner.access_check_seconds)
    try:
        run_forever(api, s.database_url, float(s.spawner.access_check_seconds))
    except KeyboardInterrupt:  # the hub interrupts its services when it shuts down
        log.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
