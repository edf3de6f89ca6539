"""Images, PDFs, notebooks and text: a person must look at them; the checks say what to look for and
refuse the ways such files hide data (bytes after the end of an image, files attached to a PDF, scripts
in an SVG).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path, PurePosixPath

from egress_review.checks import Finding, Policy, Unreadable, embedded, readers
from egress_review.checks.filetypes import CODE_EXTENSIONS

CHUNK = 2**20

def check_image(path: Path, policy: Policy, name: str) -> list[Finding]:
    ext = PurePosixPath(name).suffix.lower()
    if ext == ".png":
        findings = _png(path)
    elif ext in (".jpg", ".jpeg"):
        findings = _jpeg(path)
    else:
        findings = _svg(path)
    findings.append(Finding("human_review", "review",
                            "an image: a person must look at it (small groups in plots, labelled points, outliers)"))
    return findings


def _png(path: Path) -> list[Finding]:
    out: list[Finding] = []
    text_keys: list[str] = []
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(8)
        while True:
            head = fh.read(8)
            if len(head) < 8:
                raise Unreadable("the PNG image is truncated (no IEND chunk)")
            length, kind = struct.unpack(">I4s", head)
            if kind in (b"tEXt", b"zTXt", b"iTXt"):
                data = fh.read(min(length, 80))
                text_keys.append(data.split(b"\x00", 1)[0].decode("latin-1", "replace"))
                fh.seek(length - len(data) + 4, 1)
            else:
                fh.seek(length + 4, 1)
            if fh.tell() > size:
                raise Unreadable("the PNG image is truncated")
            if kind == b"IEND":
                break
        trailing = size - fh.tell()
    if trailing > 0:
        out.append(Finding("hidden_data", "fail",
                           f"{trailing:,} bytes follow the end of the PNG image: data can hide there; "
                           "save the image again from the plotting library"))
    if text_keys:
        out.append(Finding("image_metadata", "warn",
                           f"the PNG carries text metadata ({', '.join(sorted(set(text_keys))[:5])}): check it"))
    return out


def _jpeg(path: Path) -> list[Finding]:
    out: list[Finding] = []
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(2)
        meta = []
        while True:
            marker = fh.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                raise Unreadable("the JPEG image is damaged (bad segment marker)")
            if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
                continue
            raw = fh.read(2)
            if len(raw) < 2:
                raise Unreadable("the JPEG image is truncated")
            (length,) = struct.unpack(">H", raw)
            if marker[1] == 0xE1:
                meta.append("EXIF/XMP")
            elif marker[1] == 0xFE:
                meta.append("comment")
            if marker[1] == 0xDA:  # start of scan: entropy-coded data follows up to EOI
                break
            fh.seek(length - 2, 1)
        fh.seek(max(0, size - CHUNK))
        tail = fh.read()
    end = tail.rfind(b"\xff\xd9")
    if end < 0:
        raise Unreadable("the JPEG image is truncated (no end marker)")
    trailing = len(tail) - end - 2
    if trailing > 0:
        out.append(Finding("hidden_data", "fail", f"{trailing:,} bytes follow the end of the JPEG image: data "
                           "can hide there; save the image again"))
    if meta:
        out.append(Finding("image_metadata", "warn", f"the JPEG carries {', '.join(sorted(set(meta)))} metadata: check it"))
    return out


_SVG_ACTIVE = re.compile(rb"<script|javascript:|\bon[a-z]+\s*=|<foreignObject|<!ENTITY|<iframe|<embed|<object", re.I)
_SVG_EXTERNAL = re.compile(rb"(xlink:)?href\s*=\s*[\"'](https?:|file:|data:)", re.I)


def _svg(path: Path) -> list[Finding]:
    out: list[Finding] = []
    active = external = svg = False
    for block in _blocks(path, overlap=64):
        svg = svg or b"<svg" in block
        active = active or bool(_SVG_ACTIVE.search(block))
        external = external or bool(_SVG_EXTERNAL.search(block))
    if not svg:
        raise Unreadable("not an SVG image (no <svg> element)")
    if active:
        out.append(Finding("active_content", "fail",
                           "the SVG holds scripts, event handlers, embedded documents or entities: export the plot "
                           "again as plain SVG or PNG"))
    if external:
        out.append(Finding("hidden_data", "fail", "the SVG links or embeds other content (href to http/file/data): "
                           "export the plot again without embedded images"))
    return out


_PDF_ACTIVE = re.compile(rb"/(JavaScript|JS|EmbeddedFile|EmbeddedFiles|Launch|RichMedia|XFA|AA|OpenAction)\b")


def check_pdf(path: Path, policy: Policy, name: str) -> list[Finding]:
    found: set[str] = set()
    eof = False
    for block in _blocks(path, overlap=32):
        found.update(m.group(1).decode() for m in _PDF_ACTIVE.finditer(block))
        eof = eof or b"%%EOF" in block
    out: list[Finding] = []
    if not eof:
        raise Unreadable("the PDF is truncated (no %%EOF marker)")
    risky = found & {"JavaScript", "JS", "EmbeddedFile", "EmbeddedFiles", "Launch", "RichMedia", "XFA"}
    if risky:
        out.append(Finding("active_content", "fail",
                           f"the PDF holds {', '.join(sorted(risky))}: attached files and scripts can carry "
                           "data past the review; print it to a plain PDF again"))
    out.append(Finding("human_review", "review", "a PDF: a person must read every page (tables, figures, text)"))
    return out


def check_notebook(path: Path, policy: Policy, name: str) -> list[Finding]:
    nb = readers.json_file(path, "not a notebook")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise Unreadable("not a notebook (no list of cells)")
    with_outputs: list[tuple[str, str]] = []
    attachments = 0
    kinds: dict[str, int] = {}
    found: list = []  # tables the outputs show, checked as tables
    for i, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict):
            raise Unreadable(f"not a notebook (cell {i} is not an object)")
        if cell.get("attachments"):
            attachments += 1
        for output in cell.get("outputs") or []:
            if not isinstance(output, dict):
                continue
            data = output.get("data") or {}
            found += _output_tables(output, data, f"cell {i}")
            kind = ("image" if any(k.startswith("image/") for k in data) else
                    "table/html" if "text/html" in data else
                    "error" if output.get("output_type") == "error" else "text")
            kinds[kind] = kinds.get(kind, 0) + 1
            with_outputs.append((f"cell {i}", kind))
    out: list[Finding] = []
    if with_outputs:
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        out.append(Finding("notebook_outputs", "review",
                           f"{_cells(len({c for c, _ in with_outputs}))} outputs ({summary}): a person must "
                           "check each as an output in its own right, or clear the outputs and release results "
                           "as separate files", cells=with_outputs[:50]))
    if found:
        from egress_review.checks.tables import check_embedded

        out += check_embedded(found[:embedded.MAX_TABLES], policy)
    if attachments:
        out.append(Finding("notebook_attachments", "review",
                           f"{attachments} Markdown cells carry attached images: a person must look at them"))
    if not out:
        out.append(Finding("notebook_outputs", "pass",
                           f"no outputs in {len(nb['cells'])} cells: code and text only"))
    return out


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value if isinstance(value, str) else ""


def _output_tables(output: dict, data: dict, place: str) -> list:
    """Tables an output shows: HTML tables first (a DataFrame's rich form), else printed ones."""
    if "text/html" in data:
        tables = embedded.html_tables(_text(data["text/html"]), place)
        if tables:
            return tables
    text = _text(data.get("text/plain")) if "text/plain" in data else _text(output.get("text"))
    return embedded.text_tables(text, place) if text else []


def _cells(n: int) -> str:
    return "1 cell has" if n == 1 else f"{n} cells have"


def check_text(path: Path, policy: Policy, name: str) -> list[Finding]:
    lines = 0
    found: list = []
    code = PurePosixPath(name).suffix.lower() in CODE_EXTENSIONS  # code is read by a person, as code
    for block in _blocks(path, overlap=0):
        first_line = lines + 1
        lines += block.count(b"\n")
        if len(found) < embedded.MAX_TABLES and not code:
            found += embedded.text_tables(block.decode("utf-8", "replace"), "text", first_line)
    out = [Finding("human_review", "review",
                   f"text ({lines:,} lines): a person must read it" + (
                       f"; {len(found)} printed table{'s in it were' if len(found) > 1 else ' in it was'} checked as a table"
                       if found else "; no printed table found in it"))]
    if found:
        from egress_review.checks.tables import check_embedded

        out += check_embedded(found[:embedded.MAX_TABLES], policy)
    return out


def _blocks(path: Path, overlap: int):
    """The file in 1 MiB blocks, each starting with the last `overlap` bytes of the previous one."""
    prev = b""
    with path.open("rb") as fh:
        while True:
            data = fh.read(CHUNK)
            if not data:
                return
            yield prev + data
            prev = data[-overlap:] if overlap else b""
