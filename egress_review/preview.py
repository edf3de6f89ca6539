"""Previews of quarantined files for stewards: HTML fragments built from the stored bytes, never executed.

Tables show their first rows with the cells the checks flagged highlighted; images are shown inline
from the raw endpoint (served with a sandboxing Content-Security-Policy); notebooks are rendered from
their JSON (cells and saved outputs: no kernel is ever started; HTML outputs go into a sandboxed iframe
with scripts disabled); text is shown escaped. Everything a researcher wrote is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import PurePosixPath

from egress_review import store

TEXT_LIMIT = 256 * 1024
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".svg": "image/svg+xml", ".webp": "image/webp"}
RAW_TYPES = {**IMAGE_TYPES, ".pdf": "application/pdf"}


def _esc(x) -> str:
    return html.escape("" if x is None else str(x))


_FORMULA = re.compile(r"^[=+@\t\r]|^-\s*[^\d\s.,]")


def cell_text(value) -> str:
    """A cell as a steward reads it: a formula-like value (=, +, @, - before a non-number) gets a
    leading quote, as a spreadsheet shows a value typed as text, so a copy into one never runs it."""
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) else text


def _flagged(verdict: dict) -> dict[tuple[str, str], list[str]]:
    """(row label, column label) -> names of the checks that flagged the cell."""
    out: dict[tuple[str, str], list[str]] = {}
    for f in verdict.get("findings", []):
        for cell in f.get("cells") or []:
            if len(cell) == 2:
                out.setdefault((str(cell[0]), str(cell[1])), []).append(f"{f.get('check')}: {f.get('message')}")
    return out


def _read_table(data: bytes, suffix: str, rows: int):
    import pandas as pd

    if suffix in (".csv", ".tsv", ".txt"):
        sep = "\t" if suffix == ".tsv" else None
        return pd.read_csv(io.BytesIO(data), sep=sep, engine="python", nrows=rows, dtype=str,
                           keep_default_na=False)
    if suffix == ".xlsx":
        return pd.read_excel(io.BytesIO(data), nrows=rows, dtype=str)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(io.BytesIO(data))
        batch = next(pf.iter_batches(batch_size=rows), None)
        return batch.to_pandas().astype(str) if batch is not None else pd.DataFrame()
    raise ValueError(suffix)


def table_html(df, verdict: dict) -> str:
    flagged = _flagged(verdict)
    cols = [str(c) for c in df.columns]
    first = cols[0] if cols else None
    out = ['<table class="preview"><thead><tr><th class="rowno">#</th>']
    out += [f"<th>{_esc(c)}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    hits = 0
    for i, (label, row) in enumerate(df.iterrows()):
        keys = {str(label), str(i)}
        if first is not None:
            keys.add(str(row.iloc[0]))
        out.append(f'<tr><td class="rowno">{i}</td>')
        for c, value in zip(cols, row.tolist()):
            why = [w for k in keys for w in flagged.get((k, c), [])]
            if why:
                hits += 1
                out.append(f'<td class="flagged" title="{_esc("; ".join(why))}">{_esc(cell_text(value))}</td>')
            else:
                out.append(f"<td>{_esc(cell_text(value))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return f'<p class="hint">{hits} flagged cell(s) highlighted in the rows shown.</p>' + "".join(out)


def _output_html(out: dict) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        return f'<pre class="output">{_esc("".join(out.get("text", [])))}</pre>'
    if kind == "error":
        return f'<pre class="output error">{_esc(out.get("ename"))}: {_esc(out.get("evalue"))}</pre>'
    data = out.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            b64 = "".join(data[mime]) if isinstance(data[mime], list) else data[mime]
            try:
                base64.b64decode(b64, validate=False)
            except Exception:  # noqa: BLE001 - a broken image is shown as such
                return '<p class="hint">(unreadable image output)</p>'
            return f'<img class="output" alt="notebook output" src="data:{mime};base64,{_esc(b64.strip())}">'
    if "text/html" in data:
        src = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
        return f'<iframe class="output" sandbox="" srcdoc="{_esc(src)}"></iframe>'
    if "text/plain" in data:
        txt = "".join(data["text/plain"]) if isinstance(data["text/plain"], list) else data["text/plain"]
        return f'<pre class="output">{_esc(txt)}</pre>'
    return '<p class="hint">(output of a type that is not shown: ' + _esc(", ".join(data)) + ")</p>"


def _nbconvert_html(data: bytes) -> str | None:
    """nbconvert's HTML exporter when installed (it never executes; no ExecutePreprocessor is enabled),
    shown in an iframe sandbox without scripts. None when nbconvert is not available."""
    try:
        import nbformat
        from nbconvert import HTMLExporter
    except ImportError:
        return None
    try:
        body, _ = HTMLExporter(template_name="classic").from_notebook_node(nbformat.reads(data.decode(), as_version=4))
    except Exception:  # noqa: BLE001 - fall back to the simple renderer
        return None
    return f'<iframe class="output notebook" sandbox="" srcdoc="{_esc(body)}"></iframe>'


def notebook_html(data: bytes) -> str:
    """Cells and their saved outputs, from the JSON only (no kernel is started)."""
    converted = _nbconvert_html(data)
    if converted is not None:
        return converted
    try:
        nb = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return '<p class="error">This notebook is not valid JSON.</p>'
    parts = ['<div class="notebook">']
    for n, cell in enumerate(nb.get("cells", [])):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        ctype = cell.get("cell_type", "code")
        parts.append(f'<div class="cell {ctype}"><div class="cell-head">[{n}] {_esc(ctype)}</div>'
                     f'<pre class="source">{_esc(src)}</pre>')
        for out in cell.get("outputs", []) or []:
            parts.append(_output_html(out))
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def render(state_dir, file_view: dict, raw_url: str, rows: int) -> str:
    suffix = PurePosixPath(file_view["path"]).suffix.lower()
    kind = file_view.get("checks", {}).get("kind", "")
    sha = file_view["sha256"]
    if suffix in IMAGE_TYPES:
        return f'<img class="preview-image" alt="{_esc(file_view["path"])}" src="{_esc(raw_url)}">'
    if suffix == ".pdf":
        return f'<iframe class="preview-pdf" sandbox="" src="{_esc(raw_url)}"></iframe>'
    if suffix == ".ipynb":
        return notebook_html(store.read_head(state_dir, sha, 20 * 1024 * 1024))
    if kind == "table" or suffix in (".csv", ".tsv", ".xlsx", ".parquet"):
        try:
            # text tables: the head is enough for the rows shown; binary formats need the whole file
            limit = 4 * 1024 * 1024 if suffix in (".csv", ".tsv") else 1024 * 1024 * 1024
            data = store.read_head(state_dir, sha, limit)
            return table_html(_read_table(data, suffix, rows), file_view.get("checks", {}))
        except Exception as exc:  # noqa: BLE001 - fall back to text
            note = f'<p class="hint">Could not render as a table ({_esc(type(exc).__name__)}); shown as text.</p>'
            return note + _text(state_dir, sha)
    if kind == "refused":
        return '<p class="hint">No preview: the checks refused this kind of file.</p>'
    return _text(state_dir, sha)


def _text(state_dir, sha: str) -> str:
    data = store.read_head(state_dir, sha, TEXT_LIMIT + 1)
    more = len(data) > TEXT_LIMIT
    text = data[:TEXT_LIMIT].decode("utf-8", errors="replace")
    return f'<pre class="preview-text">{_esc(text)}</pre>' + (
        '<p class="hint">(only the first 256 KiB shown)</p>' if more else "")
