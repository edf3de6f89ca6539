"""The record of each import: one row per dataset in a project (the files themselves are in its data folder)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
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

    project: Mapped[Project] = relationship()
