"""A real JupyterHub (+ configurable-http-proxy) on loopback, started with `enclave up`.

    with RunningHub(enclave_env, settings={"auth": {"ip_max_failures": 3}}) as hub:
        r = hub.login(requests.Session(), user)          # the real login form, password + TOTP
        assert r.url.startswith(hub.url + "/hub/home")

`RunningHub` writes free loopback ports (public, hub API, proxy API, and any other `*port` settings key) (and any extra settings) into the test's settings file, runs
`.venv/bin/enclave --config FILE up` in its own process group, waits for /hub/login to answer, and on
exit terminates the whole group (hub and proxy). `.logs()` returns the captured output; the
`running_hub` fixture (tests/support/fixtures.py) prints it at teardown so a failing test shows it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import psutil
import requests

from tests.support.postgres import free_port
from tests.support.users import EnrolledUser, totp_code

REPO = Path(__file__).resolve().parents[2]
ENCLAVE = REPO / ".venv" / "bin" / "enclave"
_XSRF_RE = re.compile(r'name="_xsrf"\s+value="([^"]+)"')


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def dump_toml(data: dict) -> str:
    """Enough TOML for settings files: top-level scalars, then one level of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def update_settings_file(path: Path, changes: dict[str, dict]) -> None:
    """Merge {section: {key: value}} into a settings file (other keys are kept)."""
    data = tomllib.loads(Path(path).read_text())
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    Path(path).write_text(dump_toml(data))


CONNECTS_TO = {"smtp_port"}


def _free_ports_for_settings(extra: dict[str, dict]) -> dict[str, dict[str, int]]:
    """A distinct free loopback port for every settings key named `port` or `*_port` (hub, proxy API,
    services such as egress...) that the test did not set itself, so hubs of parallel tests never clash."""
    from enclave.settings import SECTIONS

    taken: set[int] = set()
    out: dict[str, dict[str, int]] = {}
    for section, cls in SECTIONS.items():
        for key in cls.class_traits(config=True):
            if key in CONNECTS_TO:  # a port the enclave connects to, not one it listens on
                continue
            if (key == "port" or key.endswith("_port")) and key not in extra.get(section, {}):
                port = free_port()
                while port in taken:
                    port = free_port()
                taken.add(port)
                out.setdefault(section, {})[key] = port
    return out


def xsrf_from(html: str) -> str:
    m = _XSRF_RE.search(html)
    if not m:
        raise AssertionError("no _xsrf field in the page")
    return m.group(1)


class RunningHub:
    """Context manager around one `enclave up` process group."""

    def __init__(self, env, settings: dict[str, dict] | None = None, timeout: float = 60.0):
        self.env = env
        self.config = Path(env.config)
        self.state_dir = Path(env.state_dir)
        self.extra = settings or {}
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.log_path = self.config.parent / f"hub-{os.getpid()}-{id(self)}.log"
        self.port = self.api_port = self.proxy_api_port = 0
        self.ports: dict[str, dict[str, int]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> RunningHub:
        if not self.port:
            self.ports = _free_ports_for_settings(self.extra)
            self.port = self.ports["hub"]["port"]
            self.api_port = self.ports["hub"]["api_port"]
            self.proxy_api_port = self.ports["hub"].get("proxy_api_port", 0)
        changes = {k: dict(v) for k, v in self.extra.items()}
        for section, values in self.ports.items():
            changes.setdefault(section, {}).update(values)
        changes["hub"]["bind"] = "127.0.0.1"
        spawner = changes.setdefault("spawner", {})
        if "firewall" not in spawner and "firewall_chain" not in spawner:
            # Hubs that spawn nothing must not install (and leave behind) the host's default ENCLAVE
            # chains; spawning tests use SpawnSite, which gives each hub chains of its own.
            spawner["firewall"] = False
        guard = changes.setdefault("guard", {})
        if "enabled" not in guard and "nft_table" not in guard:
            # the same for the host guard (SpawnSite names a kernel table of its own); a disabled guard
            # removes its table, so name one nobody else uses
            guard.update(enabled=False, nft_table=f"encoff{os.getpid()}x{id(self) % 100000}")
        update_settings_file(self.config, changes)
        env = dict(os.environ)
        env["ENCLAVE_CONFIG"] = str(self.config)
        env.pop("ENCLAVE_STATE_DIR", None)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(ENCLAVE), "--config", str(self.config), "up"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=str(self.config.parent), start_new_session=True,
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()  # its proxy may still run
                raise RuntimeError(f"the hub exited with status {code} before answering:\n{self.logs()}")
            try:
                r = requests.get(self.url + "/hub/login", timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the hub did not answer /hub/login within {self.timeout:.0f} s ({last}):\n{self.logs()}")

    def _descendants(self) -> list[psutil.Process]:
        """The hub's children (proxy, services). JupyterHub starts the proxy in its own session, so
        signalling the hub's process group alone would leave it running if the hub dies uncleanly."""
        found = []
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        pid_file = self.state_dir / "jupyterhub-proxy.pid"
        try:
            proxy = psutil.Process(int(pid_file.read_text().strip()))
            if "configurable-http-proxy" in " ".join(proxy.cmdline()) and proxy not in found:
                found.append(proxy)
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
            pass
        return found

    def stop(self) -> None:
        """Terminate the process group (hub + services) and the proxy, then kill what is left."""
        if self.proc is None:
            return
        children = self._descendants()
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        # the proxy may outlive the hub for a moment; make sure nothing of the group remains
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)
        for child in children:  # normally already gone: the hub stops its proxy on SIGTERM
            try:
                child.terminate()
            except psutil.NoSuchProcess:
                continue
        _gone, alive = psutil.wait_procs(children, timeout=5)
        for child in alive:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same ports and state (e.g. to show a lock survives)."""
        self.stop()
        self.start()

    def __enter__(self) -> RunningHub:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()
        if exc_type is not None:
            self.dump_logs()

    def wait_until_answers(self, path: str, timeout: float = 60) -> None:
        """Wait until GET `path` answers 200 through the proxy: a managed service (e.g. egress review)
        starts answering after the hub does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{path} did not answer through the hub within {timeout:.0f} s:\n{self.logs()[-3000:]}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def dump_logs(self, out=None) -> None:
        out = out or sys.stdout
        print(f"\n===== hub log ({self.log_path}) =====\n{self.logs()}\n===== end of hub log =====", file=out)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # -- what a person does -------------------------------------------------------------------
    def login_form(self, http: requests.Session) -> requests.Response:
        r = http.get(self.url + "/hub/login", timeout=30)
        r.raise_for_status()
        return r

    def login(self, http: requests.Session, user: EnrolledUser | None = None, otp: str | None = None, *,
              username: str | None = None, password: str | None = None,
              allow_redirects: bool = True) -> requests.Response:
        """Fill in and post the login form. otp=None: the code the user's app shows now."""
        page = self.login_form(http)
        if otp is None:
            otp = totp_code(user.totp_secret)
        data = {
            "_xsrf": xsrf_from(page.text),
            "username": username if username is not None else user.username,
            "password": password if password is not None else user.password,
            "otp": otp,
        }
        return http.post(self.url + "/hub/login", data=data, timeout=60, allow_redirects=allow_redirects)
