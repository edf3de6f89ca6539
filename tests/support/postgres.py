"""A throwaway PostgreSQL server from Debian's package, run as the `postgres` user on loopback."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql); `make test` installs it")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self, base: Path):
        self.base = Path(base)
        self.data = self.base / "data"
        self.port = free_port()
        self.bindir = _bindir()
        self._names = itertools.count(1)

    def _as_postgres(self, *cmd: str) -> None:
        user = "postgres" if os.geteuid() == 0 else None
        full = ["runuser", "-u", user, "--", *cmd] if user else list(cmd)
        subprocess.run(full, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chmod(self.base, 0o755)
            for p in [self.base, *self.base.parents]:
                if str(p) in ("/", "/tmp"):
                    break
                os.chmod(p, os.stat(p).st_mode | 0o011)  # let postgres traverse
            self.data.mkdir()
            os.chown(self.data, pw.pw_uid, pw.pw_gid)
            sock = self.base / "sock"
            sock.mkdir()
            os.chown(sock, pw.pw_uid, pw.pw_gid)
        self._as_postgres(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--locale=C")
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                          str(self.data / "log"), "-o",
                          f"-p {self.port} -k {self.base / 'sock'} -c listen_addresses=127.0.0.1 -c fsync=off",
                          "start")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        import psycopg2

        name = f"t{os.getpid()}_{next(self._names)}"
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server; a server that is already gone is not an error at teardown."""
        try:
            self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError as exc:
            log = self.data / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            print(f"pg_ctl stop failed ({exc.stderr!r}); server log tail:\n{tail}")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
