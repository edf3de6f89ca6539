"""Shared fixtures.

- ``pg_server``   (session) a real PostgreSQL server from Debian's package, started in a temporary
                  folder on a free loopback port, stopped at the end. Fails (never skips) if it cannot start.
- ``db_url``      a fresh, empty database per test: parametrized ``sqlite`` and ``postgresql`` for tests
                  marked ``both_dbs`` (``@pytest.mark.parametrize("db_url", BOTH, indirect=True)``),
                  SQLite otherwise.
- ``enclave_env`` an enclave settings file + state folder in tmp_path, on ``db_url``; sets
                  ENCLAVE_CONFIG for the test. Returns a namespace: config, state_dir, db_url, settings.
- ``cli``         runs `enclave ...` in-process: ``cli("user", "add", "ann", "--role", "researcher")``
                  returns (exit_code, stdout, stderr).
- ``docker_client`` a docker-py client for the real engine; fails the test when no engine answers.
- ``site``        a SpawnSite (tests/support/spawn.py): users, projects and hubs with names, networks and
                  firewall chains of this test only; at teardown it prints `docker inspect` and container
                  logs, then removes everything it made (integration and security tests).

Markers come from the folder (``FOLDER_MARKERS``): tests/integration, tests/security, tests/e2e and
tests/ansible are marked integration, security, e2e and ansible, so ``-m`` selects by what a test starts.
"""

from __future__ import annotations

import contextlib
import io

import pytest

from tests.support.postgres import PostgresServer

BOTH = [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)]

# A test's folder says what it starts, so its marker comes from there: `-m integration` selects every
# test that starts a real hub or container, whatever its module remembered to declare.
FOLDER_MARKERS = {"integration": "integration", "security": "security", "e2e": "e2e", "ansible": "ansible"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = item.path.relative_to(config.rootpath).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[parts[1]])


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    server = PostgresServer(tmp_path_factory.mktemp("pg"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db_url(request, tmp_path):
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'enclave.sqlite'}"
    server = request.getfixturevalue("pg_server")
    return server.new_database()


@pytest.fixture
def enclave_env(tmp_path, db_url, monkeypatch):
    from tests.support.env import make_env

    env = make_env(tmp_path, db_url=db_url)
    monkeypatch.setenv("ENCLAVE_CONFIG", str(env.config))
    monkeypatch.delenv("ENCLAVE_STATE_DIR", raising=False)
    return env


@pytest.fixture
def cli(enclave_env):
    from enclave.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse usage errors
                code = exc.code if isinstance(exc.code, int) else 2
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine
        pytest.fail(f"a Docker engine is required for this test and none answered ({exc}); run scripts/ensure-dockerd.sh")
    return client


@pytest.fixture
def site(enclave_env, docker_client):
    from tests.support.spawn import SpawnSite

    site = SpawnSite(enclave_env, docker_client)
    try:
        yield site
    finally:
        site.dump()
        site.cleanup()
