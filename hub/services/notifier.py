"""The notifier: a JupyterHub managed service that sends the e-mail notifications people are owed
(enclave.notify) through the site's SMTP relay, every `[mail] send_seconds`.

With `[mail] smtp_host` empty it sends nothing and drops what is queued, so nothing piles up. A relay
that fails leaves the messages queued for the next pass (up to enclave.notify.MAX_ATTEMPTS).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from enclave import clock, db, mailer, notify, secrets_store
from enclave import settings as settings_mod

from hub.hubconfig import register_service

SERVICE = "notifier"
log = logging.getLogger(SERVICE)


def configure(c, s) -> None:
    register_service(c, s, {"name": SERVICE, "command": [sys.executable, "-m", "hub.services.notifier"]})


def one_pass(s, transport) -> tuple[int, int]:
    """Send (or, with mail off, drop) what is due; (sent, failed)."""
    with db.transaction(s.database_url) as session:
        if transport is None:
            dropped = notify.drop_unsent(session)
            if dropped:
                log.info("mail is off ([mail] smtp_host): dropped %d notification(s)", dropped)
            return 0, 0
        return notify.send_due(session, transport, clock.now(), s.mail.digest_hour, s.public_url)


def main() -> int:
    argparse.ArgumentParser(prog="python -m hub.services.notifier", description=__doc__.splitlines()[0]).parse_args()
    logging.basicConfig(level=logging.INFO, format=f"[%(levelname).1s %(asctime)s {SERVICE}] %(message)s")
    s = settings_mod.load()
    transport = mailer.smtp_transport(s.mail, secrets_store.secrets_dir(s.state_dir)) if s.mail.enabled else None
    log.info("mail %s", f"through {s.mail.smtp_host}:{s.mail.smtp_port}" if transport else "off")
    try:
        while True:
            try:
                sent, failed = one_pass(s, transport)
                if sent or failed:
                    log.info("sent %d message(s), %d failed (kept for a retry)", sent, failed)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the service
                log.exception("notification pass failed")
            time.sleep(s.mail.send_seconds)
    except KeyboardInterrupt:  # the hub interrupts its services when it shuts down
        log.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
