"""`enclave mfa rotate-key`: new MFA key first, every TOTP seed re-encrypted with it in one transaction."""

from __future__ import annotations

from enclave import audit, db, secrets_store
from enclave.cli.context import load
from enclave.cli.util import actor

from hub.auth import mfa


def register(sub) -> None:
    p = sub.add_parser("mfa", help="MFA key management")
    s = p.add_subparsers(dest="mfa_cmd", required=True)
    s.add_parser("rotate-key", help="add a new key for TOTP seeds and re-encrypt every seed with it; "
                 "older keys stay readable until removed from state_dir/secrets/mfa.keys").set_defaults(func=_rotate)


def _rotate(args) -> int:
    s = load(args)
    keys = secrets_store.rotate_mfa_key(s.state_dir)
    with db.transaction(s.database_url) as session:
        n = mfa.rotate_key(session, s.state_dir, secrets_store.mfa_keyring)
        audit.record(session, actor(), "mfa.rotate_key", "", {"seeds": n, "keys": keys})
    print(f"new MFA key in use; {n} TOTP seed(s) re-encrypted; {keys} key(s) in "
          f"{secrets_store.secrets_dir(s.state_dir) / 'mfa.keys'} (the old ones can be removed now)")
    return 0
