"""Differencing across releases: a new table is checked together with the tables the project has
already released (`Policy.released`, newest first), since what one table hides another may give back.

With a released table whose label columns have the same names (any order) and a count column in
common, `differencing` when:
- **same cells** (fail): a cell hidden in one table is shown in the other;
- **one population apart** (review): every common cell of the new table is at least the released one
  (or at most), and some differ by 1 to `min_cell_count - 1`: the difference may be a small cell of
  the people in one table and not the other (all patients, and all but one hospital's); it may also be
  the same table on updated data, which a person tells apart from the request's context;
- **a margin** (fail): one table's labels are a subset of the other's; a group of the finer table with one
  hidden cell, and the coarser table showing the group's total, gives the hidden cell back (and a
  hidden group total whose parts are all shown).
"""

from __future__ import annotations

from pathlib import Path

from egress_review.checks import CELLS_LISTED, Finding, Policy
from egress_review.checks.view import TableView, canon, is_total, shown

RELEASED_ROWS = 20_000  # rows of a released table compared (tables of aggregates are far smaller)


def check(view: TableView, policy: Policy, where: str = "") -> list[Finding]:
    if not policy.released or not view.labels or not view.counts:
        return []
    out: list[Finding] = []
    for name, path in policy.released:
        for other in _views(Path(path), name, policy):
            cells, why, severity = _compare(view, other, policy)
            if cells:
                out.append(Finding(
                    "differencing", severity,
                    f"{where}{len(cells):,} cell{'s' if len(cells) > 1 else ''} can be worked out together with the "
                    f"released table '{name}': {why}", cells=cells[:CELLS_LISTED]))
                return out
    return out


def _views(path: Path, name: str, policy: Policy) -> list[TableView]:
    from egress_review.checks.tables import views_of

    try:
        return views_of(path, name, policy, RELEASED_ROWS)
    except Exception:  # noqa: BLE001 - an unreadable old release says nothing about the new table
        return []


def _key(view: TableView, labels: list[str], r: int) -> tuple:
    return tuple(canon(view.values[c][r]) for c in labels)


def _by_labels(view: TableView, labels: list[str]) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for r in range(view.n_rows):
        out.setdefault(_key(view, labels, r), r)
    return out


def _compare(new: TableView, old: TableView, policy: Policy) -> tuple[list, str, str]:
    m = policy.min_cell_count
    norm = {str(c).strip().lower(): c for c in old.columns}
    common = [(c, norm[str(c).strip().lower()]) for c in new.counts if str(c).strip().lower() in norm
              and norm[str(c).strip().lower()] in old.counts]
    if not common:
        return [], "", "pass"
    new_labels = {str(c).strip().lower(): c for c in new.labels}
    old_labels = {str(c).strip().lower(): c for c in old.labels}
    if set(new_labels) == set(old_labels):
        keys = sorted(new_labels)
        a = _by_labels(new, [new_labels[k] for k in keys])
        b = _by_labels(old, [old_labels[k] for k in keys])
        both = [k for k in a if k in b]
        if not both:
            return [], "", "pass"
        recovered = []
        for c_new, c_old in common:
            for k in both:
                va, vb = new.values[c_new][a[k]], old.values[c_old][b[k]]
                if shown(va) != shown(vb):
                    recovered.append((new.row_label(a[k]), new.col_label(c_new)))
        if recovered:
            return recovered, "a cell hidden in one is shown in the other", "fail"
        diffs = [(k, c_new, new.values[c_new][a[k]] - old.values[c_old][b[k]]) for c_new, c_old in common
                 for k in both if shown(new.values[c_new][a[k]]) and shown(old.values[c_old][b[k]])]
        if diffs and (all(d >= 0 for _, _, d in diffs) or all(d <= 0 for _, _, d in diffs)):
            small = [(new.row_label(a[k]), new.col_label(c)) for k, c, d in diffs if 0 < abs(d) < m]
            if small:
                return small, (f"the two tables count populations that differ by 1 to {m - 1} people in these cells: "
                               "the difference may be a small cell (a person checks whether this is the same "
                               "table on updated data)"), "review"
        return [], "", "pass"
    small_set, big_set = (new_labels, old_labels) if set(new_labels) < set(old_labels) else (old_labels, new_labels)
    if not set(small_set) < set(big_set):
        return [], "", "pass"
    coarse, fine = (new, old) if small_set is new_labels else (old, new)
    keys = sorted(small_set)
    coarse_labels = [{str(c).strip().lower(): c for c in coarse.labels}[k] for k in keys]
    fine_labels = [{str(c).strip().lower(): c for c in fine.labels}[k] for k in keys]
    at = _by_labels(coarse, coarse_labels)
    groups: dict[tuple, list[int]] = {}
    other = [c for c in fine.labels if c not in fine_labels]
    for r in range(fine.n_rows):
        if any(is_total(fine.values[c][r]) for c in other):
            continue
        groups.setdefault(_key(fine, fine_labels, r), []).append(r)
    cells = []
    for c_new, c_old in common:
        c_coarse, c_fine = (c_new, c_old) if coarse is new else (c_old, c_new)
        for k, rows in groups.items():
            if k not in at or len(rows) < 2:
                continue
            hidden = [r for r in rows if not shown(fine.values[c_fine][r])]
            total_shown = shown(coarse.values[c_coarse][at[k]])
            if (len(hidden) == 1 and total_shown) or (not hidden and not total_shown):
                cells.append((coarse.row_label(at[k]), coarse.col_label(c_coarse)) if coarse is new
                             else (fine.row_label(hidden[0]) if hidden else fine.row_label(rows[0]),
                                   fine.col_label(c_fine)))
    if not cells:
        return [], "", "pass"
    return cells, ("one table is a margin of the other: a group's total and all but one of its cells give "
                   "the last one back"), "fail"
