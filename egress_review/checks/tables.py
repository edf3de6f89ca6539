"""Disclosure checks on tables (CSV, TSV, XLSX, Parquet), streamed batch by batch.

How a table is read (the convention is in docs/checks.md):
- label columns: the first column, and the columns right after it that are text (or named like a label:
  year, age, age_group, code, region, sex...). They name the rows of flagged cells.
- count columns: the other numeric columns holding whole numbers, unless named like a statistic
  (mean, median, sd, pct, rate, ratio, min, max, ...). Counts from 1 to `min_cell_count - 1` are small
  cells (fail); zeros fail when `zeros_are_disclosive`, else warn.
- magnitude columns with contributions: a numeric column `V` followed by `V__top1`, `V__top2`, ...
  (the largest single contributions to each cell) gets the n,k rule (top `nk_n` contributions over
  `nk_k` of the total: fail) and the p% rule (total - top1 - top2 < p * top1: fail). The contribution
  columns themselves are individual values: their presence asks a person to take them out before release.
- statistic columns with no count column beside them: review (the counts behind them are unknown).
- record-level data (see `microdata`) fails, and then cell checks are not reported (they mean nothing
  on records); rows of the project's input data fail.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from egress_review.checks import CELLS_LISTED, Finding, Policy, Unreadable
from egress_review.checks.microdata import InputRowMatcher, RecordLevelSignals, is_text, norm
from egress_review.checks.readers import MARKER, EmptyTable, Restart, TableStream, open_tables
from egress_review.checks.view import TableView

log = logging.getLogger(__name__)
SAMPLE_ROWS = 100_000  # rows kept for the rules that look at a table whole (arithmetic, evidence, releases)
FORMULA = r"^[=+@\t\r]|^-\s*[^\d\s.,]"  # what a spreadsheet would run: =, +, @, or - before a non-number


STAT_NAME = re.compile(
    r"(^|_)(mean|means|avg|average|median|sd|std|stdev|stddev|var|variance|pct|percent|percentage|prop|proportion"
    r"|rate|ratio|share|min|max|q1|q3|iqr|ci|lci|uci|lower|upper|se|sem|or|hr|rr|beta|coef|coefficient|estimate"
    r"|pvalue|p_value|moyenne|mediane|taux|ecart_type|pourcentage|part|score|weight|poids)($|_)"
)
LABEL_NAME = re.compile(
    r"^(year|annee|an|month|mois|week|semaine|quarter|trimestre|day|date|age|age_?(group|band|class|cat|category"
    r"|range)|classe_?(d_?)?age|tranche_?(d_?)?age|code|\w+_code|code_\w+|region|dept|departement|group|groupe"
    r"|category|categorie|sex|sexe|gender|level|niveau|stratum|strate)$"
)
MAGNITUDE_NAME = re.compile(  # sums and means (ACRO checks dominance of both): one large value can dominate
    r"(^|_)(mean|avg|average|moyenne|cost|costs|cout|amount|montant|spend|spending|expenditure"
    r"|depense|price|prix|income|revenu|salary|salaire|turnover|ca)($|_)")
EXTREME_NAME = re.compile(r"(^|_)(min|max|minimum|maximum|mini|maxi|highest|lowest|largest|smallest)($|_)")
CONTRIBUTION = re.compile(r"^(.+)__top(\d+)$")
_TOTAL_WORDS = "total|totals|all|overall|ensemble|sum|somme|tous|toutes"
TOTAL = re.compile(rf"^({_TOTAL_WORDS})$|^total_")  # a column of totals, by its normalised name
TOTAL_LABEL = rf"^\s*({_TOTAL_WORDS})\b"  # a row of totals, by its label (Arrow regex)


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


class _Counts:
    """Running tallies of one count column."""

    def __init__(self, idx: int, name: str):
        self.idx, self.name = idx, name
        self.small = self.zeros = self.negative = self.hidden = self.cells = 0
        self.small_cells: list[tuple[str, str]] = []
        self.zero_cells: list[tuple[str, str]] = []
        self.fractional = False
        self.text = False
        # for differencing against a total row: hidden cells outside total rows, and whether one is shown
        self.hidden_outside_total = 0
        self.hidden_cell: tuple[str, str] | None = None
        self.total_shown = False


class _Magnitude:
    def __init__(self, idx: int, name: str, tops: list[int]):
        self.idx, self.name, self.tops = idx, name, tops
        self.nk = self.p = 0
        self.nk_cells: list[tuple[str, str]] = []
        self.p_cells: list[tuple[str, str]] = []


class TableAnalyzer:
    """Checks one table fed as record batches; `findings()` at the end."""

    def __init__(self, columns: list[str], policy: Policy, sheet: str | None = None, place: str | None = None):
        self.columns = columns
        self.policy = policy
        self.sheet = sheet
        self.place = place
        self.rows = 0
        self.labels: list[int] = []
        self.counts: list[_Counts] = []
        self.magnitudes: list[_Magnitude] = []
        self.statistics: list[str] = []
        self.contributions: list[str] = []
        self.signals: RecordLevelSignals | None = None
        self.input_rows = InputRowMatcher(policy)
        self.numeric_text: set[int] = set()
        self.recoverable = 0
        self.recoverable_cells: list[tuple[str, str]] = []
        self.text_columns: list[str] = []
        self.extremes: list[str] = []
        self.sample: list[pa.RecordBatch] = []
        self.sampled = 0
        self.formulas = 0
        self.formula_cells: list[tuple[str, str]] = []
        self.grouping: list[str] = []  # numeric columns read as labels from their values or the data

    # -- roles, from the first batch's types and the column names
    def _assign_roles(self, batch: pa.RecordBatch) -> None:
        names = self.columns
        self.numeric_text = {j for j in range(1, batch.num_columns) if _numbers_as_text(batch.column(j))}
        types = [pa.float64() if i in self.numeric_text else batch.schema.field(i).type for i in range(len(names))]
        lower = {n: i for i, n in enumerate(names)}
        contrib: dict[int, list[tuple[int, int]]] = {}
        is_contrib = set()
        for i, n in enumerate(names):
            m = CONTRIBUTION.match(n)
            if m and m.group(1) in lower and _numeric(types[i]) and _numeric(types[lower[m.group(1)]]):
                contrib.setdefault(lower[m.group(1)], []).append((int(m.group(2)), i))
                is_contrib.add(i)
        if len(names) == 1 and _numeric(types[0]):
            self.labels = []  # a single column of numbers: counts without labels
        elif names:
            self.labels = [0]
        for i in range(1, len(names)):
            if i in is_contrib or i in contrib:
                break
            if not _numeric(types[i]) or LABEL_NAME.match(norm(names[i])):
                self.labels.append(i)
            elif self._is_grouping(batch, i, types):
                self.labels.append(i)
                self.grouping.append(names[i])
            else:
                break
        for i, n in enumerate(names):
            if i in self.labels or i in is_contrib:
                continue
            if is_text(types[i]):
                self.text_columns.append(n)
                continue
            if i in contrib:
                self.magnitudes.append(_Magnitude(i, n, [j for _, j in sorted(contrib[i])]))
                self.contributions += [names[j] for _, j in sorted(contrib[i])]
            elif _numeric(types[i]):
                if LABEL_NAME.match(norm(n)):
                    self.labels.append(i)  # year, age... further right: still a label, not a count
                elif EXTREME_NAME.search(norm(n)):
                    self.extremes.append(n)
                elif STAT_NAME.search(norm(n)) or "%" in n:
                    self.statistics.append(n)
                else:
                    self.counts.append(_Counts(i, n))
        self.signals = RecordLevelSignals(names, self.labels)

    def _is_grouping(self, batch: pa.RecordBatch, i: int, types) -> bool:
        """A numeric column right of the labels that groups rather than measures (`los_days` 1, 2, 3...
        with counts beside it): its name is a numeric column of the project's data holding its values,
        or its whole-number values form an even grid (the same step, each value as often)."""
        if not any(_numeric(t) for t in types[i + 1:]):
            return False  # the last number of a row is what the row measures
        arr = batch.column(i)
        if i in self.numeric_text:
            return False
        values = [v for v in arr.to_pylist() if v is not None]
        if len(values) < 3 or any(not float(v).is_integer() for v in values):
            return False
        if self._a_column_of_the_data(i, values):
            return True
        distinct = sorted(set(values))
        if len(distinct) < 3:
            return False
        steps = {b - a for a, b in zip(distinct, distinct[1:])}
        if len(steps) != 1:
            return False
        per_value = set(Counter(values).values())
        return len(per_value) == 1 and (len(distinct) >= 5 or per_value != {1})

    def _a_column_of_the_data(self, i: int, values: list) -> bool:
        """Whether column i is a column of the project's data by name, holding that column's values."""
        data = self.policy.data
        if not data:
            return False
        from egress_review.checks.evidence import match_column

        try:
            for ds in data.datasets:
                if any(norm(c) == norm(self.columns[i]) for c in data.candidates(ds)):
                    m = match_column(data, ds, self.columns[i], values, exact_only=True)
                    if m is not None and norm(m.source) == norm(self.columns[i]):
                        return True
        except Exception:  # noqa: BLE001 - a dataset it cannot read: the values alone decide
            log.exception("reading the project's data to tell a grouping column failed")
        return False

    def feed(self, batch: pa.RecordBatch) -> None:
        if self.signals is None:
            self._assign_roles(batch)
        if self.numeric_text:
            batch = _with_numbers(batch, self.numeric_text)
        offset = self.rows
        if self.sampled < SAMPLE_ROWS:
            part = batch.slice(0, SAMPLE_ROWS - self.sampled)
            self.sample.append(part)
            self.sampled += part.num_rows
        self._formulas(batch, offset)
        m = self.policy.min_cell_count
        for c in self.counts:
            arr = batch.column(c.idx)
            if not _numeric(arr.type):
                c.text = True  # a later sheet chunk had text here: not a count column after all
                continue
            if c.text or c.fractional:
                continue
            if pa.types.is_floating(arr.type) and _true(pc.not_equal(arr, pc.floor(arr))):
                c.fractional = True
                continue
            c.cells += len(arr) - arr.null_count
            c.hidden += arr.null_count
            small = pc.and_(pc.greater(arr, 0), pc.less(arr, m))
            n_small = _true(small)
            if n_small:
                c.small += n_small
                self._collect(batch, small, offset, c.name, c.small_cells)
            zero = pc.equal(arr, 0)
            n_zero = _true(zero)
            if n_zero:
                c.zeros += n_zero
                self._collect(batch, zero, offset, c.name, c.zero_cells)
            c.negative += _true(pc.less(arr, 0))
        for g in self.magnitudes:
            self._dominance(batch, g, offset)
        self._recoverable(batch, offset)
        self.signals.feed(batch)
        if self.input_rows.active:
            self.input_rows.feed(batch, offset)
        self.rows += batch.num_rows

    def _formulas(self, batch: pa.RecordBatch, offset: int) -> None:
        """Cells a spreadsheet would run as formulas (=HYPERLINK(...), +cmd, @SUM...): CSV injection."""
        for j in range(batch.num_columns):
            arr = batch.column(j)
            if not is_text(arr.type):
                continue
            if pa.types.is_dictionary(arr.type):
                arr = arr.cast(pa.string())
            hit = pc.fill_null(pc.match_substring_regex(arr, FORMULA), False)
            n = _true(hit)
            if n:
                self.formulas += n
                room = CELLS_LISTED - len(self.formula_cells)
                for i in pc.indices_nonzero(hit).slice(0, max(room, 0)).to_pylist():
                    self.formula_cells.append((f"row {offset + i + 1}", self._col(self.columns[j])))

    def _constant_counts(self, out: list[Finding], counts, view, where: str) -> None:
        """Every count the same number over many rows: made-up counts over rows that may be records."""
        if view is None or view.n_rows < 5:
            return
        for c in counts:
            values = {v for v in view.values.get(c.name, []) if v is not None}
            if len(values) == 1:
                out.append(Finding(
                    "constant_counts", "review",
                    f"{where}every value of '{c.name}' is {_fmt(next(iter(values)))} over {view.n_rows:,} rows: real "
                    "counts differ from row to row; a person must check the rows are not records with a made-up "
                    "count"))
                return

    def view(self) -> TableView:
        """The first SAMPLE_ROWS rows with their roles, for the rules that look at the table whole."""
        names = self.columns
        values: dict[str, list] = {n: [] for n in names}  # batch by batch: types may differ between chunks
        for batch in self.sample:
            for i, n in enumerate(names[: batch.num_columns]):
                values[n] += batch.column(i).to_pylist()
        labels = [names[j] for j in self.labels]
        counts = [c.name for c in self.counts if not c.fractional and not c.text]
        measures = ([c.name for c in self.counts if c.fractional or c.text] + self.statistics
                    + [g.name for g in self.magnitudes] + self.extremes)

        def row_label(r: int) -> str:
            label = " / ".join(v for v in (_fmt(values[c][r]) for c in labels) if v)
            return label or f"row {r + 1}"

        return TableView(list(names), values, labels, counts, measures, row_label, self._col)

    def _recoverable(self, batch: pa.RecordBatch, offset: int) -> None:
        """Suppressed (hidden) cells that a total gives back by subtraction: the only hidden cell of a
        row that has a total column, or of a column that has a total row."""
        counts = [c for c in self.counts if not c.text and not c.fractional and _numeric(batch.column(c.idx).type)]
        if not any(batch.column(c.idx).null_count for c in counts):
            return
        totals = [c for c in counts if TOTAL.match(norm(c.name))]
        parts = [c for c in counts if c not in totals]
        if totals and parts:  # row-wise: one hidden part and a shown total
            hidden = [pc.is_null(batch.column(c.idx)) for c in parts]
            n_hidden = pc.cast(hidden[0], pa.int8())
            for h in hidden[1:]:
                n_hidden = pc.add(n_hidden, pc.cast(h, pa.int8()))
            shown_total = pc.is_valid(batch.column(totals[0].idx))
            lone = pc.and_(pc.equal(n_hidden, 1), shown_total)
            if _true(lone):
                for c, h in zip(parts, hidden):
                    mask = pc.and_(lone, h)
                    if _true(mask):
                        self.recoverable += _true(mask)
                        self._collect(batch, mask, offset, c.name, self.recoverable_cells)
        total_row = None  # column-wise: a row labelled "Total"
        for j in self.labels:
            col = batch.column(j)
            if is_text(col.type):
                m = pc.match_substring_regex(pc.utf8_lower(col.cast(pa.string())), TOTAL_LABEL)
                total_row = m if total_row is None else pc.or_(total_row, m)
        if total_row is None:
            return
        total_row = pc.fill_null(total_row, False)
        for c in parts or counts:
            arr = batch.column(c.idx)
            hidden = pc.and_(pc.is_null(arr), pc.invert(total_row))
            n = _true(hidden)
            if n and c.hidden_outside_total == 0:
                found: list = []
                self._collect(batch, hidden, offset, c.name, found)
                c.hidden_cell = found[0] if found else None
            c.hidden_outside_total += n
            c.total_shown = c.total_shown or bool(_true(pc.and_(pc.is_valid(arr), total_row)))

    def _dominance(self, batch: pa.RecordBatch, g: _Magnitude, offset: int) -> None:
        total = pc.cast(batch.column(g.idx), pa.float64())
        tops = [pc.cast(batch.column(j), pa.float64()) for j in g.tops]
        positive = pc.greater(total, 0)
        top_n = tops[0]
        for t in tops[1 : self.policy.nk_n]:
            top_n = pc.add(top_n, pc.fill_null(t, 0))
        nk = pc.and_(positive, pc.greater(top_n, pc.multiply(total, self.policy.nk_k)))
        n = _true(nk)
        if n:
            g.nk += n
            self._collect(batch, nk, offset, g.name, g.nk_cells)
        second = pc.fill_null(tops[1], 0) if len(tops) > 1 else pa.nulls(len(total), pa.float64()).fill_null(0)
        rest = pc.subtract(pc.subtract(total, tops[0]), second)
        p = pc.and_(positive, pc.less(rest, pc.multiply(tops[0], self.policy.p_ratio)))
        n = _true(p)
        if n:
            g.p += n
            self._collect(batch, p, offset, g.name, g.p_cells)

    def _collect(self, batch, mask, offset: int, column: str, into: list) -> None:
        room = CELLS_LISTED - len(into)
        if room <= 0:
            return
        idx = pc.indices_nonzero(pc.fill_null(mask, False)).slice(0, room)
        for i, label in zip(idx.to_pylist(), self._row_labels(batch, idx, offset)):
            into.append((label, self._col(column)))

    def _row_labels(self, batch, idx, offset: int) -> list[str]:
        parts = [batch.column(j).take(idx).to_pylist() for j in self.labels if j < batch.num_columns]
        out = []
        for k, i in enumerate(idx.to_pylist()):
            values = [_fmt(p[k]) for p in parts]
            label = " / ".join(v for v in values if v)
            out.append(label or f"row {offset + i + 1}")
        return out

    def _col(self, name: str) -> str:
        return f"{self.sheet}!{name}" if self.sheet is not None else name

    # -- verdict
    def findings(self) -> list[Finding]:
        where = (f"{self.place}: " if self.place else f"sheet '{self.sheet}': " if self.sheet is not None else "")
        out: list[Finding] = []
        if self.signals is None or self.rows == 0:
            return [Finding("empty", "warn", f"{where}the table has a header but no rows")]
        inputs = self.input_rows.finding(self.sheet)
        if inputs:
            out.append(inputs)
        if self.formulas:
            out.append(Finding(
                "formula_cells", "warn",
                f"{where}{self.formulas:,} cell{'s' if self.formulas > 1 else ''} start like a spreadsheet formula "
                "(=, +, -, @): a spreadsheet opening the file would run them; previews show them as text. Prefix "
                "them with a quote or remove them" + _more(self.formulas, self.formula_cells), cells=self.formula_cells))
        view = self.view() if self.sample else None
        if view is not None and self.policy.data:
            out += _evidence(view, self.policy, where)
        reasons = self.signals.reasons()
        for note in self.signals.name_notes():
            out.append(Finding("record_level", "review", f"{where}{note}: a person must check it holds no records"))
        if reasons:
            out.append(Finding(
                "record_level", "fail",
                f"{where}this looks like record-level data, not aggregates: " + "; ".join(reasons)
                + ". Record-level data is never released; release tables of counts or statistics instead "
                "(cell checks are not reported on records)."))
            return out
        counts = [c for c in self.counts if not c.fractional and not c.text]
        self.statistics += [c.name for c in self.counts if c.fractional or c.text]
        m = self.policy.min_cell_count
        small = [c for c in counts if c.small]
        if small:
            total = sum(c.small for c in small)
            cells = [cell for c in small for cell in c.small_cells][:CELLS_LISTED]
            out.append(Finding(
                "small_cells", "fail",
                f"{where}{total:,} cell{'s' if total > 1 else ''} under {m} (in {_names(small)}): suppress, "
                f"merge categories or round so that no cell shows 1 to {m - 1}" + _more(total, cells),
                cells=cells))
        zeros = [c for c in counts if c.zeros]
        if zeros:
            total = sum(c.zeros for c in zeros)
            cells = [cell for c in zeros for cell in c.zero_cells][:CELLS_LISTED]
            sev = "fail" if self.policy.zeros_are_disclosive else "warn"
            why = ("zeros are disclosive under this policy (an empty cell tells that nobody in a group has "
                   "the attribute)" if self.policy.zeros_are_disclosive else "check they do not reveal "
                   "that nobody in a group has an attribute")
            out.append(Finding("zeros", sev, f"{where}{total:,} zero cell{'s' if total > 1 else ''} "
                               f"(in {_names(zeros)}): {why}" + _more(total, cells), cells=cells))
        by_column = [c.hidden_cell for c in counts
                     if c.hidden_outside_total == 1 and c.total_shown and c.hidden_cell is not None]
        extra = [cell for cell in by_column if cell not in self.recoverable_cells]  # not already found row-wise
        recoverable = self.recoverable_cells + extra
        if recoverable:
            n = self.recoverable + len(extra)
            out.append(Finding(
                "recoverable_suppression", "fail",
                f"{where}{n:,} suppressed cell{'s' if n > 1 else ''} can be worked out from a total (the only "
                "hidden cell of its row or column): suppress a second cell there too, or drop the total"
                + _more(n, recoverable[:CELLS_LISTED]), cells=recoverable[:CELLS_LISTED]))
        negative = [c for c in counts if c.negative]
        if negative:
            out.append(Finding("negative_counts", "warn",
                               f"{where}negative values in {_names(negative)}: are these really counts?"))
        for g in self.magnitudes:
            if g.nk:
                out.append(Finding(
                    "dominance_nk", "fail",
                    f"{where}{g.nk:,} cell{'s' if g.nk > 1 else ''} of '{g.name}' where the {self.policy.nk_n} "
                    f"largest contributions exceed {self.policy.nk_k:.0%} of the total (n,k rule)"
                    + _more(g.nk, g.nk_cells), cells=g.nk_cells))
            if g.p:
                out.append(Finding(
                    "dominance_p", "fail",
                    f"{where}{g.p:,} cell{'s' if g.p > 1 else ''} of '{g.name}' where the total minus the two "
                    f"largest contributions is under {self.policy.p_ratio:.0%} of the largest (p% rule): the "
                    "second contributor could estimate the first" + _more(g.p, g.p_cells), cells=g.p_cells))
        if self.extremes and not any(f.check == "data_extremes" for f in out):
            out.append(Finding(
                "extremes", "review",
                f"{where}{', '.join(repr(c) for c in self.extremes)} are named like minimum or maximum values: "
                "each may be one person's value (a person must check, or the project's data decides: "
                "data_extremes); show percentiles or ranges instead"))
        if self.contributions:
            out.append(Finding(
                "contributions", "review",
                f"{where}columns {', '.join(repr(c) for c in self.contributions)} hold single contributors' "
                "values (used for the dominance checks): take them out of the file to be released"))
        checked = {g.name for g in self.magnitudes} | {  # contributions given, or the data recomputed them
            c for c, what in (view.recognised.items() if view is not None else ()) if re.match(r"(sum|mean) of ", what)}
        unchecked = [c for c in self.statistics + [c.name for c in counts]
                     if MAGNITUDE_NAME.search(norm(c)) and c not in checked]
        if unchecked and (counts or self.statistics):
            out.append(Finding(
                "dominance_unchecked", "review",
                f"{where}{', '.join(repr(c) for c in unchecked)} are sums or means, and nothing "
                "tells whether one or two contributors dominate a cell (no __top1/__top2 columns, no match with "
                "the project's data): a person must check, or add the largest contributions"))
        self._constant_counts(out, counts, view, where)
        if self.statistics and not counts:
            out.append(Finding(
                "statistics", "review",
                f"{where}{', '.join(repr(s) for s in self.statistics)} hold statistics with no count column "
                "beside them: a person must check how many people each value rests on"))
        if not counts and not self.statistics and not self.magnitudes:
            out.append(Finding("no_counts", "review",
                               f"{where}no numeric columns besides the labels: a person must check what it shows"))
        if self.text_columns:
            out.append(Finding("text_columns", "review",
                               f"{where}text in {', '.join(repr(c) for c in self.text_columns)} (right of the "
                               "numbers) is not checked automatically: a person must read it"))
        if view is not None:
            from egress_review.checks import arithmetic, releases

            out += arithmetic.check(view, self.policy, where)
            out += releases.check(view, self.policy, where)
        if self.grouping:
            out.append(Finding("reading", "pass", f"{where}{', '.join(repr(c) for c in self.grouping)} read as "
                               "grouping (label) columns: their values form a grid or are values of the data"))
        dups = self.signals.repeated_labels()
        if dups:
            out.append(Finding("repeated_labels", "warn",
                               f"{where}{dups:,} rows repeat the labels of another row: check no cell is "
                               "shown twice in ways that can be differenced"))
        if not any(f.severity != "pass" for f in out):
            n_cells = sum(c.cells for c in counts)
            out.append(Finding(
                "table", "pass",
                f"{where}{self.rows:,} rows; {n_cells:,} count cells in {len(counts)} column"
                f"{'s' if len(counts) != 1 else ''}, none under {m}"
                + ("" if not self.policy.zeros_are_disclosive else ", no zeros")
                + (f"; {len(self.magnitudes)} magnitude column(s) pass the p% and n,k rules" if self.magnitudes else "")))
        return out


def _evidence(view: TableView, policy: Policy, where: str) -> list[Finding]:
    """The comparison with the project's data; when it cannot run (a dataset it cannot read), the
    table still gets its other checks and a person is told what was not done (review, never a pass)."""
    from egress_review.checks import evidence

    try:
        return evidence.check(view, policy, policy.data, where)
    except Exception as exc:  # noqa: BLE001 - a dataset the comparison cannot read must not hide the rest
        log.exception("comparison with the project's data failed")
        return [Finding("data_unmatched", "review",
                        f"{where}the comparison with the project's data could not run ({type(exc).__name__}: "
                        f"{str(exc)[:200]}): a person must check the cells against the data")]


def check(path: Path, policy: Policy, name: str) -> list[Finding]:
    findings: list[Finding] = []
    tables = 0
    try:
        for stream in open_tables(path, name):
            tables += 1
            findings += _check_stream(stream, policy)
            for severity, note in stream.notes:
                findings.append(Finding("reading", severity, note))
    except EmptyTable as exc:
        return [Finding("empty", "warn", str(exc))]
    if not tables:
        findings.append(Finding("empty", "warn", "the workbook holds no table"))
    from egress_review.checks.acro import beside

    findings += beside(path, name)
    return _dedupe(findings)


def _check_stream(stream: TableStream, policy: Policy) -> list[Finding]:
    return _analyse(stream, policy).findings()


def _analyse(stream: TableStream, policy: Policy, max_rows: int | None = None) -> TableAnalyzer:
    while True:
        analyzer = TableAnalyzer(stream.columns, policy, stream.sheet, stream.place)
        try:
            for batch in stream.open():
                if batch.num_columns != len(stream.columns):
                    raise Unreadable(f"a block has {batch.num_columns} columns where the header has "
                                     f"{len(stream.columns)}")
                analyzer.feed(batch)
                if max_rows is not None and analyzer.rows >= max_rows:
                    break
        except Restart:
            continue
        return analyzer


def check_embedded(found: list, policy: Policy) -> list[Finding]:
    """The table checks on tables found inside a notebook or a text file (checks.embedded)."""
    from egress_review.checks.embedded import as_csv_files

    out: list[Finding] = []
    for table, path in as_csv_files(found):
        try:
            for stream in open_tables(path, path.name):
                stream.place = table.place
                out += _check_stream(stream, policy)
        except Unreadable as exc:
            out.append(Finding("reading", "review", f"{table.place}: not read as a table ({exc})"))
    return _dedupe(out)


def views_of(path: Path, name: str, policy: Policy, max_rows: int) -> list[TableView]:
    """Each table of a file as a view (its roles, first rows): how a released table is compared."""
    from dataclasses import replace

    plain = replace(policy, data=None, released=(), project=None)
    return [_analyse(stream, plain, max_rows).view() for stream in open_tables(path, name)]


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        key = (f.check, f.severity, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


_SPACES = " \u00a0\u202f'"  # thousands separators that cannot be decimal points
_NUMBER_TEXT = r"^\s*[-+]?(\d{1,3}([" + _SPACES + r",.]\d{3})+|\d+)([.,]\d+)?\s*$"
_MARKER_TEXT = rf"^\s*{MARKER}\s*$"


def _numbers_as_text(arr) -> bool:
    """A text column of numbers written for people ("1 234", "1,234", "12,5", with "*" or "<10" among them)."""
    if not is_text(arr.type):
        return False
    present = arr.drop_null()
    if pa.types.is_dictionary(present.type):
        present = present.cast(pa.string())
    if len(present) == 0:
        return False
    numbers = _true(pc.match_substring_regex(present, _NUMBER_TEXT))
    markers = _true(pc.match_substring_regex(present, _MARKER_TEXT, ignore_case=True))
    if not numbers or numbers + markers != len(present):
        return False
    if _true(pc.match_substring_regex(present, r"^\s*[-+]?0\d")):
        return False  # leading zeros: codes ("01", "75001"), not numbers
    # written for people: grouped thousands or a decimal comma, or hidden values among the numbers
    return bool(markers) or _true(pc.match_substring_regex(present, r"\d[" + _SPACES + r",.]\d")) > 0


def _with_numbers(batch: pa.RecordBatch, columns: set[int]) -> pa.RecordBatch:
    arrays = list(batch.columns)
    for j in columns:
        arr = arrays[j]
        if not is_text(arr.type):
            continue
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(pa.string())
        text = pc.replace_substring_regex(arr, "[" + _SPACES + "]", "")
        text = _drop_thousands(text)
        hidden = pc.match_substring_regex(text, _MARKER_TEXT, ignore_case=True)
        text = pc.if_else(hidden, pa.scalar(None, pa.string()), text)
        try:
            arrays[j] = pc.cast(text, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # not numbers after all in this batch: the column is reported as text
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _drop_thousands(text):
    """'1,234,567' / '1.234.567' -> '1234567'; then a decimal comma becomes a point ('12,5' -> '12.5')."""
    grouped = pc.match_substring_regex(text, r"^[-+]?\d{1,3}([,.]\d{3})+$")
    stripped = pc.replace_substring_regex(text, r"[,.]", "")
    text = pc.if_else(grouped, stripped, text)
    return pc.replace_substring(text, ",", ".")


def _true(mask) -> int:
    return int(pc.sum(mask).as_py() or 0) if mask.type == pa.bool_() else int(bool(pc.any(mask).as_py()))


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _names(cols) -> str:
    return ", ".join(f"'{c.name}'" for c in cols)


def _more(total: int, listed: list) -> str:
    return f" (first {len(listed)} listed)" if total > len(listed) else ""


__all__ = ["check", "TableAnalyzer", "is_text"]
