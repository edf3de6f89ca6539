"""The record of each import (one row per dataset in a project; the files are in its data folder), and the
opt-out register (ingest.optout): objections as keyed hashes, never the identifier."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from enclave import clock
from enclave.models import Base, Project


class Dataset(Base):
    __tablename__ = "ingest_datasets"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_ingest_dataset_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    file: Mapped[str] = mapped_column(Text)  # the Parquet file in the data folder
    source_sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[int] = mapped_column(Integer)
    imported_by: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)
    manifest: Mapped[str] = mapped_column(Text)  # the manifest JSON, as written next to the file
    risk_accepted: Mapped[str | None] = mapped_column(Text)  # the steward's reason, when above threshold
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # +1 per rewrite (opt-out)
    removed_for_objections: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    project: Mapped[Project] = relationship()


class Objection(Base):
    """One person's objection to reuse: `digest` is keyed BLAKE2b of the normalised identifier under the
    site's opt-out key (ingest.optout), so the register can be matched against a new file without
    holding the identifier. Withdrawn objections keep their row (with `withdrawn_at`) for the record."""

    __tablename__ = "optout_objections"
    __table_args__ = (UniqueConstraint("kind", "digest", name="uq_optout_objection"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))  # the identifier's kind, e.g. 'nir'
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.now)
    added_by: Mapped[str] = mapped_column(String(64))
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)


class ObjectionPseudonym(Base):
    """The objecting person's pseudonym in one project, computed when the objection was recorded (the
    only moment the identifier is at hand), so `optout apply` can find them in data already imported."""

    __tablename__ = "optout_pseudonyms"
    __table_args__ = (UniqueConstraint("objection_id", "project", "pseudonym", name="uq_optout_pseudonym"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    objection_id: Mapped[int] = mapped_column(ForeignKey("optout_objections.id", ondelete="CASCADE"), index=True)
    project: Mapped[str] = mapped_column(String(30), index=True)
    pseudonym: Mapped[str] = mapped_column(String(32))
