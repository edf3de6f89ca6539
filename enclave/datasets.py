"""A project's imported datasets as the importer publishes them in the project's data folder:
`<name>.parquet` beside `<name>.manifest.json` (the manifest is written first and the Parquet file
last, so a dataset whose Parquet file is there is complete).

One reading for every part that needs the data on the host: the disclosure checks use it as evidence
(egress_review.checks.evidence); nothing here is ever mounted writable in a container.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class Published:
    name: str
    parquet: Path
    rows: int
    pseudonym_columns: tuple[str, ...]  # columns holding one person's pseudonym per row
    quasi_identifiers: tuple[str, ...]


def published(data_dir: Path | str | None) -> list[Published]:
    """The complete datasets of a data folder, by name; [] when there is no folder or nothing in it.

    A manifest that cannot be read, or names another file, is skipped: it is not the importer's."""
    if not data_dir:
        return []
    folder = Path(data_dir)
    if not folder.is_dir():
        return []
    out = []
    for manifest in sorted(folder.glob("*.manifest.json")):
        name = manifest.name[: -len(".manifest.json")]
        parquet = folder / f"{name}.parquet"
        if not _NAME.match(name) or not parquet.is_file() or parquet.is_symlink():
            continue
        try:
            meta = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict) or meta.get("file") != parquet.name:
            continue
        out.append(Published(
            name=name, parquet=parquet, rows=int(meta.get("rows") or 0),
            pseudonym_columns=tuple(str(c) for c in meta.get("pseudonymised") or ()),
            quasi_identifiers=tuple(str(c) for c in meta.get("quasi_identifiers") or ()),
        ))
    return out
