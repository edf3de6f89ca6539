"""`enclave transparency export`: a signed copy of the register, recorded in the audit log (so later
exports hold its head as an anchor), after the audit chain is verified."""

from __future__ import annotations

import hashlib

from enclave import audit, db
from enclave.settings import Settings

from transparency import register, signing


def export(settings: Settings, actor: str) -> dict:
    with db.transaction(settings.database_url) as session:
        verdict = audit.verify(session)
        reg = register.build(session, settings)
        reg["audit"]["chain_verified"] = verdict.ok
        envelope = signing.sign(settings.state_dir, reg)
        head = reg["audit"]["head"] or {}
        audit.record(session, actor, register.EXPORT_ACTION, "", {
            "head_seq": head.get("seq"), "head_hash": head.get("hash"),
            "register_sha256": hashlib.sha256(signing.canonical(reg)).hexdigest(),
            "key_id": envelope["signature"]["key_id"]})
    return envelope
