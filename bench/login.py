"""Login latency and throughput with password + TOTP, and the hub's memory with 1,000 users.

A real hub (`enclave up`, JupyterHub + configurable-http-proxy on loopback) on a throwaway state
folder with the default KDF cost (Argon2id m=19 MiB, t=2, p=1: OWASP's recommendation). 20 client
threads each do BENCH_LOGIN_ROUNDS full form logins (GET /hub/login for the xsrf token, POST user
name + password + TOTP, until the hub answers with its login cookie and the redirect to /hub/home);
the home page is then loaded too (timed separately: it is the spawner's page, not the login).
Two rounds over the same 100 accounts: first logins (JupyterHub then creates the person's roles and
group: once in an account's life), then, in the next TOTP time step (each step is accepted once per
account), the same people logging in again, which is every other login of a working day. The
target is on the second; both are printed. Latency is the whole sequence as the client sees it;
throughput is logins per second of wall time. The load generator runs on the same two cores; its
CPU per login is printed too.
All clients share 127.0.0.1, so the per-address throttle is raised for the run (it would otherwise,
correctly, treat 20 clients behind one address as one).

Memory: 1,000 accounts in the enclave database (the measured ones enrolled for real, the rest created
with `accounts.add` and given a copy of one password hash and seed: what matters is the row count)
and 1,000 users in JupyterHub's own database, which the hub loads at start. Reported: resident memory
(RSS) of the jupyterhub process after start and after the logins; the proxy's RSS separately.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import types
from pathlib import Path

import psutil
import requests

from enclave import accounts, db, secrets_store
from enclave.models import Account, AccountStatus, Role

from bench._stats import pct
from hub.auth import mfa, passwords
from tests.support.env import make_env

CLIENTS = int(os.environ.get("BENCH_LOGIN_CLIENTS", "20"))
ROUNDS = int(os.environ.get("BENCH_LOGIN_ROUNDS", "5"))
SINGLE = 5  # logins by one client alone first: the no-contention reference
TOTAL_USERS = 1000


def _env(tmp: Path) -> types.SimpleNamespace:
    # every client logs in from 127.0.0.1: the per-address throttle would otherwise stop the run
    return make_env(tmp, settings={"auth": {"ip_max_failures": 1000000}})


def _fill(env, have: int) -> None:
    """Bring the enclave database to TOTAL_USERS accounts, and JupyterHub's database too."""
    s = env.settings
    keyring = secrets_store.mfa_keyring(s.state_dir)
    shared_hash = passwords.hash_password(s, "filler-account-password")
    with db.transaction(env.db_url) as session:
        for i in range(have, TOTAL_USERS):
            account, _ = accounts.add(session, "bench", f"f{i:04d}", Role.researcher, 72)
            account.password_hash = shared_hash
            account.totp_secret = mfa.encrypt(keyring, mfa.new_secret())
            account.status = AccountStatus.active
        names = [a for (a,) in session.query(Account.username).all()]
    from jupyterhub import orm

    hub_db = orm.new_session_factory(s.hub_db_url)()
    for name in names:
        hub_db.add(orm.User(name=name))
    hub_db.commit()
    hub_db.close()


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def _proxies(hub_pid: int) -> list[psutil.Process]:
    """The hub's configurable-http-proxy process(es)."""
    found = []
    for child in psutil.Process(hub_pid).children(recursive=True):
        try:
            if "configurable-http-proxy" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def _proxy_rss_mb(hub_pid: int) -> float:
    return sum(p.memory_info().rss for p in _proxies(hub_pid)) / 2**20


def _cpu_s(hub_pid: int, proxy: bool) -> float:
    """CPU seconds (user + system) used so far by the hub process, or by its proxy."""
    procs = _proxies(hub_pid) if proxy else [psutil.Process(hub_pid)]
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


def _crowd(hub, users) -> dict:
    """CLIENTS threads log the given accounts in (each thread its share, one after another) and load
    the home page after each login; latency is the login alone (GET form, POST, the redirect)."""
    latencies: list[float] = []
    home_latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(CLIENTS)

    def client(mine):
        start_gate.wait()
        for user in mine:
            http = requests.Session()
            t = time.perf_counter()
            resp = hub.login(http, user, allow_redirects=False)
            dt_ = time.perf_counter() - t
            ok = resp.status_code == 302 and resp.headers.get("Location", "").endswith("/hub/home")
            t = time.perf_counter()
            home = http.get(hub.url + "/hub/home", timeout=60) if ok else None
            dt_home = time.perf_counter() - t
            with lock:
                if ok and home.status_code == 200 and user.username in home.text:
                    latencies.append(dt_)
                    home_latencies.append(dt_home)
                else:
                    failures.append(f"{user.username}: {resp.status_code} {resp.headers.get('Location')}")

    threads = [threading.Thread(target=client, args=(users[i::CLIENTS],)) for i in range(CLIENTS)]
    hub_cpu0, proxy_cpu0 = _cpu_s(hub.pid, proxy=False), _cpu_s(hub.pid, proxy=True)
    wall0, client_cpu0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = dict(latencies=latencies, home_latencies=home_latencies, wall=time.perf_counter() - wall0,
               client_cpu=time.process_time() - client_cpu0, load=os.getloadavg()[0],
               hub_cpu=_cpu_s(hub.pid, proxy=False) - hub_cpu0, proxy_cpu=_cpu_s(hub.pid, proxy=True) - proxy_cpu0)
    if failures:
        raise RuntimeError(f"{len(failures)} logins failed, e.g. {failures[:3]}")
    return out


def run() -> list[dict]:
    from tests.support.hub import RunningHub
    from tests.support.users import enrolled_user

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-login-") as tmp:
        env = _env(Path(tmp))
        t0 = time.monotonic()
        users = [enrolled_user(env.settings, f"b{i:04d}") for i in range(CLIENTS * ROUNDS + 1 + SINGLE)]
        enrol_s = time.monotonic() - t0
        _fill(env, len(users))
        with RunningHub(env, timeout=300) as hub:  # [auth] ip_max_failures is raised in env's settings file
            rss_start = _rss_mb(hub.pid)
            warm = users.pop()
            r = hub.login(requests.Session(), warm)
            assert r.url.startswith(hub.url + "/hub/home"), f"warm-up login failed: {r.status_code} {r.url}"

            alone: list[float] = []
            for _ in range(SINGLE):
                user = users.pop()
                t = time.perf_counter()
                resp = hub.login(requests.Session(), user, allow_redirects=False)
                alone.append(time.perf_counter() - t)
                assert resp.status_code == 302, f"login failed: {resp.status_code}"

            first = _crowd(hub, users)  # every account's first login: JupyterHub creates its roles and groups
            # The same people again, as on any working day after the first. A TOTP time step is accepted
            # once per account, so wait for the next step after the last code used above.
            time.sleep(max(0.0, (int(time.time() // 30) + 1) * 30 + 0.3 - time.time()))
            again = _crowd(hub, users)
            rss_after = _rss_mb(hub.pid)
            proxy = _proxy_rss_mb(hub.pid)
    n = len(again["latencies"])
    rows += [
        {"benchmark": "login", "metric": "p50 latency, 1 client alone (first logins)", "value": round(pct(alone, 50) * 1000),
         "unit": "ms", "target": ""},
    ]
    for label, run_ in (("returning users", again), ("first logins", first)):
        lat, cpu = run_["latencies"], run_["hub_cpu"] / len(run_["latencies"])
        rows += [
            {"benchmark": "login", "metric": f"p50 latency, {CLIENTS} concurrent, {label}",
             "value": round(pct(lat, 50) * 1000), "unit": "ms", "target": ""},
            {"benchmark": "login", "metric": f"p95 latency, {CLIENTS} concurrent, {label} ({len(lat)} logins)",
             "value": round(pct(lat, 95) * 1000), "unit": "ms", "target": "< 1000" if run_ is again else ""},
            {"benchmark": "login", "metric": f"throughput, {label}", "value": round(len(lat) / run_["wall"], 1),
             "unit": "logins/s", "target": ""},
            {"benchmark": "login", "metric": f"hub CPU per login, {label} (incl. its home page)",
             "value": round(cpu * 1000), "unit": "ms", "target": ""},
        ]
    rows += [
        {"benchmark": "login", "metric": "proxy CPU per login", "value": round(again["proxy_cpu"] / n * 1000),
         "unit": "ms", "target": ""},
        {"benchmark": "login", "metric": f"load generator ({CLIENTS} client threads) CPU per login, same cores",
         "value": round(again["client_cpu"] / n * 1000), "unit": "ms", "target": ""},
        {"benchmark": "login", "metric": "then /hub/home page, p50 (not in the login figures)",
         "value": round(pct(again["home_latencies"], 50) * 1000), "unit": "ms", "target": ""},
        {"benchmark": "login", "metric": f"machine load average (1 min) at the end, {os.cpu_count()} CPUs",
         "value": round(again["load"], 1), "unit": "", "target": ""},
        {"benchmark": "login", "metric": "KDF", "value": f"argon2id m={env.settings.auth.argon2_memory_kib}KiB "
         f"t={env.settings.auth.argon2_time_cost} p=1", "unit": "", "target": "OWASP: m>=19456 t>=2"},
        {"benchmark": "login", "metric": f"hub RSS after start, {TOTAL_USERS} users", "value": round(rss_start),
         "unit": "MB", "target": "< 300"},
        {"benchmark": "login", "metric": f"hub RSS after the logins, {TOTAL_USERS} users", "value": round(rss_after),
         "unit": "MB", "target": "< 300"},
        {"benchmark": "login", "metric": "proxy (configurable-http-proxy) RSS", "value": round(proxy),
         "unit": "MB", "target": ""},
        {"benchmark": "login", "metric": f"setup: enrol {n + SINGLE + 1} accounts (argon2 each)",
         "value": round(enrol_s, 1), "unit": "s", "target": ""},
    ]
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
