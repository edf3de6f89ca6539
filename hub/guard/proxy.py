"""The host guard's HTTP part: HAProxy (Debian's) between the hub's proxy and every notebook server.

configurable-http-proxy routes `/user/<name>/<server>/` to this proxy; it forwards to the server's
container by a route map the spawner keeps (runtime API + a file for restarts), and on the way refuses,
whatever the server in the container would answer:

- download paths: `/files/`, `/view/`, `/nbconvert/` (403, with the image's own words and the
  release page's address);
- terminals, for projects that have them off (403);
- contents-API answers larger than `[guard] contents_read_mib`, or without a Content-Length (so a
  patched server cannot stream a file in chunks through the file API) (403).

Every refusal is logged to the guard service (UDP syslog on loopback), which writes the audit event:
the record comes from the host, not from the container. Bytes are bounded separately, below HTTP, by
the kernel meter (meter.py), so a refusal missed here still cannot move data in bulk.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path

REFUSAL = ("Downloads are switched off in the enclave: files leave only after an output check. "
           "Ask for a release at {release_url}")  # the same words as the image's own policy


@dataclass(frozen=True)
class ProxyFiles:
    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "haproxy.cfg"

    @property
    def routes(self) -> Path:
        return self.folder / "routes.map"

    @property
    def no_terminals(self) -> Path:
        return self.folder / "no_terminals.map"

    @property
    def socket(self) -> Path:
        return self.folder / "haproxy.sock"


def files_for(state_dir: Path) -> ProxyFiles:
    return ProxyFiles(Path(state_dir) / "guard")


def server_prefix(user: str, server: str) -> str:
    return f"/user/{user}/{server}/"


def render(files: ProxyFiles, port: int, log_port: int, contents_read_bytes: int, release_url: str) -> str:
    """HAProxy's configuration for this enclave."""
    body = REFUSAL.format(release_url=release_url).replace('"', "'")
    return f"""# Written by the enclave (hub/guard/proxy.py) at every hub start; do not edit.
global
    log 127.0.0.1:{log_port} len 4096 local0
    stats socket {files.socket} mode 600 level admin
    maxconn 4096

defaults
    mode http
    log global
    log-format "enclave-guard refused=%[var(txn.refused)] status=%ST size=%[var(txn.size)] path=%HP"
    timeout connect 10s
    timeout client 1h
    timeout server 1h
    timeout tunnel 8h
    timeout http-request 30s

frontend notebooks
    bind 127.0.0.1:{port}
    http-request set-var(txn.server) path,map_beg({files.routes})
    http-request deny deny_status 503 content-type text/plain string "This notebook server is not running." if !{{ var(txn.server) -m found }}
    acl download path_reg ^/user/[^/]+/[^/]+/(files|view|nbconvert)(/|$)
    acl terminal path_reg ^/user/[^/]+/[^/]+/(terminals|api/terminals)(/|$)
    acl no_terminals path,map_beg({files.no_terminals}) -m found
    acl contents path_reg ^/user/[^/]+/[^/]+/api/contents(/|$)
    http-request set-var(txn.refused) path,field(5,/) if download
    http-request set-var(txn.refused) str(terminal) if terminal no_terminals
    http-request deny deny_status 403 content-type text/plain string "{body}" if {{ var(txn.refused) -m found }}
    http-request set-var(txn.contents) bool(true) if contents METH_GET
    http-response set-var(txn.size) res.hdr_val(content-length) if {{ var(txn.contents) -m bool }}
    http-response set-var(txn.refused) str(read_too_large) if {{ var(txn.contents) -m bool }} {{ res.hdr_val(content-length) gt {int(contents_read_bytes)} }}
    http-response set-var(txn.refused) str(read_unsized) if {{ var(txn.contents) -m bool }} !{{ res.hdr(content-length) -m found }}
    http-response deny deny_status 403 content-type text/plain string "{body}" if {{ var(txn.refused) -m found }}
    http-response set-log-level silent if !{{ var(txn.refused) -m found }}
    default_backend notebooks

backend notebooks
    http-request set-dst var(txn.server),field(1,:)
    http-request set-dst-port var(txn.server),field(2,:)
    server notebook 0.0.0.0:0
"""


def write_config(files: ProxyFiles, port: int, log_port: int, contents_read_bytes: int, release_url: str) -> None:
    files.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for f in (files.routes, files.no_terminals):
        f.touch(mode=0o600, exist_ok=True)
    files.config.write_text(render(files, port, log_port, contents_read_bytes, release_url))


def service_spec(files: ProxyFiles) -> dict:
    """The JupyterHub managed service that runs HAProxy in the foreground (master-worker)."""
    return {"name": "guard-proxy", "command": ["haproxy", "-W", "-db", "-f", str(files.config)]}


class ProxyRoutes:
    """The route and no-terminal maps: the file (read at HAProxy's start) and the running HAProxy
    (its runtime API), changed together by the spawner."""

    def __init__(self, files: ProxyFiles):
        self.files = files

    def _api(self, command: str) -> str:
        if not self.files.socket.exists():
            return ""  # HAProxy not started yet: it reads the files when it starts
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.files.socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    @staticmethod
    def _edit(path: Path, key: str, value: str | None) -> None:
        lines = [ln for ln in path.read_text().splitlines() if ln.split(" ", 1)[0] != key]
        if value is not None:
            lines.append(f"{key} {value}")
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{ln}\n" for ln in lines))
        tmp.replace(path)

    def _set(self, path: Path, key: str, value: str | None) -> None:
        self._edit(path, key, value)
        try:
            self._api(f"del map {path} {key}")
            if value is not None:
                self._api(f"add map {path} {key} {value}")
        except OSError as exc:  # HAProxy restarting: it reads the file when it is back
            print(f"enclave guard: proxy map not updated at runtime ({exc})", file=sys.stderr)

    def route(self, user: str, server: str, ip: str, port: int, terminals: bool) -> None:
        prefix = server_prefix(user, server)
        self._set(self.files.no_terminals, prefix, None if terminals else "1")
        self._set(self.files.routes, prefix, f"{ip}:{port}")

    def unroute(self, user: str, server: str) -> None:
        prefix = server_prefix(user, server)
        self._set(self.files.routes, prefix, None)
        self._set(self.files.no_terminals, prefix, None)
