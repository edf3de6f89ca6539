"""Checks on code coming into the enclave: only small text files of code, never data.

Refused outright (nothing is stored, the message says what to change): a name that is not code
(`.py`, `.R`, `.ipynb`, `.sql`, `.md`), a file over `[imports] max_file_kib`, bytes that are not UTF-8
text, a notebook that is not valid JSON or still carries outputs (outputs are where data hides), and a
file ClamAV finds malware in. Marked for the reviewer (FileVerdict findings, `fail` needs a written
override to approve): what looks like data written into the code: long runs of base64 or hex, many
lines that read as records, many number literals. Without ClamAV signatures the scan cannot run and
every file is marked `review`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path, PurePosixPath

from enclave.errors import Invalid

from egress_review.checks import FileVerdict, Finding, worst

CODE_SUFFIXES = {".py": "Python", ".r": "R", ".ipynb": "notebook", ".sql": "SQL", ".md": "Markdown"}
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")
HEX_TOKEN = re.compile(r"\b[0-9a-fA-F]{24,}\b")
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])")
RECORD_SPLIT = re.compile(r"[,;\t|]")
DATEISH = re.compile(r"^\d{4}-\d{2}(-\d{2})?$|^\d{1,2}/\d{1,2}/\d{2,4}$")
RECORD_LINES = 20  # this many lines that read as records is a table, not code
HEX_TOKENS = 20  # this many long hex strings is a list of keys or pseudonyms
NUMBERS = 400  # this many number literals making most of the file is a dataset
SIGNATURE_SUFFIXES = (".cvd", ".cld", ".cud", ".ndb", ".hdb", ".hsb", ".ldb", ".cdb", ".mdb", ".msb", ".yara", ".yar")


def check_name(filename: str) -> str:
    """The base name code lands under, or Invalid for anything that is not a code file's name."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    if not name or name.startswith(".") or any(ord(c) < 32 or c == "\x7f" for c in name) or len(name) > 200:
        raise Invalid(f"'{filename}' is not a usable file name", reason="bad_name")
    if PurePosixPath(name).suffix.lower() not in CODE_SUFFIXES:
        raise Invalid(f"'{name}' is not code: only {', '.join(sorted(CODE_SUFFIXES))} files come in this way "
                      "(data and binaries never do; tables come in through the data steward's import)",
                      reason="not_code")
    return name


def _text(name: str, data: bytes, max_bytes: int) -> str:
    if len(data) > max_bytes:
        raise Invalid(f"'{name}' is {len(data)} bytes, more than the {max_bytes // 1024} KiB allowed for code",
                      reason="too_large")
    if b"\x00" in data:
        raise Invalid(f"'{name}' has NUL bytes: it is binary, not code", reason="binary")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"'{name}' is not UTF-8 text, so not code this way can bring in", reason="binary") from None


def _notebook(name: str, text: str) -> None:
    try:
        nb = json.loads(text)
        cells = nb["cells"]
        assert isinstance(cells, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise Invalid(f"'{name}' is not a Jupyter notebook (no cells in its JSON)", reason="bad_notebook") from None
    with_outputs = sum(1 for c in cells if isinstance(c, dict) and (c.get("outputs") or c.get("attachments")))
    if with_outputs:
        raise Invalid(f"'{name}' has outputs or attachments in {with_outputs} cell(s): clear all outputs "
                      "(Edit > Clear Outputs of All Cells) and save before bringing it in", reason="notebook_outputs")


def _looks_like_record(line: str) -> bool:
    fields = [f.strip().strip("'\"()[]{}") for f in RECORD_SPLIT.split(line)]
    fields = [f for f in fields if f]
    if len(fields) < 3:
        return False
    data_like = sum(1 for f in fields if NUMBER.fullmatch(f) or DATEISH.match(f) or HEX_TOKEN.fullmatch(f))
    return data_like * 2 >= len(fields)


def embedded_data(text: str) -> list[Finding]:
    """What in a code file reads as data rather than code."""
    findings = []
    blobs = BASE64_RUN.findall(text)
    if blobs:
        findings.append(Finding("embedded_blob", "fail", f"{len(blobs)} run(s) of base64-like text, the longest "
                                f"{max(map(len, blobs))} characters: encoded data, not code"))
    hexes = HEX_TOKEN.findall(text)
    if len(hexes) >= HEX_TOKENS:
        findings.append(Finding("embedded_keys", "fail", f"{len(hexes)} long hexadecimal strings: a list of "
                                "keys, hashes or pseudonyms, not code"))
    records = sum(1 for line in text.splitlines() if _looks_like_record(line))
    if records >= RECORD_LINES:
        findings.append(Finding("embedded_table", "fail", f"{records} lines read as records (3 or more fields, "
                                "mostly numbers or dates): a table written into the code"))
    numbers = NUMBER.findall(text)
    if len(numbers) >= NUMBERS and sum(map(len, numbers)) * 2 >= len(re.sub(r"\s", "", text)):
        findings.append(Finding("embedded_numbers", "fail", f"{len(numbers)} number literals make up most of "
                                "the file: a dataset, not code"))
    return findings


def has_signatures(database: Path) -> bool:
    return database.is_dir() and any(p.suffix in SIGNATURE_SUFFIXES for p in database.iterdir())


def scan(path: Path, database: Path) -> Finding:
    """ClamAV's verdict on one stored file; Invalid when it finds something."""
    if not has_signatures(database):
        return Finding("malware_scan", "review", f"not scanned: no ClamAV signatures in {database} (an operator "
                       "copies them from a connected host); read the code before approving")
    try:
        r = subprocess.run(["clamscan", "--no-summary", "--stdout", "--database", str(database), str(path)],
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("malware_scan", "review", f"not scanned: clamscan could not run ({exc})")
    if r.returncode == 1:
        found = r.stdout.strip().rsplit(":", 1)[-1].replace("FOUND", "").strip()
        raise Invalid(f"the malware scan found {found} in '{path.name}'; it cannot come in", reason="malware")
    if r.returncode != 0:
        return Finding("malware_scan", "review", f"not scanned: clamscan said {r.stderr.strip()[:200]}")
    return Finding("malware_scan", "pass", "ClamAV found nothing")


def check_code(name: str, data: bytes, *, max_bytes: int) -> list[Finding]:
    """What reads as data in one code file; Invalid when it cannot come in at all (run before storing)."""
    text = _text(name, data, max_bytes)
    if name.lower().endswith(".ipynb"):
        _notebook(name, text)
    return embedded_data(text) or [Finding(
        "code_in", "pass", f"{CODE_SUFFIXES[PurePosixPath(name).suffix.lower()]} code, {len(text.splitlines())} "
        "lines, nothing that reads as data")]


def verdict(name: str, findings: list[Finding]) -> dict:
    """The stored verdict (FileVerdict.to_dict) of one code file."""
    return FileVerdict(name, worst(findings), findings, "code").to_dict()
