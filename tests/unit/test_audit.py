"""The audit log's hash chain catches edits, deletions and reordering, on SQLite and PostgreSQL."""

import json

import pytest
from sqlalchemy import delete, update

from enclave import audit, db
from enclave.models import AuditEvent

from tests.conftest import BOTH


def _write(url, n=5):
    for i in range(n):
        with db.transaction(url) as s:
            audit.record(s, "tester", "thing.happened", f"t{i}", {"i": i})


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_intact_log_verifies(enclave_env):
    _write(enclave_env.db_url)
    with db.transaction(enclave_env.db_url) as s:
        v = audit.verify(s)
    assert v.ok and v.events == 5


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_edited_row_is_named(enclave_env, cli):
    _write(enclave_env.db_url)
    with db.transaction(enclave_env.db_url) as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="mallory"))
    code, out, err = cli("audit", "verify")
    assert code == 1
    assert "BROKEN at event 3" in err and "edited" in err


@pytest.mark.parametrize(
    "tamper, first_bad",
    [
        (lambda s: s.execute(delete(AuditEvent).where(AuditEvent.seq == 2)), 2),
        (lambda s: s.execute(delete(AuditEvent).where(AuditEvent.seq == 5)), 5),
        (lambda s: s.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(detail='{"i":99}')), 4),
    ],
    ids=["deleted-middle", "deleted-tail", "edited-detail"],
)
def test_tampering_is_caught(enclave_env, tamper, first_bad):
    _write(enclave_env.db_url)
    with db.transaction(enclave_env.db_url) as s:
        tamper(s)
    with db.transaction(enclave_env.db_url) as s:
        v = audit.verify(s)
    assert not v.ok and v.first_bad == first_bad


def test_reordered_rows_are_caught(enclave_env):
    _write(enclave_env.db_url)
    with db.transaction(enclave_env.db_url) as s:
        a, b = s.get(AuditEvent, 2), s.get(AuditEvent, 3)
        fields = ("ts", "actor", "action", "target", "detail", "prev_hash", "hash")
        va, vb = [getattr(a, f) for f in fields], [getattr(b, f) for f in fields]
        for f, x, y in zip(fields, vb, va):
            setattr(a, f, x)
            setattr(b, f, y)
    with db.transaction(enclave_env.db_url) as s:
        v = audit.verify(s)
    assert not v.ok and v.first_bad == 2


def test_event_rolls_back_with_its_change(enclave_env):
    with pytest.raises(RuntimeError):
        with db.transaction(enclave_env.db_url) as s:
            audit.record(s, "tester", "doomed")
            raise RuntimeError("crash mid-change")
    with db.transaction(enclave_env.db_url) as s:
        assert audit.verify(s).events == 0


def test_export_is_json_lines(enclave_env, cli, tmp_path):
    _write(enclave_env.db_url, 3)
    out = tmp_path / "audit.jsonl"
    assert cli("audit", "export", "-o", str(out))[0] == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[1]["prev_hash"] == rows[0]["hash"] and rows[2]["detail"] == {"i": 2}


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_a_log_being_written_verifies_while_it_grows(enclave_env):
    """A running enclave appends while `enclave audit verify` reads (the hub, the guard service every few
    seconds): a read that sees the events before the head moved must not be taken for a cut-off tail."""
    import threading

    _write(enclave_env.db_url, 3)
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            with db.transaction(enclave_env.db_url) as s:
                audit.record(s, "service:test", "test.tick", "t", {})

    t = threading.Thread(target=writer)
    t.start()
    try:
        verdicts = []
        for _ in range(40):
            with db.transaction(enclave_env.db_url) as s:
                verdicts.append(audit.verify(s))
    finally:
        stop.set()
        t.join()
    assert all(v.ok for v in verdicts), [v for v in verdicts if not v.ok][:3]
    with db.transaction(enclave_env.db_url) as s:
        assert audit.verify(s).ok and audit.verify(s).events > 3
