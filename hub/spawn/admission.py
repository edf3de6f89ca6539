"""Admission control: refuse a notebook start that would leave the host short of memory.

A server that starts and then swaps slows every researcher down; refusing it up front, with a message,
is kinder. The only side effect is reading the host's available memory, through `MemoryProbe`
(psutil), which a test may replace or, better, leave real and set a reserve larger than the machine.
"""

from __future__ import annotations

import psutil

from enclave.errors import Unavailable
from enclave.units import human, parse_bytes


class MemoryProbe:
    """The one seam for the host's memory figures."""

    def available(self) -> int:
        return psutil.virtual_memory().available


def check_admission(mem_limit: str | int, reserve: str | int, probe: MemoryProbe | None = None) -> None:
    """Raise Unavailable (503) when starting a container of `mem_limit` would eat into `reserve`."""
    need = parse_bytes(mem_limit)
    keep = parse_bytes(reserve)
    available = (probe or MemoryProbe()).available()
    if available - need < keep:
        raise Unavailable(
            "The enclave is too busy to start another notebook right now: it has "
            f"{human(available)} of memory free, this notebook needs up to {human(need)} and "
            f"{human(keep)} must stay free for everyone. Stop a notebook you are not using, or try "
            "again later.",
            detail=f"admission refused: available={available} mem_limit={need} reserve={keep}",
            reason="memory_reserve",
        )
