"""JupyterHub configuration for the enclave, started by `enclave up`.

Everything comes from the enclave settings file (ENCLAVE_CONFIG / ENCLAVE_STATE_DIR set by `enclave up`);
each concern configures its own part through a `configure(c, settings)` function, in the order below,
so this file stays a table of contents.
"""

import importlib

from hub import db, secrets_store
from hub import settings as settings_mod

c = get_config()  # noqa: F821 - provided by JupyterHub

s = settings_mod.load()
s.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
secrets_store.ensure_all(s.state_dir)
db.migrate(s.database_url)

CONFIGURERS = [
    "hub.hubconfig",  # proxy, database, cookie secret, ports
    "hub.spawner",  # per-project notebook containers, hub API address, firewall, idle culler
    "hub.authenticator",  # password + TOTP login, enrolment page
    "egress_review.service",  # output review service at /services/egress/ (HubOAuth)
    "hub.revocation",  # access-reconciler service: stops servers whose access has ended
    "hub.sessions",  # DELETE /hub/api/enclave/sessions/<name>: ending access ends cookies and tokens
    "hub.download_refusals",  # POST /hub/api/enclave/refusals: notebook servers report refused downloads
    "hub.oidc",  # [oidc] enabled: institutional SSO + enclave TOTP step (replaces the authenticator)
    "hub.roles",  # last: what each enclave role may do (nobody is a hub admin, no user tokens)
]

for name in CONFIGURERS:
    importlib.import_module(name).configure(c, s)
