"""The append-only, hash-chained audit log.

Every event's hash is sha256 over its sequence number, time, actor, action, target, canonical detail
JSON and the previous event's hash. Editing, deleting or reordering any row breaks the chain at that
row; the single `audit_head` row (updated in the same transaction as each event) names the last event,
so cutting off the tail is caught too, and it serialises concurrent writers on PostgreSQL (row lock).
`record` must be called inside the transaction of the change it describes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import clock
from enclave.models import AuditEvent, AuditHead

GENESIS = "0" * 64


def _canonical(detail: dict[str, Any] | None) -> str:
    return json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), default=str)


def _digest(seq: int, ts: str, actor: str, action: str, target: str, detail: str, prev: str) -> str:
    payload = json.dumps([seq, ts, actor, action, target, detail, prev], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def _ts(value) -> str:
    return value.isoformat(timespec="microseconds")


def record(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (commits or rolls back with the change)."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    seq = head.seq + 1
    ts = clock.now()
    detail_json = _canonical(detail)
    digest = _digest(seq, _ts(ts), actor, action, target, detail_json, head.hash)
    event = AuditEvent(
        seq=seq, ts=ts, actor=actor, action=action, target=target,
        detail=detail_json, prev_hash=head.hash, hash=digest,
    )
    session.add(event)
    head.seq, head.hash = seq, digest
    session.flush()
    return event


@dataclass
class Verdict:
    ok: bool
    events: int
    first_bad: int | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit log intact: {self.events} events, chain verified"
        return f"audit log BROKEN at event {self.first_bad}: {self.reason}"


def _head(session: Session) -> tuple[int, str]:
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    return (head.seq, head.hash) if head else (0, GENESIS)


def verify(session: Session, tries: int = 5) -> Verdict:
    """Walk the chain in order; name the first event that does not fit.

    A running enclave appends while this reads (the hub, the guard service), and on SQLite each read
    sees the latest commit: the head is read before and after the walk, and a walk during which it
    moved is done again, so only a log that is wrong while nothing writes is reported. When writers
    never pause (a busy machine), the last walk judges the log up to the head read before it."""
    for _ in range(max(1, tries)):
        before = _head(session)
        verdict = _walk(session, before)
        if _head(session) == before:
            return verdict
        session.expire_all()
    return _walk(session, before, upto_head=True)


def _walk(session: Session, head: tuple[int, str], upto_head: bool = False) -> Verdict:
    prev = GENESIS
    expected = 1
    count = 0
    query = select(AuditEvent).order_by(AuditEvent.seq)
    if upto_head:  # events appended after `head` was read are not this walk's to judge
        query = query.where(AuditEvent.seq <= head[0])
    for ev in session.execute(query).scalars():
        if ev.seq != expected:
            return Verdict(False, count, expected, f"event {expected} is missing (next is {ev.seq})")
        if ev.prev_hash != prev:
            return Verdict(False, count, ev.seq, "its link to the previous event does not match (reordered or previous edited)")
        digest = _digest(ev.seq, _ts(ev.ts), ev.actor, ev.action, ev.target, ev.detail, ev.prev_hash)
        if digest != ev.hash:
            return Verdict(False, count, ev.seq, "its content does not match its hash (edited)")
        prev = ev.hash
        expected += 1
        count += 1
    head_seq, head_hash = head
    if head_seq != count or head_hash != prev:
        return Verdict(False, count, count + 1, f"the log ends at event {count} but the head names event {head_seq} (tail deleted?)")
    return Verdict(True, count)


def head_event(session: Session) -> AuditEvent | None:
    """The last event (None for an empty log)."""
    return session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one_or_none()


def hashes_at(session: Session, seqs: list[int]) -> dict[int, str]:
    """The hash of each of these events (those that exist), for publishing anchors of the chain."""
    out: dict[int, str] = {}
    wanted = sorted(set(seqs))
    for i in range(0, len(wanted), 500):
        for seq, digest in session.execute(select(AuditEvent.seq, AuditEvent.hash).where(
                AuditEvent.seq.in_(wanted[i:i + 500]))):
            out[seq] = digest
    return out


def iter_events(session: Session) -> Iterator[dict[str, Any]]:
    for ev in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars():
        yield {
            "seq": ev.seq, "ts": _ts(ev.ts) + "Z", "actor": ev.actor, "action": ev.action,
            "target": ev.target, "detail": json.loads(ev.detail), "prev_hash": ev.prev_hash,
            "hash": ev.hash,
        }


def export(session: Session, out: IO[str]) -> int:
    """Write the log as JSON lines; returns the number of events."""
    n = 0
    for row in iter_events(session):
        out.write(json.dumps(row, sort_keys=True) + "\n")
        n += 1
    return n
