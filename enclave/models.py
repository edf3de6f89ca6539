"""Tables of the enclave's own database: accounts, MFA material, projects, memberships, throttling, audit.

Only the service modules (accounts, projects, audit) change these rows, each change with its audit
event in the same transaction. Times are naive UTC (see enclave.clock).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from enclave import clock

DEFAULT_MIN_CELL_COUNT = 10  # smallest count an output table may show, unless a project says otherwise (ACRO)


class Base(DeclarativeBase):
    pass


class Role(str, enum.Enum):
    researcher = "researcher"
    steward = "steward"
    admin = "admin"


class AccountStatus(str, enum.Enum):
    pending = "pending"  # created, enrolment link not used yet
    active = "active"
    disabled = "disabled"


class ProjectStatus(str, enum.Enum):
    active = "active"
    suspended = "suspended"
    closed = "closed"


def enum_column(e: type[enum.Enum], name: str) -> Enum:
    """An Enum column stored as plain strings (no native enum), so migrations stay simple on SQLite and
    PostgreSQL; every package with tables uses it."""
    return Enum(e, name=name, native_enum=False, validate_strings=True, length=20)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"))
    status: Mapped[AccountStatus] = mapped_column(enum_column(AccountStatus, "account_status"))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token, never plain
    totp_last_counter: Mapped[int] = mapped_column(Integer, default=0)  # last accepted time step
    email: Mapped[str | None] = mapped_column(String(254))  # where notifications go (none: no mail)
    notify: Mapped[str] = mapped_column(String(10), default="immediate", server_default="immediate")  # or digest
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)
    enrolled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="account", cascade="all, delete-orphan"
    )


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    account: Mapped[Account] = relationship(back_populates="recovery_codes")


class EnrolmentToken(Base):
    __tablename__ = "enrolment_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    account: Mapped[Account] = relationship()


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(30), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    # What the public transparency register says of the project (set at creation).
    purpose: Mapped[str] = mapped_column(Text, default="", server_default="")
    sponsor: Mapped[str] = mapped_column(String(200), default="", server_default="")
    approval: Mapped[str] = mapped_column(String(200), default="", server_default="")  # legal basis or approval ref
    data_dir: Mapped[str] = mapped_column(Text)
    status: Mapped[ProjectStatus] = mapped_column(enum_column(ProjectStatus, "project_status"))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    min_cell_count: Mapped[int] = mapped_column(Integer, default=DEFAULT_MIN_CELL_COUNT)
    mem_limit: Mapped[str | None] = mapped_column(String(20))  # overrides the site default
    cpu_limit: Mapped[float | None] = mapped_column(Float)
    # The host guard's bounds for this project; None: the site's [guard] value.
    guard_burst_mib: Mapped[int | None] = mapped_column(Integer)
    guard_sustained_kib_per_s: Mapped[int | None] = mapped_column(Integer)
    guard_daily_mib: Mapped[int | None] = mapped_column(Integer)
    terminals: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "account_id", name="uq_membership"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)

    project: Mapped[Project] = relationship(back_populates="memberships")
    account: Mapped[Account] = relationship(back_populates="memberships")


class LoginThrottle(Base):
    """Failures per source address, so guessing across many accounts is slowed too."""

    __tablename__ = "login_throttle"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)


class AuditEvent(Base):
    """One row of the append-only, hash-chained audit log (see enclave.audit)."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(64), index=True)  # indexed: the admin pages search by person
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(255), default="", index=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """Single row naming the last event: serialises writers and catches a deleted tail."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class DailyVolume(Base):
    """Bytes one person's notebook server of one project sent toward people on one day (UTC), as the
    host guard counted them, and the cap for that day if a steward raised it."""

    __tablename__ = "daily_volumes"
    __table_args__ = (UniqueConstraint("day", "username", "project", name="uq_daily_volume"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    username: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(30))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    raised_cap_mib: Mapped[int | None] = mapped_column(Integer)
    capped: Mapped[bool] = mapped_column(Boolean, default=False)  # the guard stopped a server at the cap


class GuardedServer(Base):
    """A running notebook server under the host guard: the kernel objects that meter it (named by
    `key`), its address, and how much of its counter is already in daily_volumes."""

    __tablename__ = "guarded_servers"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(30))
    ip: Mapped[str] = mapped_column(String(45))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)
    counted_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # of the kernel counter, already recorded
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)  # last notebook.egress_volume
    cap_bytes: Mapped[int] = mapped_column(BigInteger, default=0)  # what the kernel quota allows this server
    slowed: Mapped[bool] = mapped_column(Boolean, default=False)  # burst spent, already audited


class PackageFile(Base):
    """One package file in the enclave's offline repository (enclave.packages), as a bundle brought it:
    a Python wheel or source archive, or an R source package. The bytes live under paths.packages()."""

    __tablename__ = "package_files"

    filename: Mapped[str] = mapped_column(String(255), primary_key=True)
    ecosystem: Mapped[str] = mapped_column(String(10))  # python | r
    name: Mapped[str] = mapped_column(String(100), index=True)  # normalised (PEP 503; R names as is)
    version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    requires: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of normalised names it needs
    requires_python: Mapped[str] = mapped_column(String(100), default="")
    bundle: Mapped[str] = mapped_column(String(64))  # sha256 of the manifest that brought it
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)


class PackageRule(Base):
    """What researchers may install: a package allowed or denied for the whole site (scope '') or one
    project (scope = slug), optionally for some versions only (a PEP 440 specifier, e.g. '==0.30')."""

    __tablename__ = "package_rules"
    __table_args__ = (UniqueConstraint("scope", "ecosystem", "name", name="uq_package_rule"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(30), default="")
    ecosystem: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    versions: Mapped[str] = mapped_column(String(100), default="")
    allowed: Mapped[bool] = mapped_column(Boolean)
    decided_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)


class Notification(Base):
    """One message owed to one person (enclave.notify): queued in the transaction of what it reports,
    sent by the notifier service on its own (immediately, or in the person's daily digest)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(255), default="")  # path under the public URL
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now, index=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
