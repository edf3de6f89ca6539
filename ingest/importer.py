"""`enclave data import`: stream a CSV or Parquet file into a project's data folder, safely.

One pass over the source, batch by batch (memory does not grow with the file): dropped columns are
never read, identifier columns are replaced by keyed pseudonyms, quasi-identifier combinations are
counted for the risk report, row fingerprints are collected, and batches are written to Parquet by a
writer thread (Parquet encoding runs while the next batch is prepared).

Nothing half-written appears: everything is written into a hidden 0700 staging folder beside its final
place; only when the whole file is read, every check passed and the risk is acceptable (or accepted)
is the import recorded in the database with its audit event, and the files renamed into place in that
same transaction. Any failure removes the staging folders (and a key created for this import).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import secrets
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from enclave import audit, clock, csv_types, db, fingerprints, notify, paths, permissions, projects
from enclave.errors import Conflict, EnclaveError, Invalid
from enclave.models import DEFAULT_MIN_CELL_COUNT, Role
from enclave.permissions import ProjectState
from enclave.settings import Settings

from ingest import keys, optout, pseudonym, risk
from ingest.models import Dataset

log = logging.getLogger(__name__)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CSV_BLOCK = 16 << 20
PARQUET_BATCH = 131_072


@dataclass
class ImportRequest:
    project: str
    source: Path
    id_columns: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    quasi_identifiers: list[str] = field(default_factory=list)
    name: str | None = None
    accept_risk: str | None = None


@dataclass
class ImportResult:
    name: str
    file: Path
    manifest: Path
    rows: int
    columns: list[str]
    report: risk.Report | None
    problems: list[str]
    key_created: bool
    removed_for_objections: int = 0
    threshold: int = DEFAULT_MIN_CELL_COUNT  # the project's smallest count shown exactly


class RiskTooHigh(Invalid):
    reason = "risk"


def default_name(source: Path) -> str:
    """A dataset name from the file name: 'Séjours 2023.csv.gz' -> 's_jours_2023'."""
    stem = source.name
    for suffix in (".gz", ".bz2", ".zst", ".csv", ".tsv", ".parquet", ".pq"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    name = re.sub(r"[^a-z0-9_-]+", "_", stem.lower()).strip("_-")[:64]
    return name or "dataset"


def _check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise Invalid(f"dataset name '{name}' is not allowed: use 1-64 lowercase letters, digits, '_' or '-', "
                      "starting with a letter or digit (--name)")
    return name


# --- reading ---------------------------------------------------------------------------------------

class Source:
    """A CSV or Parquet file read batch by batch; CSV column types can be forced to text on retry."""

    def __init__(self, path: Path):
        self.path = path
        if not path.is_file():
            raise Invalid(f"source file {path} does not exist or is not a file")
        with open(path, "rb") as fh:
            self.is_parquet = fh.read(4) == b"PAR1"
        self.column_types: dict[str, pa.DataType] = {}  # widened after a late block did not fit
        try:
            if self.is_parquet:
                self._pq = pq.ParquetFile(path)
                self.schema = self._pq.schema_arrow
            else:
                with self._open_csv(None) as r:
                    self.schema = r.schema
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
            raise Invalid(f"{path.name} does not parse as CSV or Parquet: {_first_line(exc)}") from None
        self.columns = list(self.schema.names)
        if len(set(self.columns)) != len(self.columns):
            dup = sorted({c for c in self.columns if self.columns.count(c) > 1})
            raise Invalid(f"{path.name} has duplicate column names: {', '.join(dup)}")

    def _open_csv(self, include: list[str] | None):
        return pa_csv.open_csv(
            self.path,
            read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK),
            convert_options=pa_csv.ConvertOptions(
                include_columns=include, column_types=dict(self.column_types)),
        )

    def batches(self, include: list[str]) -> Iterator[pa.RecordBatch]:
        if self.is_parquet:
            yield from self._pq.iter_batches(batch_size=PARQUET_BATCH, columns=include)
            return
        with self._open_csv(include) as reader:
            yield from reader

    def retry_wider(self, exc: pa.ArrowInvalid) -> bool:
        """A later CSV block did not fit the type guessed from the first: read that column wider
        (enclave.csv_types); False when there is nothing to retry."""
        wider = None if self.is_parquet else csv_types.wider_type(str(exc), self.columns, self.column_types)
        if wider is None:
            return False
        self.column_types[wider[0]] = wider[1]
        return True


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _sha256_in_thread(path: Path) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run():
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(8 << 20), b""):
                h.update(chunk)
        out["sha256"] = h.hexdigest()

    t = threading.Thread(target=run, name="sha256", daemon=True)
    t.start()
    return t, out


class _ParquetSink:
    """Writes batches to a Parquet file on its own thread (the encoder releases the GIL)."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.writer = pq.ParquetWriter(path, schema)
        self.q: queue.Queue = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self.thread.start()

    def _run(self):
        while (batch := self.q.get()) is not None:
            if self.error is None:
                try:
                    self.writer.write_batch(batch)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread
                    self.error = exc

    def put(self, batch: pa.RecordBatch) -> None:
        if self.error:
            raise self.error
        self.q.put(batch)

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()
        self.writer.close()
        if self.error:
            raise self.error


# --- checks before reading ----------------------------------------------------------------------

def _validate_columns(src: Source, req: ImportRequest) -> None:
    known = set(src.columns)
    for flag, cols in (("--id-columns", req.id_columns), ("--drop", req.drop),
                       ("--quasi-identifiers", req.quasi_identifiers)):
        unknown = [c for c in cols if c not in known]
        if unknown:
            raise Invalid(f"{flag}: no column {', '.join(repr(c) for c in unknown)} in {src.path.name}; "
                          f"its columns are: {', '.join(src.columns)}")
        if len(set(cols)) != len(cols):
            raise Invalid(f"{flag} names a column twice")
    for a, b, why in (
        (req.id_columns, req.drop, "cannot be both pseudonymised and dropped"),
        (req.id_columns, req.quasi_identifiers, "is an identifier, not a quasi-identifier (it is pseudonymised)"),
        (req.quasi_identifiers, req.drop, "is dropped, so it cannot be a quasi-identifier of what is imported"),
    ):
        both = [c for c in a if c in b]
        if both:
            raise Invalid(f"column {', '.join(repr(c) for c in both)} {why}")
    if len(req.drop) == len(src.columns):
        raise Invalid("--drop removes every column; nothing would be imported")
    for c in req.id_columns:
        t = src.schema.field(c).type
        if not pseudonym.can_be_identifier(t):
            raise Invalid(f"--id-columns: column '{c}' holds {t} values, which do not identify a person "
                          "(identifiers are text or whole numbers); check the column name")
    normalised = [fingerprints.normalise_name(c) for c in src.columns if c not in req.drop]
    if len(set(normalised)) != len(normalised):
        raise Invalid("column names differ only by case or spaces; rename them before importing")


def _check_identifier_spread(fp: fingerprints.FingerprintWriter, req: ImportRequest, non_null: dict[str, int],
                             min_share: float) -> None:
    for c in req.id_columns:
        n = non_null[c]
        distinct = fp.distinct_ids(c)
        if n == 0:
            raise Invalid(f"--id-columns: column '{c}' is empty; there is nothing to pseudonymise")
        if distinct < min_share * n or (n >= 10 and distinct <= 3):
            raise Invalid(
                f"--id-columns: column '{c}' has only {distinct} different values in {n} records, so it is not "
                f"an identifier (needs at least {min_share:g} different values per record, [ingest] "
                "min_id_distinct_share); did you mean --quasi-identifiers or --drop?")


def _project_for_import(session, slug: str):
    project = projects.get(session, slug)
    state = permissions.project_state(project, clock.today())
    if state is not ProjectState.open:
        raise Invalid(f"project '{slug}' is {state.value}; data can only be imported into an open project")
    return project


def _name_taken(session, project, data_dir: Path, name: str) -> None:
    if session.execute(select(Dataset.id).where(Dataset.project_id == project.id, Dataset.name == name)).first():
        raise Conflict(f"project '{project.slug}' already has a dataset '{name}'; choose another --name")
    clash = [p for p in _final_paths(data_dir, name) if p.exists()]
    if clash:
        raise Conflict(f"{clash[0]} already exists in the data folder; choose another --name")


def _final_paths(data_dir: Path, name: str) -> list[Path]:
    return [data_dir / f"{name}{s}" for s in (".parquet", ".manifest.json", ".risk.json", ".risk.html")]


# --- the import ------------------------------------------------------------------------------------

def import_dataset(settings: Settings, actor: str, req: ImportRequest) -> ImportResult:
    """Run one import end to end; raises EnclaveError (nothing written) when refused, and then admins
    are told that it was refused (not why: the reason can name columns and files)."""
    try:
        return _import_dataset(settings, actor, req)
    except EnclaveError as exc:
        _tell_admins_refused(settings, actor, req.project, exc)
        raise


def _tell_admins_refused(settings: Settings, actor: str, project: str, exc: EnclaveError) -> None:
    """Queue the admins' notice; a database that fails here must not hide the refusal itself."""
    where = f"project {project}" if projects.SLUG_RE.match(project or "") else "an unknown project"
    try:
        with db.transaction(settings.database_url) as session:
            notify.queue(session, notify.people_with_role(session, [Role.admin]), "data.import_refused",
                         f"An import into {where} was refused",
                         f"An import of a file into {where}, run by {actor} at "
                         f"{clock.now():%Y-%m-%d %H:%M} UTC, was refused ({exc.reason}). Nothing was written; "
                         "the command told the person who ran it why.", link="/hub/home")
    except SQLAlchemyError as db_exc:
        log.warning("could not queue the admins' notice of a refused import: %s", db_exc)


def _import_dataset(settings: Settings, actor: str, req: ImportRequest) -> ImportResult:
    name = _check_name(req.name or default_name(req.source))
    with db.transaction(settings.database_url) as session:
        project = _project_for_import(session, req.project)
        data_dir, threshold = Path(project.data_dir), project.min_cell_count
        _name_taken(session, project, data_dir, name)
    if not data_dir.is_dir():
        raise Invalid(f"the data folder of '{req.project}' ({data_dir}) is missing")
    src = Source(Path(req.source))
    _validate_columns(src, req)
    state = settings.state_dir
    with keys.project_lock(state, req.project):
        with db.transaction(settings.database_url) as session:
            objections = optout.ImportFilter(settings, session, req.id_columns + req.drop)
        key, key_new = keys.load_or_new(state, req.project) if req.id_columns else (b"", False)
        stage = data_dir / f".import-{secrets.token_hex(6)}"
        fp_dir = paths.fingerprints(state, req.project)
        fp_stage = fp_dir / f".staging-{secrets.token_hex(6)}"
        published: list[Path] = []
        key_stored = False
        try:
            stage.mkdir(mode=0o700)
            fp_stage.mkdir(mode=0o700, parents=True)
            sha_thread, sha = _sha256_in_thread(src.path)
            fp, counter, non_null, rows, columns = _stream(src, req, name, key, stage, objections)
            _check_identifier_spread(fp, req, non_null, settings.ingest.min_id_distinct_share)
            report = risk.report(counter) if req.quasi_identifiers else None
            problems = report.problems(settings.ingest.max_unique_share, settings.ingest.min_k) if report else []
            if problems and not (req.accept_risk or "").strip():
                raise RiskTooHigh(
                    "import refused: re-identification risk above the site threshold: " + "; ".join(problems)
                    + ". Generalise the data (see `enclave data risk` for suggestions) or pass "
                    "--accept-risk \"reason\" (audited)")
            sha_thread.join()
            now = clock.now()
            verdict = ("above threshold, accepted: " + req.accept_risk.strip()) if problems else (
                "within the site threshold" if report else "not assessed (no --quasi-identifiers)")
            manifest = {
                "dataset": name, "project": req.project, "file": f"{name}.parquet",
                "source": {"name": src.path.name, "sha256": sha["sha256"], "bytes": src.path.stat().st_size,
                           "format": "parquet" if src.is_parquet else "csv"},
                "rows": rows, "columns": columns, "dropped": req.drop, "pseudonymised": req.id_columns,
                "pseudonym": "P + base32(keyed BLAKE2b-80), project key" if req.id_columns else None,
                "quasi_identifiers": req.quasi_identifiers,
                "objections": {"register_kinds": objections.kinds,
                               "removed": optout.shown(objections.removed, threshold)} if objections.kinds else None,
                "read_as_text": sorted(c for c, t in src.column_types.items() if t == pa.string()),
                "read_as_decimals": sorted(c for c, t in src.column_types.items() if t == pa.float64()),
                "imported_by": actor, "imported_at": now.isoformat(timespec="seconds") + "Z",
                "risk": ({**{k: v for k, v in report.to_dict().items() if k not in ("smallest_classes", "suggestions")},
                          "verdict": verdict, "above_threshold": problems, "accepted_reason": req.accept_risk.strip()
                          if problems else None} if report else None),
            }
            (stage / f"{name}.manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
            if report:
                risk.write(report, stage, name, dataset=name, verdict=verdict)
            fp.write(fp_stage)
            if key_new:
                keys.store(state, req.project, key)
                key_stored = True
            with db.transaction(settings.database_url) as session:
                project = _project_for_import(session, req.project)
                _name_taken(session, project, data_dir, name)
                objections.check_unchanged(session)
                session.add(Dataset(
                    project_id=project.id, name=name, file=str(data_dir / f"{name}.parquet"),
                    source_sha256=sha["sha256"], rows=rows, columns=len(columns), imported_by=actor,
                    imported_at=now, manifest=json.dumps(manifest, default=str),
                    risk_accepted=req.accept_risk.strip() if problems else None,
                    removed_for_objections=objections.removed,
                ))
                if key_new:
                    audit.record(session, actor, "data.key_create", req.project,
                                 {"key_file": str(keys.key_path(state, req.project))})
                audit.record(session, actor, "data.import", req.project, {
                    "dataset": name, "source": src.path.name, "sha256": sha["sha256"], "rows": rows,
                    "columns": len(columns), "dropped": req.drop, "pseudonymised": req.id_columns,
                    "quasi_identifiers": req.quasi_identifiers, "removed_for_objections": objections.removed,
                    "risk": {k: manifest["risk"][k] for k in ("k", "unique_share", "share_under_11")}
                    if report else None,
                })
                if problems:
                    audit.record(session, actor, "data.accept_risk", req.project, {
                        "dataset": name, "reason": req.accept_risk.strip(), "problems": problems})
                session.flush()
                _publish(stage, data_dir, fp_stage, fp_dir, name, published)
        except BaseException as exc:
            for p in published:
                p.unlink(missing_ok=True)
            if key_stored:
                keys.discard(state, req.project)
            if isinstance(exc, (pa.ArrowInvalid, UnicodeDecodeError)):
                raise Invalid(f"{src.path.name} does not parse: {_first_line(exc)}; nothing was imported") from None
            raise
        finally:
            shutil.rmtree(stage, ignore_errors=True)
            shutil.rmtree(fp_stage, ignore_errors=True)
            if fp_dir.is_dir() and not any(fp_dir.iterdir()):
                fp_dir.rmdir()
    return ImportResult(name, data_dir / f"{name}.parquet", data_dir / f"{name}.manifest.json", rows, columns,
                        report, problems, key_new, objections.removed, threshold)


def _stream(src: Source, req: ImportRequest, name: str, key: bytes, stage: Path, objections: optout.ImportFilter):
    """Read, transform and write every batch (objecting people's records dropped first); retried with a
    column as text when CSV types shift."""
    include = [c for c in src.columns if c not in req.drop]
    # a dropped identifier is still read when the register has its kind: objectors' records go anyway
    read = include + [c for c in objections.columns if c in req.drop]
    while True:
        fp = fingerprints.FingerprintWriter(name, include, req.id_columns)
        counter = risk.ClassCounter(req.quasi_identifiers)
        non_null = dict.fromkeys(req.id_columns, 0)
        out = stage / f"{name}.parquet"
        sink = None
        rows = 0
        objections.removed = 0
        try:
            for batch in src.batches(read):
                batch = objections.filter(batch)
                if len(read) > len(include):
                    batch = batch.select(include)
                if batch.num_rows == 0:
                    continue
                if req.id_columns:
                    arrays = list(batch.columns)
                    for c in req.id_columns:
                        i = batch.schema.get_field_index(c)
                        arrays[i] = pseudonym.pseudonymise(arrays[i], key)
                        non_null[c] += len(arrays[i]) - arrays[i].null_count
                    schema = pa.schema([f.with_type(a.type) for f, a in zip(batch.schema, arrays)])
                    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
                if sink is None:
                    sink = _ParquetSink(out, batch.schema)
                sink.put(batch)
                counter.add(batch, fp.add(batch))  # the risk count reuses the fingerprint hashes
                rows += batch.num_rows
            if sink is None:  # no data rows: still write a valid, empty file with the columns
                schema = pa.schema([pa.field(c, pa.string()) if c in req.id_columns else src.schema.field(c)
                                    for c in include])
                sink = _ParquetSink(out, schema)
            sink.close()
            sink = None
            return fp, counter, non_null, rows, include
        except BaseException as exc:
            if sink is not None:  # stop the writer thread and release the file, whatever went wrong
                try:
                    sink.close()
                except BaseException:  # noqa: BLE001 - the first error is what matters
                    pass
            out.unlink(missing_ok=True)
            if not (isinstance(exc, pa.ArrowInvalid) and src.retry_wider(exc)):
                raise


def _publish(stage: Path, data_dir: Path, fp_stage: Path, fp_dir: Path, name: str, done: list[Path]) -> None:
    """Rename staged files into place (Parquet last, so a visible file always has its manifest).

    Each renamed file is appended to `done` at once, so a failure half-way can remove exactly those."""
    for p in sorted(fp_stage.iterdir(), key=lambda p: p.suffix == ".json"):
        target = fp_dir / p.name
        if target.exists():
            raise Conflict(f"fingerprints {target} already exist; remove them or choose another --name")
        os.replace(p, target)
        done.append(target)
    order = [f"{name}.manifest.json", f"{name}.risk.json", f"{name}.risk.html", f"{name}.parquet"]
    for fname in order:
        p = stage / fname
        if not p.exists():
            continue
        os.chmod(p, 0o644)
        target = data_dir / fname
        if target.exists():
            raise Conflict(f"{target} appeared during the import; choose another --name")
        os.replace(p, target)
        done.append(target)


def list_datasets(settings: Settings, slug: str) -> list[Dataset]:
    with db.transaction(settings.database_url) as session:
        project = projects.get(session, slug)
        return list(session.execute(
            select(Dataset).where(Dataset.project_id == project.id).order_by(Dataset.imported_at, Dataset.name)
        ).scalars())


def risk_only(settings: Settings, slug: str, source: Path, quasi_identifiers: list[str]) -> tuple[risk.Report, list[str]]:
    """The risk report of a file without importing it (reads only the quasi-identifier columns)."""
    with db.transaction(settings.database_url) as session:
        projects.get(session, slug)
    if not quasi_identifiers:
        raise Invalid("--quasi-identifiers is required: name the columns someone could know about a person")
    src = Source(Path(source))
    _validate_columns(src, ImportRequest(slug, source, quasi_identifiers=quasi_identifiers))
    while True:
        counter = risk.ClassCounter(quasi_identifiers)
        try:
            for batch in src.batches(quasi_identifiers):
                counter.add(batch)
            break
        except pa.ArrowInvalid as exc:
            if not src.retry_wider(exc):
                raise Invalid(f"{src.path.name} does not parse: {_first_line(exc)}") from None
    rep = risk.report(counter)
    return rep, rep.problems(settings.ingest.max_unique_share, settings.ingest.min_k)

