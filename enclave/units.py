"""Sizes written by people ('2 GiB', '512M', '4G') and back: one reading for settings, spawner and admission."""

from __future__ import annotations

import re

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}
# Docker reads "4G" as 4 GiB; keep the same meaning for the one-letter forms.
_DOCKER_STYLE = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_bytes(text: str | int) -> int:
    """'2 GiB', '512M', '4g', '1.5GB', 1024 -> bytes. One-letter units are binary, as in Docker."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"'{text}' is not a memory size; write e.g. '2 GiB', '512M' or '4G'")
    unit = m.group(2).lower()
    factor = _DOCKER_STYLE.get(unit, _UNITS[unit])
    return int(float(m.group(1)) * factor)


def human(n: int) -> str:
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
