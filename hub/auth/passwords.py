"""Password hashing with Argon2id at (at least) OWASP's cost, run off the hub's event loop.

Hashing costs tens of milliseconds of CPU and ~19 MiB of memory on purpose; `run` hands that work to a
small thread pool (argon2-cffi releases the GIL) so 20 people logging in at once do not freeze the hub.
"""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Bounded: each worker holds argon2_memory_kib while hashing; more workers than cores buys nothing.
_POOL = ThreadPoolExecutor(max_workers=min(4, max(2, os.cpu_count() or 2)), thread_name_prefix="enclave-login")


def _keep_hash_memory() -> None:
    """Keep each login thread's 19 MiB hash buffer for the next login instead of returning it.

    glibc would mmap a fresh buffer for every hash (or, after adjusting its threshold, trim it back to
    the OS), and the kernel zeroes and faults in all 4,864 pages each time: ~12 ms of system CPU per
    login on top of the ~24 ms the hash itself costs. Fixed thresholds above the buffer size keep one
    buffer in each thread's arena, reused from then on: the memory bound is the pool size (at most 4)
    times argon2_memory_kib, and the hub's resident memory stays flat (bench/login.py prints it).
    """
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


_keep_hash_memory()


@functools.lru_cache(maxsize=4)
def _hasher(memory_kib: int, time_cost: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID)


def hasher(settings) -> PasswordHasher:
    return _hasher(settings.auth.argon2_memory_kib, settings.auth.argon2_time_cost)


@functools.lru_cache(maxsize=4)
def _dummy_hash(memory_kib: int, time_cost: int) -> str:
    return _hasher(memory_kib, time_cost).hash("no account has this password")


def hash_password(settings, password: str) -> str:
    return hasher(settings).hash(password)


def verify_password(settings, stored: str | None, password: str) -> bool:
    """True if `password` matches `stored`. With no stored hash (unknown user, pending or SSO account)
    a dummy hash is checked instead so the answer takes the same time either way."""
    target = stored or _dummy_hash(settings.auth.argon2_memory_kib, settings.auth.argon2_time_cost)
    try:
        ok = hasher(settings).verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return bool(ok and stored)


def needs_rehash(settings, stored: str) -> bool:
    """True when the settings now ask for a higher cost than `stored` was made with."""
    try:
        return hasher(settings).check_needs_rehash(stored)
    except InvalidHashError:
        return True


async def run(fn, *args):
    """Run blocking login work (hashing, database) on the login thread pool."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args))
