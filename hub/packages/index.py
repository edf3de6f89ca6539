"""The enclave's package index: a PEP 503 simple index for pip and a CRAN-like tree for R, read-only,
answering each project with exactly what its allow-list lets it see (enclave.packages.visible_files).

Which project asks is never taken from the request: it is the project whose gateway address the
connection arrived at (`project_of(local address)`). The host firewall accepts connections from a
project bridge only to that bridge's own address (hub.spawn.firewall), so a container cannot pose as
another project whatever it sends. A request from an address no project owns sees nothing.

Routes (GET and HEAD only; anything else is 405):
- /simple/                       the project's allowed Python packages
- /simple/<name>/                its files with `#sha256=` (pip checks every download against it);
                                 404 with the refusal text when the name is not allowed
- /files/python/<file>           a visible file (sendfile from the repository folder)
- /cran/src/contrib/PACKAGES     the project's allowed R source packages (DCF, as CRAN writes it)
- /cran/src/contrib/<file>       a visible R source package
- /refusal/<python|r>/<name>     what a researcher is told about a package they may not install (200,
                                 so pip's and R's start-up hooks read it simply)
Every file served is audited (`packages.fetch`, by project), so stewards can see what entered where.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from enclave import audit, db, packages, paths
from enclave.errors import Invalid

ProjectOf = Callable[[str], "str | None"]
CACHE_SECONDS = 2.0


class Catalogue:
    """visible_files per (ecosystem, project), read from the database at most every CACHE_SECONDS."""

    def __init__(self, database_url: str):
        self.url = database_url
        self._cache: dict[tuple[str, str | None], tuple[float, dict]] = {}

    def visible(self, ecosystem: str, project: str | None) -> dict[str, list[dict]]:
        if project is None:
            return {}
        key = (ecosystem, project)
        hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        with db.transaction(self.url) as s:
            files = {name: [dict(filename=f.filename, version=f.version, sha256=f.sha256,
                                 requires=json.loads(f.requires or "[]"), requires_python=f.requires_python)
                            for f in fs]
                     for name, fs in packages.visible_files(s, ecosystem, project).items()}
        self._cache[key] = (time.monotonic(), files)
        return files

    def record_fetch(self, project: str, ecosystem: str, filename: str, sha256: str) -> None:
        with db.transaction(self.url) as s:
            audit.record(s, f"project:{project}", "packages.fetch", f"package:{ecosystem}:{filename}",
                         {"project": project, "sha256": sha256})


def _local_address(request: web.Request) -> str:
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return sock[0] if sock else ""


def _page(title: str, links: list[tuple[str, str, dict]]) -> web.Response:
    body = "".join(
        f'<a href="{html.escape(href)}"' + "".join(f' {k}="{html.escape(v)}"' for k, v in attrs.items() if v)
        + f">{html.escape(text)}</a><br>\n" for href, text, attrs in links)
    return web.Response(text=f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head>"
                             f"<body>\n{body}</body></html>\n", content_type="text/html")


def make_app(database_url: str, state_dir: Path, project_of: ProjectOf) -> web.Application:
    cat = Catalogue(database_url)
    loop_run = asyncio.get_running_loop

    def lookup(address: str, ecosystem: str) -> tuple[str | None, dict]:
        project = project_of(address)  # may ask Docker: off the event loop, like the database
        return project, cat.visible(ecosystem, project)

    async def visible(request: web.Request, ecosystem: str) -> tuple[str | None, dict]:
        return await loop_run().run_in_executor(None, lookup, _local_address(request), ecosystem)

    async def simple_root(request: web.Request) -> web.Response:
        _, files = await visible(request, "python")
        return _page("Simple index", [(f"{n}/", n, {}) for n in sorted(files)])

    async def simple_project(request: web.Request) -> web.Response:
        raw = request.match_info["name"]
        project, files = await visible(request, "python")
        try:
            name = packages.normalise("python", raw)
        except Invalid as exc:
            raise web.HTTPNotFound(text=exc.message + "\n") from None
        if name != raw:  # PEP 503: redirect to the normalised name
            raise web.HTTPMovedPermanently(f"../{name}/")
        if name not in files:
            raise web.HTTPNotFound(text=packages.refusal("python", name, project) + "\n")
        return _page(f"Links for {name}", [
            (f"../../files/python/{f['filename']}#sha256={f['sha256']}", f["filename"],
             {"data-requires-python": f["requires_python"]}) for f in files[name]])

    async def serve_file(request: web.Request, ecosystem: str, filename: str) -> web.StreamResponse:
        project, files = await visible(request, ecosystem)
        found = next((f for fs in files.values() for f in fs if f["filename"] == filename), None)
        if found is None:
            raise web.HTTPNotFound(text=f"{filename} is not available to this project\n")
        path = paths.packages(state_dir, ecosystem) / filename
        if request.method == "GET":
            await loop_run().run_in_executor(None, cat.record_fetch, project, ecosystem, filename, found["sha256"])
        return web.FileResponse(path, headers={"Content-Type": "application/octet-stream"})

    async def python_file(request: web.Request) -> web.StreamResponse:
        return await serve_file(request, "python", request.match_info["filename"])

    async def cran_packages(request: web.Request) -> web.Response:
        _, files = await visible(request, "r")
        stanzas = []
        for name, fs in sorted(files.items()):
            for f in fs:
                imports = ", ".join(f["requires"])
                stanzas.append(f"Package: {name}\nVersion: {f['version']}\n"
                               + (f"Imports: {imports}\n" if imports else "") + "NeedsCompilation: no\n")
        return web.Response(text="\n".join(stanzas), content_type="text/plain")

    async def cran_file(request: web.Request) -> web.StreamResponse:
        filename = request.match_info["filename"]
        if filename.startswith("PACKAGES"):
            raise web.HTTPNotFound()  # PACKAGES.gz / .rds: R falls back to the plain PACKAGES
        return await serve_file(request, "r", filename)

    async def refusal(request: web.Request) -> web.Response:
        ecosystem, raw = request.match_info["ecosystem"], request.match_info["name"]
        project, files = await visible(request, ecosystem)
        try:
            name = packages.normalise(ecosystem, raw)
        except Invalid as exc:
            return web.Response(text=exc.message + "\n")
        if name in files:
            return web.Response(text=f"'{name}' is allowed in this project\n")
        return web.Response(text=packages.refusal(ecosystem, name, project) + "\n")

    app = web.Application(client_max_size=1024)
    app.router.add_get("/simple/", simple_root)
    app.router.add_get("/simple/{name}/", simple_project)
    app.router.add_get("/files/python/{filename}", python_file)
    app.router.add_get("/cran/src/contrib/PACKAGES", cran_packages)
    app.router.add_get("/cran/src/contrib/{filename}", cran_file)
    app.router.add_get("/refusal/{ecosystem}/{name}", refusal)
    return app
