"""Patients' objections to reuse (the opt-out register), applied to new imports and to data already there.

- **Never the identifier.** An objection is kept as keyed BLAKE2b-256 of the normalised identifier under
  the site's opt-out key (`state_dir/secrets/optout.key`, like the other secrets), per kind of
  identifier ('nir'). An import computes the same digest of each record's identifier and drops matches
  before anything is written.
- **Data already imported** holds per-project pseudonyms, which only the identifier leads to: when an
  objection is recorded, the person's pseudonym is computed under every project key that exists and kept
  (`optout_pseudonyms`); `apply` removes those pseudonyms' records from every dataset, writing a new
  version of each affected file atomically. A project keyed later gets its data through imports, which
  check the register.
- **Matching is lenient on purpose**: identifiers are normalised as pseudonyms are (trimmed, upper-case,
  spaces/'-'/'.' removed), and all-digit identifiers also without leading zeros, so a register read as
  text and a file read as numbers still meet. A false match only removes one more record.
- **Counts** below a project's threshold are written as "fewer than N" wherever researchers or the
  public can read them (the manifest in the data folder, the transparency register); operators' commands
  and the audit log give exact figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import func, select

from enclave import audit, clock, db, fingerprints, notify, paths, projects, secrets_store
from enclave.errors import Conflict, Invalid
from enclave.models import Project
from enclave.settings import Settings

from ingest import keys, pseudonym
from ingest.models import Dataset, Objection, ObjectionPseudonym

KEY_FILE = "optout.key"
PERSON = b"enclave-optout1"
DIGEST_BYTES = 32
BATCH = 262_144


def site_key(state_dir: Path) -> bytes:
    return secrets_store.ensure_file(Path(state_dir), KEY_FILE, lambda: secrets.token_bytes(32))


def shown(n: int, threshold: int) -> str:
    """A count as people outside the audit log see it: exact from the threshold up."""
    return str(n) if n >= threshold else f"fewer than {threshold}"


def kind_of(settings: Settings, name: str) -> str | None:
    """The register's kind for a column or option name ('NIR ' -> 'nir'), None if no such kind."""
    wanted = fingerprints.normalise_name(name)
    kinds = {fingerprints.normalise_name(k) for k in settings.optout.id_columns}
    return wanted if wanted in kinds else None


def check_kind(settings: Settings, name: str) -> str:
    kind = kind_of(settings, name)
    if kind is None:
        raise Invalid(f"'{name}' is not a kind of identifier the register takes; [optout] id_columns = "
                      f"{list(settings.optout.id_columns)}")
    return kind


def _variants(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(as pseudonyms normalise it, canonical form): the canonical form also drops leading zeros of an
    all-digit identifier, so '0123' and 123 meet."""
    text = pseudonym.normalise(arr)
    digits = pc.match_substring_regex(text, r"^[0-9]+$")
    stripped = pc.replace_substring_regex(text, pattern=r"^0+([0-9])", replacement=r"\1")
    return text, pc.if_else(pc.fill_null(digits, False), stripped, text)


def digests(arr: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """Keyed digest of each identifier (binary, 32 bytes); null where the identifier is missing."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    _, canonical = _variants(arr)
    base = hashlib.blake2b(key=key, digest_size=DIGEST_BYTES, person=PERSON)
    out = []
    for v in pc.cast(canonical, pa.binary()).to_pylist():
        if v is None:
            out.append(None)
            continue
        h = base.copy()
        h.update(v)
        out.append(h.digest())
    return pa.array(out, pa.binary())


# --- the register ----------------------------------------------------------------------------------

@dataclass
class Change:
    kind: str
    changed: int  # objections added (or withdrawn)
    unchanged: int  # already on the register (or not on it, for a withdrawal)
    empty: int  # blank identifiers skipped
    projects: list[str] = field(default_factory=list)  # projects whose pseudonyms were computed


def _distinct(values: Iterable) -> tuple[pa.Array, int]:
    arr = pa.array(list(values)) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    if not pseudonym.can_be_identifier(arr.type):
        raise Invalid(f"identifiers are text or whole numbers, not {arr.type}")
    empty = pc.sum(pc.is_null(_variants(arr)[1])).as_py() or 0
    return arr, int(empty)


def read_identifiers(path: Path, column: str) -> pa.Array:
    """The `column` of a CSV (read as text) or Parquet file, or one identifier per line from '-' (stdin)."""
    import sys

    import pyarrow.csv as pa_csv

    if str(path) == "-":
        return pa.array([line.strip() for line in sys.stdin if line.strip()], pa.string())
    path = Path(path)
    if not path.is_file():
        raise Invalid(f"{path} does not exist or is not a file")
    try:
        with open(path, "rb") as fh:
            if fh.read(4) == b"PAR1":
                table = pq.read_table(path)
            else:
                table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types={column: pa.string()}))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"{path.name} does not parse as CSV or Parquet: {str(exc).splitlines()[0][:200]}") from None
    if column not in table.column_names:
        raise Invalid(f"no column '{column}' in {path.name}; its columns are: {', '.join(table.column_names)}")
    return table.column(column).combine_chunks()


def add(settings: Settings, actor: str, id_column: str, values) -> Change:
    """Record objections (one or many identifiers of kind `id_column`); audited with counts only."""
    kind = check_kind(settings, id_column)
    arr, empty = _distinct(values)
    as_given, canonical = _variants(arr)
    by_digest: dict[bytes, set[str]] = {}  # digest -> the forms whose pseudonyms to compute
    for d, text, canon in zip(digests(arr, site_key(settings.state_dir)).to_pylist(), as_given.to_pylist(),
                              canonical.to_pylist()):
        if d is not None:
            by_digest.setdefault(d, set()).update({text, canon})
    with db.transaction(settings.database_url) as session:
        existing = {bytes(o.digest): o for o in _registered(session, kind, by_digest)}
        fresh: list[tuple[Objection, set[str]]] = []
        for d, forms in by_digest.items():
            o = existing.get(d)
            if o is not None and o.withdrawn_at is None:
                continue
            if o is None:
                o = Objection(kind=kind, digest=d, added_by=actor)
                session.add(o)
            else:  # objected again after a withdrawal
                o.withdrawn_at, o.added_at, o.added_by = None, clock.now(), actor
            fresh.append((o, forms))
        session.flush()
        keyed = _keyed_projects(session, settings.state_dir)
        forms = sorted({f for _, fs in fresh for f in fs})
        for slug, pkey in keyed if forms else ():
            pseud = dict(zip(forms, pseudonym.pseudonymise(pa.array(forms, pa.string()), pkey).to_pylist()))
            for o, fs in fresh:
                for p in sorted({pseud[f] for f in fs}):
                    session.add(ObjectionPseudonym(objection_id=o.id, project=slug, pseudonym=p))
        change = Change(kind, len(fresh), len(by_digest) - len(fresh), empty, [s for s, _ in keyed])
        audit.record(session, actor, "optout.add", kind, {
            "added": change.changed, "already": change.unchanged, "empty": empty,
            "pseudonyms_for": change.projects})
    return change


def withdraw(settings: Settings, actor: str, id_column: str, values) -> Change:
    """Withdraw objections: future imports keep these people's records (records already removed stay
    removed: the data is gone until a new import brings it)."""
    kind = check_kind(settings, id_column)
    arr, empty = _distinct(values)
    wanted = {d for d in digests(arr, site_key(settings.state_dir)).to_pylist() if d is not None}
    with db.transaction(settings.database_url) as session:
        found = [o for o in _registered(session, kind, wanted) if o.withdrawn_at is None]
        now = clock.now()
        for o in found:
            o.withdrawn_at = now
        if found:
            session.execute(ObjectionPseudonym.__table__.delete().where(
                ObjectionPseudonym.objection_id.in_([o.id for o in found])))
        change = Change(kind, len(found), len(wanted) - len(found), empty)
        audit.record(session, actor, "optout.withdraw", kind, {
            "withdrawn": change.changed, "not_registered": change.unchanged, "empty": empty})
    return change


def _registered(session, kind: str, wanted: Iterable[bytes], chunk: int = 5000) -> list[Objection]:
    """The register's rows for these digests (asked in chunks: databases cap bound parameters)."""
    wanted = list(wanted)
    out: list[Objection] = []
    for i in range(0, len(wanted), chunk):
        out.extend(session.execute(select(Objection).where(
            Objection.kind == kind, Objection.digest.in_(wanted[i:i + chunk]))).scalars())
    return out


def _keyed_projects(session, state_dir: Path) -> list[tuple[str, bytes]]:
    out = []
    for slug in session.execute(select(Project.slug).order_by(Project.slug)).scalars():
        k = keys.read(state_dir, slug)
        if k is not None:
            out.append((slug, k))
    return out


def active_digests(session, kinds: Iterable[str]) -> dict[str, set[bytes]]:
    kinds = sorted(set(kinds))
    out: dict[str, set[bytes]] = {k: set() for k in kinds}
    if kinds:
        for kind, d in session.execute(select(Objection.kind, Objection.digest).where(
                Objection.kind.in_(kinds), Objection.withdrawn_at.is_(None))):
            out[kind].add(bytes(d))
    return out


@dataclass
class Totals:
    objections: int  # active objections on the register
    withdrawn: int
    removed_by_project: dict[str, int]  # records removed so far, imports and applies together


def totals(session) -> Totals:
    active = session.execute(select(func.count()).where(Objection.withdrawn_at.is_(None))).scalar() or 0
    withdrawn = session.execute(select(func.count()).where(Objection.withdrawn_at.is_not(None))).scalar() or 0
    removed = dict(session.execute(
        select(Project.slug, func.coalesce(func.sum(Dataset.removed_for_objections), 0))
        .join(Dataset, Dataset.project_id == Project.id).group_by(Project.slug)).all())
    return Totals(int(active), int(withdrawn), {k: int(v) for k, v in removed.items()})


# --- at import time --------------------------------------------------------------------------------

class ImportFilter:
    """Drops objecting people's records from an import's batches (raw identifiers, before pseudonyms)."""

    def __init__(self, settings: Settings, session, id_columns: list[str]):
        kinds = {c: kind_of(settings, c) for c in id_columns}
        self.columns = {c: k for c, k in kinds.items() if k}
        self.seen = active_digests(session, self.columns.values())
        self.sets = {c: pa.array(sorted(self.seen[k]), pa.binary()) for c, k in self.columns.items()}
        self.key = site_key(settings.state_dir) if self.columns else b""
        self.removed = 0

    @property
    def kinds(self) -> list[str]:
        return sorted(set(self.columns.values()))

    def filter(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        drop = None
        for c, value_set in self.sets.items():
            if not len(value_set):
                continue
            hit = pc.fill_null(pc.is_in(digests(batch.column(c), self.key), value_set=value_set), False)
            drop = hit if drop is None else pc.or_(drop, hit)
        if drop is None:
            return batch
        n = pc.sum(drop).as_py() or 0
        if not n:
            return batch
        self.removed += n
        return batch.filter(pc.invert(drop))

    def check_unchanged(self, session) -> None:
        """Refuse to publish when an objection of these kinds was recorded while the file was read."""
        now = active_digests(session, self.columns.values())
        if any(now[k] - self.seen[k] for k in now):
            raise Conflict("an objection was recorded while this file was read; run the import again so it is applied")


# --- applying the register to data already imported ------------------------------------------------

@dataclass
class Applied:
    project: str
    threshold: int
    removed: dict[str, int]  # dataset -> records removed now

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def apply(settings: Settings, actor: str) -> list[Applied]:
    """Remove objecting people's records from every dataset of every project; one audit event per
    project with its exact counts; the members of a project whose data changed are told."""
    with db.transaction(settings.database_url) as session:
        slugs = [p.slug for p in projects.list_all(session)]
    return [a for a in (_apply_project(settings, actor, slug) for slug in slugs) if a is not None]


def _apply_project(settings: Settings, actor: str, slug: str) -> Applied | None:
    state = settings.state_dir
    with keys.project_lock(state, slug):
        with db.transaction(settings.database_url) as session:
            project = projects.get(session, slug)
            threshold, data_dir = project.min_cell_count, Path(project.data_dir)
            wanted: dict[str, set[str]] = {}
            for kind, p in session.execute(
                    select(Objection.kind, ObjectionPseudonym.pseudonym)
                    .join(ObjectionPseudonym, ObjectionPseudonym.objection_id == Objection.id)
                    .where(ObjectionPseudonym.project == slug, Objection.withdrawn_at.is_(None))):
                wanted.setdefault(kind, set()).add(p)
            datasets = list(session.execute(select(Dataset).where(Dataset.project_id == project.id)
                                            .order_by(Dataset.name)).scalars())
            targets = []
            for ds in datasets:
                manifest = json.loads(ds.manifest)
                cols = {c: pa.array(sorted(wanted[kind_of(settings, c)]), pa.string())
                        for c in manifest.get("pseudonymised") or [] if kind_of(settings, c) in wanted}
                if cols:
                    targets.append((ds.name, manifest, cols))
        removed: dict[str, int] = {}
        staged: list[tuple[str, Path, dict, int, Path]] = []
        try:
            for name, manifest, cols in targets:
                parquet = data_dir / f"{name}.parquet"
                if not parquet.is_file():
                    raise Invalid(f"dataset '{name}' of project '{slug}' has no file {parquet}; restore it from "
                                  "backup and run `enclave optout apply` again (nothing of this project was changed)")
                if _matches(parquet, cols) == 0:
                    continue
                stage = data_dir / f".optout-{secrets.token_hex(6)}"
                stage.mkdir(mode=0o700)
                n = _rewrite(parquet, stage / parquet.name, cols, manifest, paths.fingerprints(state, slug),
                             stage / "fp")
                staged.append((name, stage, manifest, n, parquet))
                removed[name] = n
            if not staged:
                return Applied(slug, threshold, {})
            with db.transaction(settings.database_url) as session:
                project = projects.get(session, slug)
                for name, stage, manifest, n, parquet in staged:
                    ds = session.execute(select(Dataset).where(
                        Dataset.project_id == project.id, Dataset.name == name)).scalar_one()
                    ds.version += 1
                    ds.removed_for_objections += n
                    ds.rows -= n
                    manifest.update(rows=ds.rows, version=ds.version,
                                    objections={**(manifest.get("objections") or {}),
                                                "removed": shown(ds.removed_for_objections, threshold),
                                                "last_applied": clock.now().isoformat(timespec="seconds") + "Z"})
                    ds.manifest = json.dumps(manifest, default=str)
                    (stage / f"{name}.manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
                audit.record(session, actor, "optout.apply", slug, {"removed": removed, "total": sum(removed.values())})
                members = [m.account.username for m in project.memberships]
                notify.queue(session, members, "data.new_version", f"[{slug}] new version of the data",
                             f"The data of project {slug} has a new version ({', '.join(sorted(removed))}): "
                             "records were removed after patients objected to their reuse. Restart your "
                             "notebook server and read the files again; results computed before may change.",
                             link="/hub/home")
                session.flush()
                for name, stage, manifest, n, parquet in staged:
                    _publish(stage, data_dir, name, paths.fingerprints(state, slug))
        finally:
            for _, stage, *_ in staged:
                shutil.rmtree(stage, ignore_errors=True)
    return Applied(slug, threshold, removed)


def _mask(batch: pa.RecordBatch, cols: dict[str, pa.Array]) -> pa.Array:
    drop = None
    for c, value_set in cols.items():
        hit = pc.fill_null(pc.is_in(batch.column(c), value_set=value_set), False)
        drop = hit if drop is None else pc.or_(drop, hit)
    return drop


def _matches(parquet: Path, cols: dict[str, pa.Array]) -> int:
    """How many records of the file belong to objecting people (reads only the pseudonym columns)."""
    n = 0
    for batch in pq.ParquetFile(parquet).iter_batches(batch_size=BATCH, columns=list(cols)):
        n += pc.sum(_mask(batch, cols)).as_py() or 0
    return n


def _rewrite(parquet: Path, out: Path, cols: dict[str, pa.Array], manifest: dict, fp_in: Path,
             fp_out: Path) -> int:
    """Write the file without the objecting people's records, and the fingerprints of what stays
    (enclave.fingerprints.erase: only the removed records are hashed). Returns how many were removed."""
    source = pq.ParquetFile(parquet)
    removed = []
    with pq.ParquetWriter(out, source.schema_arrow) as writer:
        for batch in source.iter_batches(batch_size=BATCH):
            drop = _mask(batch, cols)
            if pc.any(drop).as_py():
                removed.append(batch.filter(drop))
                batch = batch.filter(pc.invert(drop))
            writer.write_batch(batch)
    gone = pa.Table.from_batches(removed, schema=source.schema_arrow)
    fingerprints.erase(fp_in, fp_out, manifest["dataset"], gone,
                       lambda c: pq.read_table(out, columns=[c]).column(0), matched=cols)
    return gone.num_rows


def _publish(stage: Path, data_dir: Path, name: str, fp_dir: Path) -> None:
    """Fingerprints, then the manifest, then the Parquet file last (each an atomic rename): a server
    opening the file afterwards reads the new version; one that has it open reads the old to the end."""
    staged_fp = sorted((stage / "fp").iterdir(), key=lambda p: p.suffix == ".json") if (stage / "fp").is_dir() else []
    for p in staged_fp:
        os.replace(p, fp_dir / p.name)
    for fname in (f"{name}.manifest.json", f"{name}.parquet"):
        os.chmod(stage / fname, 0o644)
        os.replace(stage / fname, data_dir / fname)
