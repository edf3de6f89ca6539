"""JupyterHub configuration for the enclave, started by `enclave up`.

Everything comes from the enclave settings file (ENCLAVE_CONFIG / ENCLAVE_STATE_DIR set by `enclave up`);
each concern configures its own part through a `configure(c, settings)` function, in the order below,
so this file stays a table of contents.
"""

from enclave import db, secrets_store
from enclave import settings as settings_mod
from hub import hubconfig
from hub.auth import authenticator, oidc, roles, sessions
from hub.services import (
    access_reconciler,
    admin,
    egress,
    egress_guard,
    notifier,
    package_index,
    refusal_reports,
    transparency,
)
from hub.spawn import spawner
from hub.swarm import spawner as swarm

c = get_config()  # noqa: F821 - provided by JupyterHub

s = settings_mod.load()
s.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
secrets_store.ensure_all(s.state_dir)
db.migrate(s.database_url)

CONFIGURERS = [
    hubconfig,  # proxy, database, cookie secret, ports
    spawner,  # per-project notebook containers, hub API address, firewall, idle culler
    swarm,  # [swarm] enabled: the servers as services on verified swarm nodes, each behind a gateway
    egress_guard,  # host guard: kernel meters, its HTTP proxy (HAProxy) and the service keeping the record
    authenticator,  # password + TOTP login, enrolment page
    egress,  # output review service at /services/egress/ (HubOAuth)
    admin,  # [admin] enabled: the admin pages at /services/admin/ (HubOAuth, admins only)
    package_index,  # [packages] enabled: the offline package index on every project gateway
    access_reconciler,  # access-reconciler service: stops servers whose access has ended
    notifier,  # e-mail notifications through the site's SMTP relay ([mail]; off when unset)
    transparency,  # [transparency] enabled: the public register at /services/transparency/ (no login)
    sessions,  # DELETE /hub/api/enclave/sessions/<name>: ending access ends cookies and tokens
    refusal_reports,  # POST /hub/api/enclave/refusals: notebook servers report refused downloads
    oidc,  # [oidc] enabled: institutional SSO + enclave TOTP step (replaces the authenticator)
    roles,  # last: what each enclave role may do (nobody is a hub admin, no user tokens)
]

for configurer in CONFIGURERS:
    configurer.configure(c, s)
