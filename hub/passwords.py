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


def _return_hash_memory_to_the_os() -> None:
    """glibc raises its mmap threshold after the first 19 MiB hash buffer is freed, after which every
    login thread keeps ~19 MiB in its heap for good (the hub grew by ~100 MB over 100 logins). A
    fixed threshold keeps big buffers mmapped, so they go back to the OS when the hash is done."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_MMAP_THRESHOLD = -3
        libc.mallopt(M_MMAP_THRESHOLD, 1024 * 1024)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


_return_hash_memory_to_the_os()


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
