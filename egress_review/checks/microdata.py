"""Is this table record-level data (one row per person or event) rather than aggregates? And does it
hold rows of the project's own input data?

Signals, each enough for a `fail` (documented in docs/checks.md):
- a column named like a person identifier (`patient_id`, `nir`, `ben_nir_psa`, `subject`, `id`...)
  whose values are different codes (90% distinct, with digits or 8+ characters); a name alone asks a person
  to look (`review`): names never fail a table by themselves;
- a column of identifier-like values: in the first 100,000 rows at least 95% distinct, at least 8
  characters, digits in nearly all of them, one token each (letters, digits, `_+/=-`), not dates
  (hashes, pseudonyms, NIR-like numbers);
- a column named like a date or year of birth (`dob`, `birth_date`, `date_naissance`, `ben_nai_ann`...)
  holding dates, or years that are not bands (not all multiples of 5); decades only ask for a look;
- free text: a text column whose values average 60+ characters and 8+ spaces;
- label combinations that repeat: in a table of aggregates every row is a distinct cell, so when 20% of
  the first million rows repeat the labels of another row, the rows are records;
- more than 100,000 rows: far beyond any table of aggregates a person could check.
The input-data check asks `enclave.fingerprints.find_input_rows` (the importer's fingerprints of the
project's rows) about each batch of rows.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from egress_review.checks import Finding, Policy

_DATE = r"^\d{4}[-/]\d{1,2}([-/]\d{1,2})?([T ].*)?$|^\d{1,2}[-/]\d{1,2}[-/]\d{2,4}$"
MICRODATA_ROWS = 100_000
ID_SAMPLE_ROWS = 100_000
DUP_SAMPLE_ROWS = 1_000_000
DUP_SHARE = 0.20
ROWS_LISTED = 20

ID_NAME = re.compile(
    r"^(id|uid|pid|ident|identifier|identifiant|nir|ssn|mrn|nhs_?(number|no|num)|ben_nir\w*|nir_\w+|\w+_nir"
    r"|num_enq|patient|person|subject|participant|individual|individu)$"
    r"|(patient|person|subject|participant|individual|individu|beneficiaire|benef|member|client|user|study)"
    r"_?(id|ident|identifier|identifiant|key|no|num|number|code|pseudo|hash)$"
    r"|^(id|num|code|cle|key)_?(patient|person|subject|participant|individu|individual|benef|beneficiaire)"
)
BIRTH_NAME = re.compile(
    r"^(dob|ddn|yob|birthdate|birthday|birth_?date|date_?of_?birth|birth_?(year|month|day)|year_?of_?birth"
    r"|date_?(de_?)?naiss(ance)?|dt_?naiss(ance)?|(an|annee)_?(de_?)?naiss(ance)?|mois_?(de_?)?naiss(ance)?"
    r"|ben_nai_(ann|moi)|naissance)$"
)


def norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (
        pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)))


class RecordLevelSignals:
    """Fed batch by batch; `reasons()` says why the table is record-level (empty list: it is not)."""

    def __init__(self, columns: list[str], label_idx: list[int]):
        self.columns = columns
        self.label_idx = label_idx
        self.rows = 0
        self.by_name: list[str] = []  # names the values confirm: records
        self.named: dict[int, str] = {}  # column -> "identifier" / "birth", until the values are seen
        self.notes: list[str] = []  # names the values do not confirm: a person looks
        for j, name in enumerate(columns):
            n = norm(name)
            if ID_NAME.search(n):
                self.named[j] = "identifier"
            elif BIRTH_NAME.search(n):
                self.named[j] = "birth"
        self.by_value: list[str] = []
        self.dup_rows = 0
        self.dup_sampled = 0
        self._first = True

    def feed(self, batch: pa.RecordBatch) -> None:
        if self._first:
            self._first = False
            self._look_at_values(batch.slice(0, ID_SAMPLE_ROWS))
        if self.dup_sampled < DUP_SAMPLE_ROWS and self.label_idx and batch.num_rows:
            part = batch.slice(0, DUP_SAMPLE_ROWS - self.dup_sampled)
            keys = [f"k{i}" for i in range(len(self.label_idx))]
            try:
                t = pa.table([part.column(i) for i in self.label_idx], names=keys)
                distinct = t.group_by(keys).aggregate([]).num_rows
            except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
                distinct = part.num_rows  # a label type group_by cannot key on: say nothing
            self.dup_rows += part.num_rows - distinct
            self.dup_sampled += part.num_rows
        self.rows += batch.num_rows

    def _confirm_names(self, batch: pa.RecordBatch) -> None:
        for j, what in self.named.items():
            if j >= batch.num_columns:
                continue
            name = self.columns[j]
            values = [v for v in batch.column(j).to_pylist() if v is not None and str(v).strip() != ""]
            if what == "identifier":
                codes = sum(1 for v in values if re.search(r"\d", str(v)) or re.fullmatch(r"\S{8,}", str(v)))
                confirmed = (len(values) >= 5 and len(set(values)) >= 0.9 * len(values)
                             and codes >= 0.8 * len(values))  # codes, not category names
                said = f"column '{name}' is named like a person identifier"
                why = f" and {len(set(values)):,} of its {len(values):,} values are different codes"
            else:
                dates = sum(1 for v in values if re.match(_DATE, str(v)) or hasattr(v, "year"))
                years = [v for v in values if isinstance(v, (int, float)) and float(v).is_integer()]
                confirmed = bool(values) and (dates >= 0.5 * len(values)
                                              or (len(years) >= 0.5 * len(values) and any(y % 5 for y in years)))
                said = f"column '{name}' is named like a date or year of birth"
                why = " and holds dates or single years"
            (self.by_name.append(said + why) if confirmed else self.notes.append(said))

    def name_notes(self) -> list[str]:
        """Names that look like identifiers or birth dates, with values that do not: worth a look."""
        return self.notes

    def _look_at_values(self, batch: pa.RecordBatch) -> None:
        self._confirm_names(batch)
        for j, name in enumerate(self.columns[: batch.num_columns]):
            arr = batch.column(j)
            if not is_text(arr.type):
                continue
            if pa.types.is_dictionary(arr.type):
                arr = arr.cast(pa.string())
            present = arr.drop_null()
            k = len(present)
            if k < 1:
                continue
            lengths = pc.utf8_length(present)
            mean_len = pc.mean(lengths).as_py() or 0
            spaces = pc.mean(pc.count_substring(present, " ")).as_py() or 0
            if mean_len >= 60 and spaces >= 8:
                self.by_value.append(f"column '{name}' holds free text (values average {mean_len:.0f} characters)")
                continue
            if k >= 100 and (pc.min(lengths).as_py() or 0) >= 8:
                distinct = pc.count_distinct(present).as_py()
                digits = pc.sum(pc.match_substring_regex(present, r"\d")).as_py() or 0
                tokens = pc.sum(pc.match_substring_regex(present, r"^[A-Za-z0-9_+/=-]+$")).as_py() or 0
                dates = pc.sum(pc.match_substring_regex(present, _DATE)).as_py() or 0
                if distinct >= 0.95 * k and digits >= 0.9 * k and tokens == k and dates < 0.5 * k:
                    self.by_value.append(
                        f"column '{name}' holds identifier-like values ({distinct:,} distinct codes of 8+ "
                        f"characters in {k:,} rows)")

    def reasons(self) -> list[str]:
        out: list[str] = []
        if self.rows >= 2:
            out += self.by_name + self.by_value
        if self.dup_sampled >= 20 and self.dup_rows >= DUP_SHARE * self.dup_sampled:
            out.append(f"{self.dup_rows:,} of the first {self.dup_sampled:,} rows repeat the labels of another "
                       "row (in a table of aggregates each row is a different cell)")
        if self.rows > MICRODATA_ROWS:
            out.append(f"{self.rows:,} rows: more than {MICRODATA_ROWS:,}, far beyond a table of aggregates")
        return out

    def repeated_labels(self) -> int:
        return self.dup_rows


class InputRowMatcher:
    """Asks the importer's fingerprints which rows of each batch are rows of the project's input data."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.find = None
        self.problem: Finding | None = None
        if policy.project is None:
            return
        try:
            from enclave.fingerprints import find_input_rows
        except ImportError:
            self.problem = Finding(
                "input_rows", "review",
                "the comparison with the project's input data is not installed on this enclave: a person "
                "must check that no rows of the input data are in the file")
            return
        if policy.state_dir is None:
            self.problem = Finding("input_rows", "review",
                                   "no state folder given, so the file was not compared with the project's input data")
            return
        self.find = find_input_rows
        self.matches = 0
        self.listed: list[int] = []

    @property
    def active(self) -> bool:
        return self.find is not None

    def feed(self, batch: pa.RecordBatch, offset: int) -> None:
        frame = batch.to_pandas()
        hits = self.find(self.policy.state_dir, self.policy.project, frame)
        self.matches += len(hits)
        for i in hits:
            if len(self.listed) >= ROWS_LISTED:
                break
            self.listed.append(offset + int(i) + 1)

    def finding(self, sheet: str | None) -> Finding | None:
        if self.problem is not None:
            return self.problem
        if not self.active:
            return None
        where = f" of sheet '{sheet}'" if sheet else ""
        if self.matches:
            return Finding(
                "input_rows", "fail",
                f"{self.matches:,} rows{where} are rows of project '{self.policy.project}''s input data: "
                "input data never leaves the enclave",
                cells=[(f"row {n}", "(whole row)") for n in self.listed])
        return Finding("input_rows", "pass", f"no row{where} matches the project's input data")
