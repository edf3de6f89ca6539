"""Tables of the egress review queue: requests, file groups, files (immutable snapshots), reviews, downloads.

Only the service modules (submission, review, downloads) change these rows, each change with its audit
event in the same transaction; status columns change only through `workflow.set_status`.
A RequestFile row is never edited after it is written except for its per-file `status`: a new version
of a file is a new row (version + 1) and the old row becomes `superseded`, so every review names the
exact bytes (sha256) it was about.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from enclave import clock
from enclave.models import Base, enum_column

from egress_review.workflow import Decision, FileStatus, RequestStatus


class ReleaseRequest(Base):
    __tablename__ = "egress_requests"
    __table_args__ = (Index("ix_egress_requests_status_updated", "status", "updated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(30), index=True)  # Project.slug
    requester: Mapped[str] = mapped_column(String(64), index=True)  # Account.username
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus, "egress_request_status"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)
    # out: outputs asked to leave; in: code or packages asked to come in (egress_review.imports). One
    # workflow, one set of permissions and audit events for both directions.
    direction: Mapped[str] = mapped_column(String(3), default="out", server_default="out")
    # The number of distinct steward approvals each file needs, fixed at submission so a settings
    # change never silently lowers the bar for a request already in the queue.
    reviewers_required: Mapped[int] = mapped_column(Integer, default=2)

    groups: Mapped[list[FileGroup]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="FileGroup.id"
    )
    claims: Mapped[list[Claim]] = relationship(cascade="all, delete-orphan", order_by="Claim.id")


class FileGroup(Base):
    __tablename__ = "egress_file_groups"
    __table_args__ = (UniqueConstraint("request_id", "name", name="uq_egress_group_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("egress_requests.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    context: Mapped[str] = mapped_column(Text)  # what the outputs show
    controls: Mapped[str] = mapped_column(Text)  # what disclosure controls were applied

    request: Mapped[ReleaseRequest] = relationship(back_populates="groups")
    files: Mapped[list[RequestFile]] = relationship(
        back_populates="group", cascade="all, delete-orphan", order_by="RequestFile.id"
    )


class RequestFile(Base):
    __tablename__ = "egress_files"
    __table_args__ = (UniqueConstraint("group_id", "path", "version", name="uq_egress_file_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("egress_file_groups.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(1024))  # relative to the requester's workspace
    # file: bytes (an output, or code coming in); package: a package asked for (its ask, as JSON bytes)
    kind: Mapped[str] = mapped_column(String(10), default="file", server_default="file")
    version: Mapped[int] = mapped_column(Integer, default=1)
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # name of the bytes in the quarantine store
    size: Mapped[int] = mapped_column(BigInteger)
    verdict: Mapped[str] = mapped_column(Text, default="{}")  # FileVerdict.to_dict() as JSON
    check_status: Mapped[str] = mapped_column(String(10))  # pass | warn | fail | review
    status: Mapped[FileStatus] = mapped_column(enum_column(FileStatus, "egress_file_status"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)

    group: Mapped[FileGroup] = relationship(back_populates="files")
    reviews: Mapped[list[Review]] = relationship(
        back_populates="file", cascade="all, delete-orphan", order_by="Review.id"
    )


class Review(Base):
    """One steward's decision on one version of one file (a steward may change it until the request moves)."""

    __tablename__ = "egress_reviews"
    __table_args__ = (UniqueConstraint("file_id", "steward", name="uq_egress_review_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("egress_files.id", ondelete="CASCADE"), index=True)
    steward: Mapped[str] = mapped_column(String(64), index=True)
    decision: Mapped[Decision] = mapped_column(enum_column(Decision, "egress_decision"))
    comment: Mapped[str] = mapped_column(Text, default="")
    override_reason: Mapped[str] = mapped_column(Text, default="")  # required to approve a failed check
    decided_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)

    file: Mapped[RequestFile] = relationship(back_populates="reviews")


class Download(Base):
    """Each time released bytes left the enclave (also in the audit log)."""

    __tablename__ = "egress_downloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("egress_files.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)


class Claim(Base):
    """A reviewer has taken a request on (egress_review.claims): at most `reviewers_required` per request."""

    __tablename__ = "egress_claims"
    __table_args__ = (UniqueConstraint("request_id", "steward", name="uq_egress_claim"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("egress_requests.id", ondelete="CASCADE"), index=True)
    steward: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)
