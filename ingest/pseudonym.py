"""Keyed pseudonyms for identifier columns: same person, same project -> same pseudonym; other project -> unlinkable.

pseudonym(v) = "P" + base32(BLAKE2b-80(key = project key, person = "enclave-pseud1", normalise(v)))

- Keyed BLAKE2b is a PRF (as HMAC-SHA256 is); it is twice as fast in CPython, which matters at 10^7 rows.
- Normalisation, so the same person matches across files: integers as decimal text; text trimmed,
  upper-cased, with spaces, '-' and '.' removed ("1 85-05.78" == "18505 78"); missing stays missing.
  Leading zeros are kept ("0123" != 123): they are significant in many identifiers.
- 80 bits, written as 16 base32 characters (RFC 4648 alphabet, no padding) after "P": for 10^8
  different people the chance that two share a pseudonym is about n^2 / 2^81 = 4e-9.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DIGEST_BYTES = 10
PERSON = b"enclave-pseud1"
PREFIX = "P"
WIDTH = len(PREFIX) + DIGEST_BYTES * 8 // 5
_B32 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", dtype=np.uint8)


def can_be_identifier(t: pa.DataType) -> bool:
    """Text and integers can identify people; floats, booleans and dates are refused (a likely mistake)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)


def normalise(arr: pa.Array) -> pa.Array:
    """Identifier values as canonical text (see module docstring)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if pa.types.is_integer(arr.type):
        return pc.cast(arr, pa.string())
    text = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(arr, pa.string())))
    text = pc.replace_substring_regex(text, pattern=r"[\s.\-]+", replacement="")
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def _encode(digests: bytes, n: int) -> pa.Array:
    """n digests of 10 bytes -> n strings 'P' + 16 base32 characters, built as one Arrow buffer."""
    raw = np.frombuffer(digests, dtype=np.uint8).reshape(n, DIGEST_BYTES)
    padded = np.zeros((n, 16), dtype=np.uint8)  # two big-endian 64-bit words holding 40 bits each
    padded[:, 3:8] = raw[:, :5]
    padded[:, 11:16] = raw[:, 5:]
    words = padded.view(">u8").astype(np.uint64)
    out = np.empty((n, WIDTH), dtype=np.uint8)
    out[:, 0] = ord(PREFIX)
    for c in range(8):
        idx = ((words >> np.uint64(35 - 5 * c)) & np.uint64(31)).astype(np.intp)
        out[:, 1 + c] = _B32[idx[:, 0]]
        out[:, 9 + c] = _B32[idx[:, 1]]
    offsets = np.arange(0, (n + 1) * WIDTH, WIDTH, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


def pseudonymise(arr: pa.Array | pa.ChunkedArray, key: bytes) -> pa.Array:
    """Replace every identifier by its pseudonym under `key`; missing values stay missing."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    values = normalise(arr)
    valid = values.is_valid()
    base = hashlib.blake2b(key=key, digest_size=DIGEST_BYTES, person=PERSON)
    copy = base.copy
    digests = []
    append = digests.append
    for v in pc.cast(values, pa.binary()).to_pylist():
        h = copy()
        if v is not None:
            h.update(v)
        append(h.digest())
    if not len(values):
        return pa.array([], pa.string())
    pseudonyms = _encode(b"".join(digests), len(values))
    return pc.if_else(valid, pseudonyms, pa.scalar(None, pa.string()))


def pseudonym_of(value, key: bytes) -> str | None:
    """The pseudonym of one value (for a steward checking a single record)."""
    return pseudonymise(pa.array([value]), key)[0].as_py()
