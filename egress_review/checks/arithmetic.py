"""Arithmetic on a table itself: what its numbers give back when combined (no data needed).

- `small_percentages` (fail): a percentage shown next to its denominator is a count: 3.3% of 30 is 1.
  A count column is a percentage's denominator when percentage x count / 100 lands on a whole number
  (within the percentage's shown rounding) on at least 80% of the rows; each cell whose count can only
  be 1 to `min_cell_count - 1` (or 0, when zeros are disclosive) fails.
- `residual_df` (fail): a model with fewer than 10 residual degrees of freedom (ACRO's threshold), from
  a `df_resid` column, or from the number of observations (a row or column `n_obs`, `nobs`,
  `observations`...) minus the number of estimated terms (rows with a coefficient).
- `recoverable_suppression` (fail): totals found by value, not only by name: a column equal to the sum
  of other count columns on every row (Persons = Males + Females), a row equal to the sum of the rows
  of its block (the rows sharing its first label, or the whole table). A hidden cell that is the only
  hidden part of such a total, or a hidden total whose parts are all shown, can be worked out.
- `extremes` (review): a `describe()` table (rows `min` and `max`): each is one person's value unless
  many share it; the data says which (`data_extremes`).
"""

from __future__ import annotations

import math
import re

from egress_review.checks import CELLS_LISTED, Finding, Policy
from egress_review.checks.view import TableView, canon

CONSISTENT_SHARE = 0.8
RESIDUAL_DF = 10
PERCENT_NAME = re.compile(r"(^|_)(pct|percent|percentage|pourcentage|pc|share|prop|proportion|part|taux)($|_)|%")
DF_NAME = re.compile(r"^(df_?resid(ual)?|resid(ual)?_?df|df_?residuals?|ddl_?res(iduel)?)$")
NOBS_NAME = re.compile(r"^(n_?obs|nobs|n|observations|no_?(of_)?observations|n_?observations|number_of_observations"
                       r"|nb_?obs|effectif)$")
COEF_NAME = re.compile(r"^(coef|coefficient|coefficients|estimate|estimates|beta|b|or|hr|rr|irr|odds_ratio)$")


def _norm(name) -> str:
    return re.sub(r"[^0-9a-z%]+", "_", str(name).lower()).strip("_")


def _shown(v) -> bool:
    return isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))


def _decimals(values) -> int:
    d = 0
    for v in values:
        if _shown(v) and isinstance(v, float) and not float(v).is_integer():
            s = repr(float(v))
            d = max(d, len(s.split(".")[1]) if "." in s and "e" not in s else 6)
    return min(d, 6)


def check(view: TableView, policy: Policy, where: str = "") -> list[Finding]:
    out: list[Finding] = []
    out += _percentages(view, policy, where)
    out += _residual_df(view, where)
    out += _totals_by_value(view, where)
    out += _describe(view, where)
    return out


# --- percentages with their denominators -----------------------------------------------------------

def _percentages(view: TableView, policy: Policy, where: str) -> list[Finding]:
    m = policy.min_cell_count
    pcts = [c for c in view.measures if PERCENT_NAME.search(_norm(c))]
    cells, small, zeros = [], 0, 0
    for p in pcts:
        values = view.values[p]
        shown = [v for v in values if _shown(v)]
        if not shown:
            continue
        scale = 1.0 if max(shown) <= 1.0 and not re.search(r"pct|percent|%|pourcentage", str(p).lower()) else 100.0
        half = 0.5 * 10 ** -_decimals(values) + 1e-9
        for n in view.counts:
            rows = [r for r in range(view.n_rows) if _shown(values[r]) and _shown(view.values[n][r])
                    and view.values[n][r] > 0]
            if not rows:
                continue
            whole = 0
            found = []
            for r in rows:
                N = float(view.values[n][r])
                lo = max(0.0, (values[r] - half) * N / scale)
                hi = (values[r] + half) * N / scale
                k = math.ceil(lo - 1e-9)
                if k <= hi + 1e-9:
                    whole += 1
                    if hi < m and (k >= 1 or (k == 0 and policy.zeros_are_disclosive)):
                        found.append((r, k))
            consistent = whole >= CONSISTENT_SHARE * len(rows) and (len(rows) >= 2 or len(pcts) == 1)
            if consistent and any(_informative(values[r], view.values[n][r], half, scale) for r in rows):
                for r, k in found:
                    small += k >= 1
                    zeros += k == 0
                    cells.append((view.row_label(r), view.col_label(p)))
                break
    if not cells:
        return []
    return [Finding(
        "small_percentages", "fail",
        f"{where}{len(cells):,} percentage{'s' if len(cells) > 1 else ''} shown with {'their' if len(cells) > 1 else 'its'} "
        f"denominator give back a count under {m}" + (" or of 0" if zeros else "")
        + ": a percentage of a known total is a count; suppress or merge these cells",
        cells=cells[:CELLS_LISTED])]


def _informative(pct: float, n: float, half: float, scale: float) -> bool:
    """Whether the percentage pins its count down to one whole number (it does for small denominators)."""
    return 2 * half * n / scale < 1


# --- residual degrees of freedom -------------------------------------------------------------------

def _residual_df(view: TableView, where: str) -> list[Finding]:
    for c in view.columns:
        if DF_NAME.match(_norm(c)):
            low = [r for r in range(view.n_rows) if _shown(view.values[c][r]) and view.values[c][r] < RESIDUAL_DF]
            if low:
                return [_df_finding(where, int(view.values[c][low[0]]), f"column '{c}'",
                                    [(view.row_label(r), view.col_label(c)) for r in low[:CELLS_LISTED]])]
    coef = next((c for c in view.columns if COEF_NAME.match(_norm(c))), None)
    if coef is None:
        return []
    first = view.values[view.columns[0]]
    n_obs = None
    stat_rows = set()
    for c in view.columns:
        if NOBS_NAME.match(_norm(c)) and c != coef:
            n_obs = next((v for v in view.values[c] if _shown(v)), None)
            break
    for r, label in enumerate(first):
        if isinstance(label, str) and NOBS_NAME.match(_norm(label)):
            stat_rows.add(r)
            value = next((view.values[c][r] for c in view.columns[1:] if _shown(view.values[c][r])), None)
            n_obs = value if n_obs is None else n_obs
    if n_obs is None:
        return []
    terms = sum(1 for r in range(view.n_rows) if r not in stat_rows and _shown(view.values[coef][r]))
    df = int(n_obs) - terms
    if terms and df < RESIDUAL_DF:
        return [_df_finding(where, df, f"{int(n_obs)} observations and {terms} estimated terms", [])]
    return []


def _df_finding(where: str, df: int, source: str, cells) -> Finding:
    return Finding("residual_df", "fail",
                   f"{where}a model with {df} residual degrees of freedom ({source}); at least {RESIDUAL_DF} are "
                   "needed: with so few observations per term the estimates describe individuals", cells=cells)


# --- totals found by value -------------------------------------------------------------------------

def _totals_by_value(view: TableView, where: str) -> list[Finding]:
    counts = [c for c in view.counts if any(_shown(v) for v in view.values[c])]
    n = view.n_rows
    cells: list[tuple[str, str]] = []
    # columns: T = sum of other count columns (all others, or the ones just before it)
    idx = {c: i for i, c in enumerate(counts)}
    for t in counts:
        for parts in _part_sets(counts, idx[t]):
            agree, rows_all = 0, 0
            for r in range(n):
                vals = [view.values[c][r] for c in parts]
                if all(_shown(v) for v in vals) and _shown(view.values[t][r]) and view.values[t][r] != 0:
                    rows_all += 1
                    agree += abs(sum(vals) - view.values[t][r]) < 1e-6
            if rows_all < 2 or agree < rows_all:
                continue
            for r in range(n):
                hidden = [c for c in parts if not _shown(view.values[c][r])]
                if _shown(view.values[t][r]) and len(hidden) == 1:
                    cells.append((view.row_label(r), view.col_label(hidden[0])))
                elif not _shown(view.values[t][r]) and not hidden:
                    cells.append((view.row_label(r), view.col_label(t)))
            break
    # rows: a row equal to the sum of the other rows of its block
    for block in _blocks(view):
        if len(block) < 3:
            continue
        for total in block:
            others = [r for r in block if r != total]
            agree = checked = 0
            for c in counts:
                vals = [view.values[c][r] for r in others]
                if all(_shown(v) for v in vals) and _shown(view.values[c][total]) and view.values[c][total] != 0:
                    checked += 1
                    agree += abs(sum(vals) - view.values[c][total]) < 1e-6
            if not checked or agree < checked:
                continue  # a total must add up wherever it can be checked, and not only as 0 = 0 + 0
            for c in counts:
                hidden = [r for r in others if not _shown(view.values[c][r])]
                if _shown(view.values[c][total]) and len(hidden) == 1:
                    cells.append((view.row_label(hidden[0]), view.col_label(c)))
                elif not _shown(view.values[c][total]) and not hidden:
                    cells.append((view.row_label(total), view.col_label(c)))
            break
    cells = list(dict.fromkeys(cells))
    if not cells:
        return []
    return [Finding(
        "recoverable_suppression", "fail",
        f"{where}{len(cells):,} hidden cell{'s' if len(cells) > 1 else ''} can be worked out from a total found by "
        "its values (a row or column equal to the sum of the others): hide a second cell there too, or drop the "
        "total", cells=cells[:CELLS_LISTED])]


def _part_sets(counts: list[str], t: int) -> list[list[str]]:
    sets = []
    others = counts[:t] + counts[t + 1:]
    if len(others) >= 2:
        sets.append(others)
    for k in (2, 3, 4):
        before = counts[max(0, t - k):t]
        if len(before) == k and before != others:
            sets.append(before)
    return sets


def _blocks(view: TableView) -> list[list[int]]:
    """Rows that can share a total: all rows, and with two label columns or more, the rows sharing the
    first label (a total per group)."""
    rows = list(range(view.n_rows))
    blocks = [rows]
    if len(view.labels) >= 2:
        first = view.values[view.labels[0]]
        groups: dict = {}
        for r in rows:
            groups.setdefault(canon(first[r]), []).append(r)
        blocks += [g for g in groups.values() if len(g) < len(rows)]
        second = view.values[view.labels[1]]
        by_second: dict = {}
        for r in rows:
            by_second.setdefault(canon(second[r]), []).append(r)
        blocks += [g for g in by_second.values() if len(g) < len(rows)]
    return blocks


# --- describe() ------------------------------------------------------------------------------------

def _describe(view: TableView, where: str) -> list[Finding]:
    if not view.columns:
        return []
    first = [canon(v) for v in view.values[view.columns[0]]]
    rows = [r for r, v in enumerate(first) if v in ("min", "max", "minimum", "maximum")]
    if not rows or not ({"count", "mean", "std"} & set(first) or len(rows) >= 2):
        return []
    return [Finding(
        "extremes", "review",
        f"{where}rows {', '.join(repr(view.values[view.columns[0]][r]) for r in rows)} show minimum and maximum "
        "values (a describe() table): each is one person's value unless many share it; show percentiles instead",
        cells=[(view.row_label(r), "(row)") for r in rows])]


__all__ = ["check"]
