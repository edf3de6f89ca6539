"""Fixtures for the spawning tests.

- ``site``  a SpawnSite (tests/support/spawn.py): users, projects and hubs with names, networks and
            firewall chains of this test only; at teardown it prints `docker inspect` and container
            logs, then removes everything it made.
"""

import pytest

from tests.support.spawn import SpawnSite


@pytest.fixture
def site(enclave_env, docker_client):
    site = SpawnSite(enclave_env, docker_client)
    try:
        yield site
    finally:
        site.dump()
        site.cleanup()
