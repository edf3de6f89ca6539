"""From the kernel's counters to the record: what a guarded server sent since it was last counted goes
into the person's daily volume, with the audit events a steward reads. The guard service calls
`settle` every few seconds; the spawner calls it once more, with `final`, when the server stops."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from enclave import audit, clock, volumes
from enclave.models import GuardedServer

ACTOR = "service:egress-guard"


@dataclass(frozen=True)
class Settled:
    today_bytes: int  # the person's volume in this project today, this reading included
    delta: int


def settle(session: Session, row: GuardedServer, sent: int, held_back: int, *, record_seconds: int,
           burst_bytes: int, final: bool = False, now: dt.datetime | None = None) -> Settled:
    now = now or clock.now()
    delta = sent - row.counted_bytes
    if delta < 0:  # the kernel counter started again (host reboot): all it shows is new
        delta = sent
    today = volumes.record(session, now.date(), row.username, row.project, delta)
    row.counted_bytes = sent
    detail = {"user": row.username, "server_bytes": sent, "today_bytes": today, "held_back_bytes": held_back}
    if held_back > 0 and not row.slowed:
        row.slowed = True
        audit.record(session, ACTOR, "notebook.egress_slowed", row.project,
                     {**detail, "burst_bytes": burst_bytes})
    if final or (now - row.recorded_at).total_seconds() >= record_seconds:
        row.recorded_at = now
        audit.record(session, ACTOR, "notebook.egress_volume", row.project, {**detail, "final": final})
    return Settled(today, delta)
