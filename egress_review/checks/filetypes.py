"""What a file really is: an allow-list by extension, confirmed by the first bytes, and a size limit.

A name proves nothing (a `.csv` can be a renamed zip), so each allowed extension also names the content
it must start with; archives and executables are recognised by their magic bytes whatever they are
called and refused, because they can carry anything past the checks.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from egress_review.checks import Finding, Policy

HEAD_BYTES = 8192

# extension -> kind of check
ALLOWED = {
    ".csv": "table", ".tsv": "table", ".tab": "table", ".xlsx": "table", ".parquet": "table",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".svg": "image",
    ".pdf": "pdf",
    ".ipynb": "notebook",
    ".txt": "text", ".md": "text", ".json": "text", ".log": "text",
    # analysis code is released as text, read by a person
    ".py": "text", ".r": "text", ".rmd": "text", ".qmd": "text", ".do": "text", ".sas": "text", ".sql": "text",
}
TABLE_EXTENSIONS = {ext for ext, kind in ALLOWED.items() if kind == "table"}
TEXT_EXTENSIONS = {".csv", ".tsv", ".tab", ".svg", ".ipynb", ".txt", ".md", ".json", ".log",
                   ".py", ".r", ".rmd", ".qmd", ".do", ".sas", ".sql"}
CODE_EXTENSIONS = {".py", ".r", ".rmd", ".qmd", ".do", ".sas", ".sql"}

# magic bytes of things that never leave, whatever their name
_ARCHIVES = [
    (0, b"PK\x03\x04", "a ZIP archive"), (0, b"PK\x05\x06", "a ZIP archive"), (0, b"PK\x07\x08", "a ZIP archive"),
    (0, b"\x1f\x8b", "a gzip archive"), (0, b"BZh", "a bzip2 archive"), (0, b"\xfd7zXZ\x00", "an xz archive"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (0, b"Rar!\x1a\x07", "a RAR archive"),
    (0, b"\x28\xb5\x2f\xfd", "a zstd archive"), (0, b"\x04\x22\x4d\x18", "an LZ4 archive"),
    (257, b"ustar", "a tar archive"), (0, b"MSCF", "a CAB archive"), (0, b"!<arch>\n", "an ar archive"),
    (0, b"SQLite format 3\x00", "an SQLite database"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office (OLE) container"),
]
_EXECUTABLES = [
    (0, b"\x7fELF", "an ELF executable"), (0, b"MZ", "a Windows executable"),
    (0, b"\xcf\xfa\xed\xfe", "a Mach-O executable"), (0, b"\xce\xfa\xed\xfe", "a Mach-O executable"),
    (0, b"\xca\xfe\xba\xbe", "a Mach-O or Java class file"), (0, b"\x00asm", "a WebAssembly module"),
]
_EXPECTED = {
    ".parquet": (b"PAR1", "a Parquet file"), ".png": (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    ".jpg": (b"\xff\xd8\xff", "a JPEG image"), ".jpeg": (b"\xff\xd8\xff", "a JPEG image"),
    ".pdf": (b"%PDF-", "a PDF"), ".xlsx": (b"PK\x03\x04", "an Excel workbook (a ZIP container)"),
}
# parts an .xlsx may hold; anything else (macros, embedded files) is refused
_XLSX_PARTS = ("[Content_Types].xml", "_rels/", "docProps/", "xl/", "customXml/")
_XLSX_REFUSED = ("vbaProject.bin", "/embeddings/", "/activeX/", "oleObject")


def _refused(message: str, check: str = "file_type") -> Finding:
    return Finding(check, "fail", message)


def classify(path: Path, name: str, policy: Policy) -> tuple[str, Finding | None]:
    """(kind, refusal): the kind of check to run, or a `fail` finding saying why the file is refused."""
    ext = PurePosixPath(name).suffix.lower()
    st = path.stat()
    if not path.is_file():
        return "refused", _refused("not a regular file (folders, links and devices cannot be released)")
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    what = _magic(head, _EXECUTABLES)
    if what:
        return "refused", _refused(f"{name} is {what}: executables are never released")
    what = _magic(head, _ARCHIVES)
    if what and not (ext == ".xlsx" and head.startswith(b"PK\x03\x04")):
        return "refused", _refused(
            f"{name} is {what}: archives are refused because the checks cannot see inside them; "
            "submit the files it holds one by one")
    if ext not in ALLOWED:
        allowed = ", ".join(sorted(ALLOWED))
        return "refused", _refused(
            f"file type '{ext or '(no extension)'}' is not on the allow-list ({allowed}); "
            "export the output to one of these formats")
    if st.st_size > policy.max_file_bytes:
        return "refused", _refused(
            f"{name} is {_mib(st.st_size)}, above the {_mib(policy.max_file_bytes)} limit for one file; "
            "release aggregates, not data, or ask the stewards about a split", check="size")
    if ext in _EXPECTED and st.st_size:
        magic, label = _EXPECTED[ext]
        if not head.startswith(magic):
            return "refused", _refused(f"{name} is not {label}: its content does not match its extension")
    if ext in TEXT_EXTENSIONS and st.st_size:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return "refused", _refused(f"{name} is UTF-16 text (Excel's \"Unicode text\"): save it as CSV UTF-8")
        problem = _not_text(head)
        if problem:
            return "refused", _refused(f"{name} should be text but {problem}")
        if head.startswith(b"#!") and ext not in CODE_EXTENSIONS:
            return "refused", _refused(f"{name} starts with '#!': it is a script, not a {ext} file")
    if ext == ".xlsx" and st.st_size:
        refusal = _xlsx_refusal(path, name, policy)
        if refusal:
            return "refused", refusal
    kind = ALLOWED[ext]
    if ext == ".json" and _looks_like_acro(head):
        kind = "acro"
    return kind, None


def _magic(head: bytes, table) -> str | None:
    for offset, magic, what in table:
        if head[offset:offset + len(magic)] == magic:
            return what
    return None


def _not_text(head: bytes) -> str | None:
    if b"\x00" in head:
        return "it holds binary bytes (NUL)"
    controls = sum(1 for b in head if b < 9 or 13 < b < 32 and b != 27)
    if controls > len(head) // 100 + 2:
        return "it holds binary control bytes"
    return None


def _looks_like_acro(head: bytes) -> bool:
    text = head.decode("utf-8", "replace")
    return '"results"' in text and ('"version"' in text or '"sdc"' in text) or '"sdc"' in text and '"status"' in text


def _xlsx_refusal(path: Path, name: str, policy: Policy) -> Finding | None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        return _refused(f"{name} is not a readable Excel workbook ({exc})", check="malformed")
    names = [i.filename for i in infos]
    if "xl/workbook.xml" not in names:
        return _refused(f"{name} is a ZIP archive but not an Excel workbook (no xl/workbook.xml)")
    bad = [n for n in names if any(m in n for m in _XLSX_REFUSED)]
    if bad:
        return _refused(f"{name} holds macros or embedded objects ({', '.join(bad[:3])}): save it as a plain "
                        ".xlsx with values only")
    odd = [n for n in names if not n.startswith(_XLSX_PARTS)]
    if odd:
        return _refused(f"{name} holds files that are not part of a workbook ({', '.join(odd[:3])})")
    unpacked = sum(i.file_size for i in infos)
    if unpacked > 20 * policy.max_file_bytes:
        return _refused(f"{name} unpacks to {_mib(unpacked)}, too large to check", check="size")
    return None


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"
