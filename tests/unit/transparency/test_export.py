"""Signed exports: a changed copy fails its signature; a rewritten audit history is caught by comparing
an older copy with a newer one, even when the rewriter recomputed every hash of the chain."""

import json

from sqlalchemy import select

from enclave import audit, db
from enclave.models import AuditEvent, AuditHead


def _export(cli, path):
    code, _, err = cli("transparency", "export", "-o", str(path))
    assert code == 0, err
    return json.loads(path.read_text())


def _rewrite_history(db_url, seq):
    """What an operator with database access could do: edit event `seq` and re-chain everything after it,
    so `enclave audit verify` still passes."""
    with db.transaction(db_url) as s:
        events = list(s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars())
        prev = audit.GENESIS
        for ev in events:
            if ev.seq == seq:
                ev.detail = json.dumps({"rewritten": True})
            ev.prev_hash = prev
            ev.hash = audit._digest(ev.seq, audit._ts(ev.ts), ev.actor, ev.action, ev.target, ev.detail, prev)
            prev = ev.hash
        s.execute(select(AuditHead)).scalar_one().hash = prev
    with db.transaction(db_url) as s:
        assert audit.verify(s).ok


def test_a_rewritten_history_is_caught_by_comparing_exports(cli, tmp_path, enclave_env):
    (tmp_path / "d").mkdir()
    assert cli("project", "create", "cardio", "--data", str(tmp_path / "d"), "--purpose", "Heart failure")[0] == 0
    first = _export(cli, tmp_path / "1.json")
    assert first["register"]["audit"]["chain_verified"] is True
    assert first["register"]["projects"][0]["purpose"] == "Heart failure"
    assert cli("project", "suspend", "cardio")[0] == 0
    _export(cli, tmp_path / "2.json")
    code, out, _ = cli("transparency", "compare", str(tmp_path / "1.json"), str(tmp_path / "2.json"))
    assert code == 0 and "continues the older one" in out

    _rewrite_history(enclave_env.db_url, 1)  # the project's creation, before the first export
    _export(cli, tmp_path / "3.json")
    for older in ("1.json", "2.json"):
        code, out, _ = cli("transparency", "compare", str(tmp_path / older), str(tmp_path / "3.json"))
        assert code == 1 and "REWRITTEN" in out, out


def test_a_changed_copy_fails_its_signature(cli, tmp_path):
    env = _export(cli, tmp_path / "1.json")
    code, _, _ = cli("transparency", "verify", str(tmp_path / "1.json"))
    assert code == 0
    env["register"]["projects"] = [{"project": "invented"}]
    (tmp_path / "changed.json").write_text(json.dumps(env))
    code, _, err = cli("transparency", "verify", str(tmp_path / "changed.json"))
    assert code == 2 and "changed after signing" in err
    code, _, err = cli("transparency", "compare", str(tmp_path / "1.json"), str(tmp_path / "changed.json"))
    assert code == 2 and "changed after signing" in err


def test_a_copy_signed_by_another_key_or_broken_is_refused(cli, tmp_path):
    env = _export(cli, tmp_path / "1.json")
    code, out, _ = cli("transparency", "public-key")
    assert code == 0 and out.strip() == env["signature"]["public_key"]
    other = "A" * 43 + "="
    code, _, err = cli("transparency", "verify", str(tmp_path / "1.json"), "--public-key", other)
    assert code == 2 and "another key" in err
    (tmp_path / "junk.json").write_text("{not json")
    code, _, err = cli("transparency", "verify", str(tmp_path / "junk.json"))
    assert code == 2 and "cannot be read as JSON" in err
    (tmp_path / "empty.json").write_text("{}")
    code, _, err = cli("transparency", "verify", str(tmp_path / "empty.json"))
    assert code == 2 and "not a signed transparency export" in err
    second = _export(cli, tmp_path / "2.json")
    assert second["register"]["generated_at"] >= env["register"]["generated_at"]
    code, _, err = cli("transparency", "compare", str(tmp_path / "2.json"), str(tmp_path / "1.json"))
    assert code != 0  # given in the wrong order, a copy never passes for a continuation
