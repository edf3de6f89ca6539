"""Notifications by e-mail: people told when they are needed, never shown data.

A notification is queued (`queue`) in the same transaction as what it reports, so a request that
rolls back tells nobody; the notifier service (hub.services.notifier) sends what is due (`send_due`)
through a transport (enclave.mailer). Each person chooses immediate mail or one daily digest at
`[mail] digest_hour` (UTC). A message says what happened and links to the page: no file names, no
contents, no data. Only active accounts with an address get mail; a send that fails is tried again
later, up to MAX_ATTEMPTS.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from enclave import accounts, audit
from enclave.errors import Invalid
from enclave.models import Account, AccountStatus, Membership, Notification, Project, Role

IMMEDIATE, DIGEST = "immediate", "digest"
CHOICES = (IMMEDIATE, DIGEST)
MAX_ATTEMPTS = 10
# One address, nothing that could add a header or a second recipient.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass
class Message:
    to: str
    subject: str
    body: str
    ids: list[int] = field(default_factory=list)  # the notifications it carries


Transport = Callable[[Message], None]


def check_address(email: str) -> str:
    email = (email or "").strip()
    if not _ADDRESS.match(email) or ".." in email:
        raise Invalid(f"'{email}' is not an e-mail address", reason="bad_email")
    return email


def set_preferences(session: Session, actor: str, username: str, *, email: str | None = None,
                    notify: str | None = None) -> Account:
    """Set a person's address ('' removes it) and/or choice (immediate or digest); audited."""
    account = accounts.get(session, username)
    detail = {}
    if email is not None:
        account.email = check_address(email) if email.strip() else None
        detail["email"] = "set" if account.email else "removed"  # the address itself stays out of the log
    if notify is not None:
        if notify not in CHOICES:
            raise Invalid(f"'{notify}' is not a choice; immediate or digest", reason="bad_choice")
        account.notify = detail["notify"] = notify
    session.flush()
    audit.record(session, actor, "account.notifications", username, detail)
    return account


def queue(session: Session, usernames: Iterable[str], kind: str, subject: str, body: str, link: str = "") -> int:
    """Owe each of these people a message (those without an address or not active are skipped)."""
    names = sorted(set(usernames))
    if not names:
        return 0
    wanted = session.execute(select(Account.username).where(
        Account.username.in_(names), Account.status == AccountStatus.active, Account.email.is_not(None))).scalars()
    n = 0
    for name in wanted:
        session.add(Notification(username=name, kind=kind, subject=subject[:200], body=body, link=link[:255]))
        n += 1
    session.flush()
    return n


def people_with_role(session: Session, roles: Iterable[Role], *, not_in_project: str | None = None,
                     besides: str | None = None) -> list[str]:
    """Active accounts of these roles; not members of `not_in_project`, not `besides` (who may not review)."""
    q = select(Account.username).where(Account.role.in_(list(roles)), Account.status == AccountStatus.active)
    if not_in_project:
        members = select(Membership.account_id).join(Project, Project.id == Membership.project_id).where(
            Project.slug == not_in_project)
        q = q.where(Account.id.not_in(members))
    return [n for n in session.execute(q).scalars() if n != besides]


def digest_cutoff(now: dt.datetime, hour: int) -> dt.datetime:
    """The latest digest time not after `now`: what was queued before it goes in that digest."""
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return today if now >= today else today - dt.timedelta(days=1)


def due(session: Session, now: dt.datetime, digest_hour: int, public_url: str) -> list[Message]:
    """What should be sent now: each immediate notification, and one digest per person who chose it
    with what was queued before the last digest time."""
    rows = session.execute(
        select(Notification, Account).join(Account, Account.username == Notification.username)
        .where(Notification.sent_at.is_(None), Notification.attempts < MAX_ATTEMPTS)
        .order_by(Notification.id)).all()
    cutoff = digest_cutoff(now, digest_hour)
    digests: dict[str, list[Notification]] = defaultdict(list)
    out, gone = [], []
    for note, account in rows:
        if account.status != AccountStatus.active or not account.email:
            gone.append(note.id)  # nobody to tell any more
        elif account.notify == DIGEST:
            if note.created_at < cutoff:
                digests[account.email].append(note)
        else:
            out.append(Message(account.email, note.subject, _text(note, public_url), [note.id]))
    for email, notes in digests.items():
        body = "\n\n".join(f"- {n.created_at:%Y-%m-%d %H:%M} UTC: {_text(n, public_url)}" for n in notes)
        out.append(Message(email, f"Research enclave: {len(notes)} notification(s) of the day",
                           body, [n.id for n in notes]))
    if gone:
        session.execute(delete(Notification).where(Notification.id.in_(gone)))
    return out


def _text(note: Notification, public_url: str) -> str:
    return note.body + (f"\n{public_url.rstrip('/')}{note.link}" if note.link else "")


def send_due(session: Session, transport: Transport, now: dt.datetime, digest_hour: int,
             public_url: str) -> tuple[int, int]:
    """Send what is due through `transport`; (messages sent, messages that failed and wait for a retry)."""
    sent = failed = 0
    for msg in due(session, now, digest_hour, public_url):
        notes = [session.get(Notification, i) for i in msg.ids]
        try:
            transport(msg)
        except Exception as exc:  # noqa: BLE001 - any failure of the relay: try again later
            for n in notes:
                n.attempts += 1
                n.last_error = f"{type(exc).__name__}: {exc}"[:500]
            failed += 1
            continue
        for n in notes:
            n.sent_at = now
        sent += 1
    session.flush()
    return sent, failed


def drop_unsent(session: Session) -> int:
    """With mail off nothing will be sent: forget what is queued (reading first: most passes find
    nothing, and a read takes no write lock)."""
    if session.execute(select(Notification.id).where(Notification.sent_at.is_(None)).limit(1)).first() is None:
        return 0
    return session.execute(delete(Notification).where(Notification.sent_at.is_(None))).rowcount or 0
